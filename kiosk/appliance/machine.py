"""What ``install`` needs to know about the target machine, read from its files.

Everything is looked up under ``root`` (``/`` for a real install, a folder for ``--root``), so
the same checks run on a clinic's Raspberry Pi and on a test's temporary tree. Each problem is
an ``InstallRefused`` sentence that says what is wrong and what to do.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_OS = ("debian", "raspbian")
CAGE = "usr/bin/cage"
XWAYLAND = "usr/bin/Xwayland"
# The PAM module that registers the kiosk's session with logind (package libpam-systemd):
# without it the unit's PAMName= fails (exit 224/PAM) and the kiosk restarts every 2 s.
PAM_SYSTEMD = ("lib/*/security/pam_systemd.so", "usr/lib/*/security/pam_systemd.so",
               "lib/security/pam_systemd.so", "usr/lib/security/pam_systemd.so")
# Where the kernel command line is kept: Raspberry Pi OS 12, then older Raspberry Pi OS.
CMDLINE_FILES = ("boot/firmware/cmdline.txt", "boot/cmdline.txt")


class InstallRefused(RuntimeError):
    """The machine (or the options) cannot take this install; the message says why and how."""


@dataclass(frozen=True)
class Machine:
    root: Path
    live: bool  # True: the running system (root is /); False: a folder prepared for one

    def path(self, relative: str) -> Path:
        return self.root / relative.lstrip("/")

    def os_release(self) -> dict[str, str]:
        for name in ("etc/os-release", "usr/lib/os-release"):
            try:
                text = self.path(name).read_text()
            except OSError:
                continue
            return dict(_release_line(line) for line in text.splitlines() if "=" in line)
        return {}

    def has(self, relative: str) -> bool:
        return self.path(relative).exists()

    def has_any(self, patterns: tuple[str, ...]) -> bool:
        return any(next(self.root.glob(pattern), None) is not None for pattern in patterns)

    def cmdline_file(self) -> str | None:
        return next((name for name in CMDLINE_FILES if self.has(name)), None)


def _release_line(line: str) -> tuple[str, str]:
    key, _, value = line.partition("=")
    return key.strip(), value.strip().strip('"')


def check_os(machine: Machine) -> str:
    """The OS's pretty name, or InstallRefused when it is neither Debian nor Raspberry Pi OS."""
    release = machine.os_release()
    ids = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    name = release.get("PRETTY_NAME") or release.get("ID") or "an unknown system"
    if not ids & set(SUPPORTED_OS):
        raise InstallRefused(
            f"{machine.root} runs {name}; install supports Debian and Raspberry Pi OS only (it "
            "relies on their packages and paths). On another system, write the units shown by "
            "`install --dry-run` by hand."
        )
    return name


def check_systemd(machine: Machine) -> None:
    if machine.live and not Path("/run/systemd/system").is_dir():
        raise InstallRefused(
            "this machine is not running systemd (there is no /run/systemd/system), and the "
            "service's start at power-on, restart and watchdog are systemd's: install on a "
            "Debian or Raspberry Pi OS machine booted normally (not inside a container)."
        )
    if not (machine.has("lib/systemd/systemd") or machine.has("usr/lib/systemd/systemd")):
        raise InstallRefused(
            f"{machine.root} has no systemd (no lib/systemd/systemd): install the systemd "
            "package there first (apt-get install systemd)."
        )


def check_login_session(machine: Machine) -> None:
    """The kiosk runs in a login session (the seat: screen and touchscreen) through
    pam_systemd, which minimal Debian images leave out (found on a debootstrap root)."""
    if not machine.has_any(PAM_SYSTEMD):
        raise InstallRefused(
            f"{machine.root} has no pam_systemd.so, which gives the kiosk its login session "
            "(the screen and the touchscreen): run `apt-get install libpam-systemd` first."
        )


def check_root(euid: int) -> None:
    if euid != 0:
        raise InstallRefused(
            "install must run as root: it writes under /etc and creates a system user. Run "
            "`sudo python3 main.py install ...`, or add --dry-run to see what it would write."
        )


def choose_display(machine: Machine, wanted: str) -> str:
    """``cage`` when asked (refused when it is not installed), ``kmsdrm`` when asked, and for
    ``auto`` cage when it and Xwayland are installed, else the console through KMSDRM."""
    have_cage = machine.has(CAGE) and machine.has(XWAYLAND)
    if wanted == "cage" and not have_cage:
        missing = "cage" if not machine.has(CAGE) else "Xwayland"
        raise InstallRefused(
            f"--display cage needs {missing}, which is not installed on {machine.root}: "
            "run `apt-get install cage xwayland` first (the kiosk draws through Xwayland), or "
            "use --display kmsdrm to run on the console without a compositor."
        )
    if wanted == "auto":
        return "cage" if have_cage else "kmsdrm"
    return wanted


def readable_by_all(path: Path) -> bool:
    """True when a service user that is not root can reach ``path`` (every folder above it
    searchable by others): a checkout under /root would start and fail at once, every 2 s."""
    for folder in [path, *path.parents]:
        try:
            mode = folder.stat().st_mode
        except OSError:
            return False
        if folder != path and not mode & stat.S_IXOTH:
            return False
    return os.access(path, os.R_OK)
