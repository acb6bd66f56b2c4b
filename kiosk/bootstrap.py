"""Set-up on a fresh machine, standard library only: it runs before any dependency exists.

`python3 main.py` and `python3 main.py test` call `ensure_environment()`; it installs the system
libraries Kivy (and, for tests, Chromium) need with apt-get, makes `.venv` beside main.py,
installs the project into it, and re-executes the command with the venv's Python. A machine
that is already set up pays one `import` check and nothing else.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"
RUN_PACKAGES = ("libgl1", "libegl1", "libmtdev1")
# Chromium for the dashboard tests; faketime moves the clock of the calendar sweep's children;
# systemd's tools check the units `install` writes (systemd-analyze verify, systemd-sysusers
# and systemctl --root), and cage + Xwayland let the cage unit be verified as written;
# PostgreSQL's server binaries start the throwaway clusters (and a streaming replica) the
# central store's tests run against (tests/support/postgres.py).
TEST_PACKAGES = {
    "chromium": "/usr/bin/chromium",
    "faketime": "/usr/lib/*/faketime/libfaketime.so.1",
    "systemd": "/usr/bin/systemd-analyze",
    "cage": "/usr/bin/cage",
    "xwayland": "/usr/bin/Xwayland",
    "postgresql": "/usr/lib/postgresql/*/bin/initdb",
}
SYSTEM_LIBRARIES = {"libgl1": "libGL.so.1", "libegl1": "libEGL.so.1", "libmtdev1": "libmtdev.so.1"}


# One more than the machine's 2 cores: with two, about a sixth of the CPU time was idle (tests
# waiting on a server, a browser, a window or an fsync). On 2026-12-03, with the same tests:
# 2 processes 675-704 s, 3 609 s, 4 584 s; 3 keeps most of the gain with less contention.
SUITE_WORKERS = 3


class SetupFailed(RuntimeError):
    """A set-up step failed; the message names the step and how to do it by hand."""


def _say(message: str) -> None:
    print(f"[setup] {message}", file=sys.stderr, flush=True)


def _run(command: list[str], what: str) -> None:
    _say(what)
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        raise SetupFailed(f"{what} failed (exit {result.returncode}): {' '.join(command)}")


def _have_library(package: str) -> bool:
    soname = SYSTEM_LIBRARIES.get(package)
    if soname is None:
        return False
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib"):
        if Path(folder, soname).exists():
            return True
    return False


def _missing_system_packages(with_tests: bool) -> list[str]:
    missing = [p for p in RUN_PACKAGES if not _have_library(p)]
    if with_tests:
        missing += [p for p, path in TEST_PACKAGES.items() if not glob.glob(path)]
    return missing


def _install_system_packages(packages: list[str]) -> None:
    if not packages:
        return
    if shutil.which("apt-get") is None:
        raise SetupFailed(f"these system packages are needed and apt-get is not here: {packages}")
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    os.environ.setdefault("DEBIAN_FRONTEND", "noninteractive")
    _run(prefix + ["apt-get", "update", "-qq"], "apt-get update")
    _run(
        prefix + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        f"apt-get install {' '.join(packages)}",
    )


def _wanted_stamp(with_tests: bool) -> str:
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    import hashlib

    return hashlib.sha256(pyproject + (b"test" if with_tests else b"run")).hexdigest()


def _stamp_ok(with_tests: bool) -> bool:
    if not STAMP.exists():
        return False
    lines = STAMP.read_text().split()
    return _wanted_stamp(with_tests) in lines or (
        not with_tests and _wanted_stamp(True) in lines
    )


def _install_python_packages(with_tests: bool) -> None:
    if not VENV_PYTHON.exists():
        result = subprocess.run([sys.executable, "-m", "venv", str(VENV)], cwd=ROOT)
        if result.returncode != 0:
            # Debian's own Python splits venv into a package of its own.
            _install_system_packages(["python3-venv"])
            _run([sys.executable, "-m", "venv", str(VENV)], "python3 -m venv .venv")
    target = ".[test]" if with_tests else "."
    _run(
        [str(VENV_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-e", target],
        f"pip install -e '{target}' into .venv",
    )
    STAMP.write_text(_wanted_stamp(with_tests) + "\n")


# What the commands import (and, for the tests, run): when the interpreter already has them in
# a virtual environment of its own, that environment is the one to use.
RUN_MODULES = ("kivy", "sqlite_utils", "requests", "argon2", "fastapi", "uvicorn", "jinja2",
               "plotly")
TEST_MODULES = ("pytest", "playwright", "schemathesis", "httpx", "ruff", "time_machine")


def _in_other_environment(with_tests: bool) -> bool:
    """True inside a virtual environment other than .venv (a packager's, a CI image's, an
    IDE's) that already holds the project's dependencies: it is used as it is, never replaced
    by .venv, so a test that runs ``main.py`` runs it with the interpreter running the tests."""
    if sys.prefix == sys.base_prefix or Path(sys.prefix).resolve() == VENV.resolve():
        return False
    wanted = RUN_MODULES + (TEST_MODULES if with_tests else ())
    return all(importlib.util.find_spec(name) is not None for name in wanted)


def ensure_environment(with_tests: bool = False) -> None:
    """Install what is missing; when not inside .venv (or another virtual environment that has
    everything), re-exec this command inside .venv."""
    try:
        _install_system_packages(_missing_system_packages(with_tests))
        if _in_other_environment(with_tests):
            return
        if not _stamp_ok(with_tests):
            _install_python_packages(with_tests)
    except SetupFailed as error:
        _say(str(error))
        raise SystemExit(2) from None
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])


def run_tests(pytest_args: list[str]) -> int:
    """Lint, the whole suite, then the calendar sweep; exit code 0 only if all three pass.

    With pytest arguments (a selection) only lint and that selection run.
    """
    # sys.executable: .venv's Python after ensure_environment, or the environment it accepted.
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT)
    if lint.returncode != 0:
        _say("ruff check found problems (above); fix them before the tests count")
        return lint.returncode
    # The whole suite runs on SUITE_WORKERS processes, a test file each at a time (module
    # fixtures stay whole): it runs four suites on both engines, and much of a test's time is
    # waiting on a server, a browser or a window, not computing.
    whole = ["-n", str(SUITE_WORKERS), "--dist", "loadfile"] if not pytest_args else []
    suite = subprocess.run([sys.executable, "-m", "pytest", *whole, *pytest_args], cwd=ROOT)
    if suite.returncode != 0 or pytest_args:
        return suite.returncode
    return run_calendar_sweep([])


def run_calendar_sweep(labels: list[str]) -> int:
    """The clock-sensitive tests again at fixed instants (tests/calendar_sweep.py)."""
    return subprocess.run([sys.executable, "-m", "tests.calendar_sweep", *labels],
                          cwd=ROOT).returncode
