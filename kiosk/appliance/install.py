"""`python3 main.py install --kiosk | --central [--dry-run] [--root DIR] ...`

Makes this machine an appliance: a systemd unit that starts the kiosk (or the central store)
at power-on, restarts it after a crash and, through the watchdog, after a hang; a system user
for it; journald limits; the console's screen blanking off. It prints every file it writes and
every command it runs, and ``--dry-run`` prints the same without touching anything.

``--root DIR`` installs into a folder holding another system's tree (a mounted SD card, a
debootstrap root, a test's temporary folder): files go under DIR, and the users and the
enabling are done with ``systemd-sysusers --root`` and ``systemctl --root``, which work offline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from kiosk.appliance.machine import (
    InstallRefused,
    Machine,
    check_login_session,
    check_os,
    check_root,
    check_systemd,
    choose_display,
    readable_by_all,
)
from kiosk.appliance.units import (
    CENTRAL_PURGE_TIMER,
    DEFAULT_COMMENT_RETENTION_DAYS,
    DEFAULT_RETENTION_DAYS,
    DISPLAYS,
    InstallFile,
    InstallPlan,
    files_for,
)
from kiosk.shared import cli_values

CONSOLE_BLANK_OFF = "consoleblank=0"
GRUB_DROP_IN = "etc/default/grub.d/clinic-kiosk.cfg"
Runner = Callable[[Sequence[str]], None]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="main.py install",
        description="Install the kiosk or the central store as a systemd service (Debian or "
                    "Raspberry Pi OS, as root). Prints what it does.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--kiosk", action="store_true", help="this machine is a touchscreen kiosk")
    what.add_argument("--central", action="store_true", help="this machine is the central store")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the files and commands without writing or running anything")
    parser.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                        help="install into this folder's system tree instead of this machine")
    parser.add_argument("--display", choices=["auto", *DISPLAYS], default="auto",
                        help="kiosk: under the cage compositor, or on the console via SDL's "
                             "KMSDRM driver (auto: cage when it is installed)")
    parser.add_argument("--tty", type=cli_values.console, default="tty1",
                        help="kiosk: the console it takes (tty1)")
    parser.add_argument("--watchdog-s", type=_seconds, default=30, metavar="N",
                        help="restart after N seconds without a sign of life (default 30)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="central: address to listen on (127.0.0.1 behind a TLS proxy)")
    parser.add_argument("--port", type=cli_values.port, default=8700,
                        help="central: port, 1 to 65535 (default 8700)")
    parser.add_argument("--backup-keep", type=cli_values.at_least_zero, default=14, metavar="N",
                        help="central: daily backups kept (default 14; 0 turns them off)")
    parser.add_argument("--retention-days", type=cli_values.at_least_one,
                        default=DEFAULT_RETENTION_DAYS, metavar="N",
                        help=f"central: the nightly purge deletes data older than N days "
                             f"(default {DEFAULT_RETENTION_DAYS})")
    parser.add_argument("--comment-retention-days", type=cli_values.at_least_one,
                        default=DEFAULT_COMMENT_RETENTION_DAYS, metavar="N",
                        help=f"central: and patients' comments older than N days (default "
                             f"{DEFAULT_COMMENT_RETENTION_DAYS})")
    return parser.parse_args(argv)


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not 5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value} s is out of range: use 5 to 3600 seconds")
    return value


def make_plan(args: argparse.Namespace, machine: Machine, python: Path, main: Path) -> InstallPlan:
    role = "kiosk" if args.kiosk else "central"
    display = choose_display(machine, args.display) if role == "kiosk" else "cage"
    cmdline = machine.cmdline_file()
    return InstallPlan(
        role=role, python=PurePosixPath(python), main=PurePosixPath(main), display=display,
        tty=args.tty, watchdog_s=args.watchdog_s, host=args.host, port=args.port,
        backup_keep=args.backup_keep, retention_days=args.retention_days,
        comment_retention_days=args.comment_retention_days,
        cmdline_file=PurePosixPath("/", cmdline) if cmdline else None,
    )


def commands_for(plan: InstallPlan, machine: Machine) -> list[list[str]]:
    """What runs after the files are written. Offline forms for --root (no running systemd)."""
    root = [] if machine.live else [f"--root={machine.root}"]
    units = [plan.service, *([CENTRAL_PURGE_TIMER] if plan.role == "central" else [])]
    commands = [["systemd-sysusers", *root], ["systemctl", *root, "enable", *units]]
    if machine.live:
        commands = [
            ["systemd-sysusers"],
            ["systemctl", "daemon-reload"],
            ["systemctl", "restart", "systemd-journald"],
            ["systemctl", "enable", "--now", *units],
        ]
        grub = plan.cmdline_file is None and machine.has("usr/sbin/update-grub")
        if plan.role == "kiosk" and grub:
            commands.insert(0, ["update-grub"])  # puts the drop-in's consoleblank=0 in effect
    return commands


def console_blanking_change(plan: InstallPlan, machine: Machine) -> InstallFile | None:
    """The kernel command line with consoleblank=0, so the console never blanks at boot or
    between restarts (the unit also turns it off on its tty at every start)."""
    if plan.role != "kiosk":
        return None
    if plan.cmdline_file is not None:
        current = machine.path(str(plan.cmdline_file)).read_text().strip()
        if CONSOLE_BLANK_OFF in current.split():
            return None
        return InstallFile(plan.cmdline_file, f"{current} {CONSOLE_BLANK_OFF}\n")
    if machine.has("etc/default/grub"):
        return InstallFile(
            PurePosixPath("/", GRUB_DROP_IN),
            "# Written by `python3 main.py install --kiosk`: the console never blanks.\n"
            f'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT {CONSOLE_BLANK_OFF}"\n',
        )
    return None


def _blanking_already_off(plan: InstallPlan, machine: Machine) -> bool:
    return plan.cmdline_file is not None or machine.has(GRUB_DROP_IN)


def write_file(machine: Machine, item: InstallFile, say: Callable[[str], None]) -> None:
    target = machine.path(str(item.path))
    if item.keep_existing and target.exists():
        say(f"kept    {item.path} (already there; never overwritten)")
        _tighten(target, item, say)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".new")
    temporary.write_text(item.text)
    temporary.chmod(item.mode)
    os.replace(temporary, target)  # a half-written unit must never be what systemd reads
    say(f"wrote   {item.path} (mode {item.mode:04o})")


def _tighten(target: Path, item: InstallFile, say: Callable[[str], None]) -> None:
    """A kept file is kept as to its text, not its permissions: one holding a token (mode
    0600) that someone made readable by others, or gave away, is made root's only again."""
    if not item.private:
        return
    status = target.stat()
    mode = status.st_mode & 0o777
    if mode != item.mode:
        target.chmod(item.mode)
        say(f"chmod   {item.path} was mode {mode:04o}, now {item.mode:04o} (it holds the token)")
    if (status.st_uid, status.st_gid) != (0, 0):
        os.chown(target, 0, 0)
        say(f"chown   {item.path} was owned by {status.st_uid}:{status.st_gid}, now root")


def run_command(command: Sequence[str]) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True)
    if result.returncode != 0:
        raise InstallRefused(
            f"`{' '.join(command)}` failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[:400]}"
        )


def install(
    args: argparse.Namespace,
    *,
    python: Path,
    main: Path,
    euid: int,
    run: Runner = run_command,
    say: Callable[[str], None] = print,
) -> InstallPlan:
    machine = Machine(root=args.root.resolve(), live=args.root.resolve() == Path("/"))
    problems: list[str] = []
    checks = [lambda: check_root(euid), lambda: check_os(machine), lambda: check_systemd(machine)]
    if args.kiosk:
        checks.append(lambda: check_login_session(machine))
    for check in checks:
        try:
            check()
        except InstallRefused as error:
            if not args.dry_run:
                raise
            problems.append(str(error))
    plan = make_plan(args, machine, python, main)
    unreadable = [p for p in (Path(python).resolve(), Path(main).resolve())
                  if not readable_by_all(p)]
    if machine.live and unreadable:
        message = (
            f"the service user {plan.user} cannot read {unreadable[0]}: put the project "
            "where every user can read it (e.g. clone it into /opt/clinic-kiosk) and create "
            "its .venv with a Python outside /root, then run install again."
        )
        if not args.dry_run:
            raise InstallRefused(message)
        problems.append(message)
    files = files_for(plan)
    if (blanking := console_blanking_change(plan, machine)) is not None:
        files.append(blanking)
    commands = commands_for(plan, machine)
    if args.dry_run:
        _print_dry_run(plan, files, commands, problems, say)
        return plan
    say(f"Installing the {plan.role} ({_how(plan)}) into {machine.root}:")
    for item in files:
        write_file(machine, item, say)
    if plan.role == "kiosk" and blanking is None and not _blanking_already_off(plan, machine):
        say("note    no kernel command line found (no /boot/firmware/cmdline.txt, no "
            "/etc/default/grub): add consoleblank=0 to it by hand; until then the unit turns "
            "blanking off on its tty at every start")
    for command in commands:
        say(f"ran     {' '.join(command)}")
        run(command)
    say(_next_steps(plan, machine))
    return plan


def _how(plan: InstallPlan) -> str:
    if plan.role == "central":
        return f"{plan.service}, listening on {plan.host}:{plan.port}"
    display = "under cage" if plan.display == "cage" else "on the console via KMSDRM"
    return f"{plan.service}, fullscreen {display} on {plan.tty}"


def _print_dry_run(plan, files, commands, problems, say) -> None:
    say(f"Dry run: installing the {plan.role} ({_how(plan)}) would write these files:")
    for item in files:
        note = ", kept if it exists" if item.keep_existing else ""
        say(f"\n--- {item.path} (mode {item.mode:04o}{note})\n{item.text.rstrip()}")
    say("\nand then run:")
    for command in commands:
        say(f"  {' '.join(command)}")
    if problems:
        say("\nA real install would stop here:")
        for problem in problems:
            say(f"  - {problem}")


def _next_steps(plan: InstallPlan, machine: Machine) -> str:
    if plan.role == "kiosk":
        steps = (
            f"Done. Settings: {plan.config_file} (README, 'Kiosk configuration'). "
            f"Logs: journalctl -u {plan.service}. "
        )
    else:
        steps = (
            f"Done. Data: {plan.data_dir}; backups: {plan.data_dir}/backups "
            f"(the newest {plan.backup_keep}). Nightly purge: data older than "
            f"{plan.retention_days} days, comments older than {plan.comment_retention_days} "
            f"({CENTRAL_PURGE_TIMER}). Logs: journalctl -u {plan.service}. "
        )
    if not machine.live:
        return steps + f"The service is enabled in {machine.root}; it starts when it boots."
    return steps + "It is running now and starts at every power-on."


def main(argv: list[str], python: Path | None = None, main_py: Path | None = None) -> int:
    from kiosk.bootstrap import ROOT

    args = parse_args(argv)
    try:
        install(
            args, python=python or Path(sys.executable), main=main_py or ROOT / "main.py",
            euid=os.geteuid(),
        )
    except InstallRefused as error:
        print(f"install: {error}", file=sys.stderr)
        return 2
    return 0
