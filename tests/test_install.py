"""`python3 main.py install`: into a temporary system tree (--root), with the real
systemd-sysusers and systemctl doing their offline parts, and the units checked by
`systemd-analyze verify`. The machine has systemd's tools but is not booted by systemd (PID 1
is not systemd here), which is exactly what --root and `systemctl --root` are for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.appliance.install import install, parse_args
from kiosk.appliance.machine import InstallRefused

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "main.py"
PYTHON = Path(sys.executable)
needs_systemd_tools = pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="Debian's systemd package is not installed"
)
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
PI_OS = 'PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nID=raspbian\nID_LIKE=debian\n'


def system_tree(base: Path, os_release: str = DEBIAN, cage: bool = False,
                pi_cmdline: str | None = None, pam_systemd: bool = True) -> Path:
    """The parts of a Debian root that install reads."""
    root = base / "target"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(os_release)
    (root / "usr/lib/systemd").mkdir(parents=True)
    (root / "usr/lib/systemd/systemd").touch()
    if pam_systemd:
        (root / "usr/lib/x86_64-linux-gnu/security").mkdir(parents=True)
        (root / "usr/lib/x86_64-linux-gnu/security/pam_systemd.so").touch()
    if cage:
        (root / "usr/bin").mkdir(parents=True)
        (root / "usr/bin/cage").touch()
        (root / "usr/bin/Xwayland").touch()
    if pi_cmdline is not None:
        (root / "boot/firmware").mkdir(parents=True)
        (root / "boot/firmware/cmdline.txt").write_text(pi_cmdline)
    return root


def run_install(argv: list[str], euid: int = 0, run=None) -> tuple[list[str], object]:
    said: list[str] = []
    kwargs = {"run": run} if run else {}
    plan = install(parse_args(argv), python=PYTHON, main=MAIN, euid=euid, say=said.append,
                   **kwargs)
    return said, plan


# systemd-analyze verify exits 0 for an unknown key or a value it cannot parse (it ignores the
# line and goes on), so its warnings are what say a unit is wrong.
UNIT_WARNINGS = ("Unknown key", "Unknown section", "Failed to parse", "ignoring", "Invalid")


def verify(unit: Path) -> subprocess.CompletedProcess:
    checked = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                             text=True)
    about_unit = [line for line in checked.stderr.splitlines() if unit.name in line]
    warned = [line for line in about_unit if any(w in line for w in UNIT_WARNINGS)]
    assert warned == [], f"systemd-analyze verify warned about {unit.name}: {warned}"
    return checked


@needs_systemd_tools
def test_kiosk_install_writes_verified_units_makes_the_user_and_enables_it(tmp_path):
    root = system_tree(tmp_path, os_release=PI_OS,
                       pi_cmdline="console=serial0,115200 root=PARTUUID=1234-02 rootwait\n")
    said, plan = run_install(["--kiosk", "--root", str(root), "--display", "kmsdrm"])

    unit = root / "etc/systemd/system/clinic-kiosk.service"
    text = unit.read_text()
    for line in ("Type=notify", "Restart=always", "WatchdogSec=30", "NotifyAccess=all",
                 "StartLimitIntervalSec=0", "SDL_VIDEODRIVER=kmsdrm", "User=clinic-kiosk",
                 f"ExecStart={PYTHON} {MAIN} kiosk --config /etc/clinic-kiosk/kiosk.toml"):
        assert line in text
    checked = verify(unit)
    assert checked.returncode == 0, checked.stderr
    # systemd-sysusers made the user, in the video/render/input groups, inside the tree only.
    assert "clinic-kiosk:x:" in (root / "etc/passwd").read_text()
    group = (root / "etc/group").read_text()
    assert all(f"{g}:x:" in group and "clinic-kiosk" in group for g in ("video", "input"))
    assert (root / "etc/systemd/system/multi-user.target.wants/clinic-kiosk.service").is_symlink()
    # The screen never blanks, the journal is bounded, the token file is root's only.
    assert (root / "boot/firmware/cmdline.txt").read_text().split()[-1] == "consoleblank=0"
    assert "SystemMaxUse=200M" in (root / "etc/systemd/journald.conf.d/clinic-kiosk.conf"
                                   ).read_text()
    assert (root / "etc/clinic-kiosk/kiosk.env").stat().st_mode & 0o777 == 0o600
    assert any("ran     systemctl --root=" in line for line in said)

    # Run again: the edited settings file is kept, consoleblank is not added twice.
    (root / "etc/clinic-kiosk/kiosk.toml").write_text('site = "North"\n')
    said, _ = run_install(["--kiosk", "--root", str(root), "--display", "kmsdrm"])
    assert (root / "etc/clinic-kiosk/kiosk.toml").read_text() == 'site = "North"\n'
    assert (root / "boot/firmware/cmdline.txt").read_text().count("consoleblank=0") == 1
    assert any(line.startswith("kept    /etc/clinic-kiosk/kiosk.toml") for line in said)


@needs_systemd_tools
@pytest.mark.skipif(not shutil.which("cage"), reason="cage is not installed")
def test_kiosk_under_cage_unit_verifies(tmp_path):
    root = system_tree(tmp_path, cage=True)
    said, plan = run_install(["--kiosk", "--root", str(root)])  # auto: cage when present
    assert plan.display == "cage"
    unit = root / "etc/systemd/system/clinic-kiosk.service"
    assert "ExecStart=/usr/bin/cage -d -s -- " in unit.read_text()
    assert not (root / "etc/default/grub.d").exists()  # no kernel command line to change...
    assert any(line.startswith("note    no kernel command line found") for line in said)
    assert "SDL_VIDEODRIVER=x11" in unit.read_text()
    checked = verify(unit)
    assert checked.returncode == 0, checked.stderr


def test_on_a_pc_consoleblank_goes_into_a_grub_drop_in(tmp_path):
    root = system_tree(tmp_path)
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/default/grub").write_text('GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n')
    run_install(["--kiosk", "--root", str(root)], run=lambda command: None)
    drop_in = (root / "etc/default/grub.d/clinic-kiosk.cfg").read_text()
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT consoleblank=0"' in drop_in


@needs_systemd_tools
def test_central_install_unit_verifies(tmp_path):
    root = system_tree(tmp_path)
    run_install(["--central", "--root", str(root), "--port", "8711", "--backup-keep", "7"])
    unit = root / "etc/systemd/system/clinic-central.service"
    text = unit.read_text()
    assert "central --data /var/lib/clinic-central --host 127.0.0.1 --port 8711" in text
    assert "--backup-keep 7" in text and "Type=notify" in text
    assert "TimeoutStartSec=infinity" in text  # a long migration is not killed half-way
    checked = verify(unit)
    assert checked.returncode == 0, checked.stderr
    assert not (root / "etc/pam.d/clinic-kiosk").exists()


@needs_systemd_tools
def test_central_install_schedules_the_nightly_retention_purge(tmp_path):
    """The product's rule: data past its retention is purged on both sides; the kiosks purge
    their own, and the installed central store gets a timer that runs `purge` every night."""
    root = system_tree(tmp_path)
    said, _ = run_install(["--central", "--root", str(root), "--retention-days", "200",
                           "--comment-retention-days", "30"])
    units = root / "etc/systemd/system"
    service = (units / "clinic-central-purge.service").read_text()
    assert (f"{MAIN} purge --data /var/lib/clinic-central --days 200 "
            "--comment-retention-days 30") in service
    assert "Type=oneshot" in service and "User=clinic-central" in service
    timer = (units / "clinic-central-purge.timer").read_text()
    assert "OnCalendar=*-*-* 03:30:00" in timer and "Persistent=true" in timer
    for unit in ("clinic-central-purge.service", "clinic-central-purge.timer"):
        checked = verify(units / unit)
        assert checked.returncode == 0, checked.stderr
    # Enabled offline by systemctl --root, as the service is: the timer's link is there.
    assert (units / "timers.target.wants/clinic-central-purge.timer").is_symlink()
    assert any("enable clinic-central.service clinic-central-purge.timer" in line
               for line in said)
    assert any("older than 200 days, comments older than 30" in line for line in said)
    defaults = (system_tree(tmp_path / "defaults") / "etc")
    run_install(["--central", "--root", str(defaults.parent)])
    assert "--days 400 --comment-retention-days 90" in (
        defaults / "systemd/system/clinic-central-purge.service").read_text()


def test_the_installers_retention_defaults_are_the_stores():
    from kiosk.appliance import units
    from sync.central import retention

    assert (units.DEFAULT_RETENTION_DAYS, units.DEFAULT_COMMENT_RETENTION_DAYS) == (
        retention.DEFAULT_RETENTION_DAYS, retention.DEFAULT_COMMENT_RETENTION_DAYS)


def test_dry_run_prints_everything_and_writes_nothing(tmp_path):
    root = system_tree(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    said, _ = run_install(["--kiosk", "--dry-run", "--root", str(root)], euid=1000)
    out = "\n".join(said)
    assert "--- /etc/systemd/system/clinic-kiosk.service" in out
    assert "WatchdogSec=30" in out and "systemctl --root=" in out
    # Not root: a dry run shows what a real install would stop at, instead of stopping.
    assert "A real install would stop here" in out and "must run as root" in out
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_refusals_say_what_is_wrong_and_what_to_do(tmp_path):
    root = system_tree(tmp_path / "a")
    with pytest.raises(InstallRefused, match="must run as root.*sudo"):
        run_install(["--kiosk", "--root", str(root)], euid=1000)
    with pytest.raises(InstallRefused, match="apt-get install cage xwayland.*--display kmsdrm"):
        run_install(["--kiosk", "--root", str(root), "--display", "cage"])

    fedora = system_tree(tmp_path / "b", os_release='ID=fedora\nPRETTY_NAME="Fedora 41"\n')
    with pytest.raises(InstallRefused, match="runs Fedora 41; install supports Debian"):
        run_install(["--central", "--root", str(fedora)])

    no_pam = system_tree(tmp_path / "d", pam_systemd=False)
    with pytest.raises(InstallRefused, match="no pam_systemd.so.*apt-get install libpam-systemd"):
        run_install(["--kiosk", "--root", str(no_pam)])
    run_install(["--central", "--root", str(no_pam)], run=lambda command: None)  # not needed

    no_systemd = system_tree(tmp_path / "c")
    (no_systemd / "usr/lib/systemd/systemd").unlink()
    with pytest.raises(InstallRefused, match="has no systemd.*apt-get install systemd"):
        run_install(["--central", "--root", str(no_systemd)])
    assert not (no_systemd / "etc/systemd/system").exists()  # refused before writing anything


def test_the_command_line_refuses_bad_options_with_a_sentence(tmp_path):
    def main_py(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(PYTHON), str(MAIN), "install", *args], capture_output=True,
                              text=True, cwd=ROOT)

    neither = main_py("--dry-run")
    assert neither.returncode == 2 and "one of the arguments --kiosk --central" in neither.stderr
    both = main_py("--kiosk", "--central")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    short = main_py("--kiosk", "--watchdog-s", "1")
    assert short.returncode == 2 and "use 5 to 3600 seconds" in short.stderr
    for flag, value, sentence in (
        ("--port", "0", "0 is not a port here: use 1 to 65535"),
        ("--port", "70000", "70000 is not a port: use 1 to 65535"),
        ("--port", "web", "'web' is not a port number"),
        ("--backup-keep", "-1", "-1 is negative: use 0 or more"),
        ("--retention-days", "0", "0 is too small: it must be 1 or more"),
        ("--comment-retention-days", "x", "'x' is not a whole number"),
        ("--tty", "/dev/tty1", "'/dev/tty1' is not a console name: use tty followed by its number"),
        ("--tty", "tty1; rm", "is not a console name"),
    ):
        refused = main_py("--central" if flag != "--tty" else "--kiosk", "--dry-run", flag, value)
        assert refused.returncode == 2 and sentence in refused.stderr, (flag, refused.stderr)


@needs_systemd_tools
def test_verify_catches_what_systemd_analyze_only_warns_about(tmp_path):
    unit = tmp_path / "warned.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nBogusKey=1\nWatchdogSec=abc\n")
    assert subprocess.run(["systemd-analyze", "verify", str(unit)]).returncode == 0
    with pytest.raises(AssertionError, match="Unknown key.*Failed to parse"):
        verify(unit)


@needs_systemd_tools
@pytest.mark.skipif(os.geteuid() != 0, reason="giving the file away needs root")
def test_a_kept_token_file_is_made_root_only_again(tmp_path):
    root = system_tree(tmp_path)
    run_install(["--kiosk", "--root", str(root), "--display", "kmsdrm"])
    secrets = root / "etc/clinic-kiosk/kiosk.env"
    secrets.write_text("KIOSK_TOKEN=kept-as-written\n")
    secrets.chmod(0o644)
    os.chown(secrets, 1000, 1000)
    said, _ = run_install(["--kiosk", "--root", str(root), "--display", "kmsdrm"])
    status = secrets.stat()
    assert status.st_mode & 0o777 == 0o600 and (status.st_uid, status.st_gid) == (0, 0)
    assert secrets.read_text() == "KIOSK_TOKEN=kept-as-written\n"
    assert any(line.startswith("chmod   /etc/clinic-kiosk/kiosk.env was mode 0644")
               for line in said)
    assert any(line.startswith("chown   /etc/clinic-kiosk/kiosk.env") for line in said)
