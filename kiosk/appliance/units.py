"""The files ``install`` writes, as text: systemd units, a system user, PAM, journald, blanking.

Pure functions of an ``InstallPlan``: ``--dry-run`` prints them and the tests check them with
``systemd-analyze verify``, so what is reviewed is byte for byte what lands in /etc.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

KIOSK_SERVICE = "clinic-kiosk.service"
CENTRAL_SERVICE = "clinic-central.service"
# The central store's retention, run nightly: `purge` as an operator would run it by hand.
CENTRAL_PURGE_SERVICE = "clinic-central-purge.service"
CENTRAL_PURGE_TIMER = "clinic-central-purge.timer"
DEFAULT_RETENTION_DAYS = 400  # sync.central.retention's defaults (not imported: no server here)
DEFAULT_COMMENT_RETENTION_DAYS = 90
KIOSK_USER = "clinic-kiosk"
CENTRAL_USER = "clinic-central"
# Devices the kiosk opens itself: the GPU (video, render) and the touchscreen (input).
KIOSK_GROUPS = ("video", "render", "input")
DISPLAYS = ("cage", "kmsdrm")
# The journal is kept small enough for a 16 GB SD card and long enough to read last month.
JOURNAL_LIMITS = {"SystemMaxUse": "200M", "SystemKeepFree": "1G", "RuntimeMaxUse": "50M",
                  "MaxRetentionSec": "1month"}


@dataclass(frozen=True)
class InstallFile:
    path: PurePosixPath  # where it goes on the target machine
    text: str
    mode: int = 0o644
    keep_existing: bool = False  # a settings file the operator may have edited already

    @property
    def private(self) -> bool:
        """Root's only (a secret): kept or not, it must stay so."""
        return self.mode & 0o077 == 0


@dataclass(frozen=True)
class InstallPlan:
    role: str  # "kiosk" or "central"
    python: PurePosixPath  # the interpreter of the project's .venv
    main: PurePosixPath  # the project's main.py
    display: str = "cage"
    tty: str = "tty1"
    watchdog_s: int = 30
    host: str = "127.0.0.1"
    port: int = 8700
    backup_keep: int = 14
    retention_days: int = DEFAULT_RETENTION_DAYS
    comment_retention_days: int = DEFAULT_COMMENT_RETENTION_DAYS
    # Where the kernel command line lives, to add consoleblank=0 (None: no such file found).
    cmdline_file: PurePosixPath | None = None

    @property
    def user(self) -> str:
        return KIOSK_USER if self.role == "kiosk" else CENTRAL_USER

    @property
    def service(self) -> str:
        return KIOSK_SERVICE if self.role == "kiosk" else CENTRAL_SERVICE

    @property
    def data_dir(self) -> PurePosixPath:
        return PurePosixPath("/var/lib") / self.user

    @property
    def config_file(self) -> PurePosixPath:
        return PurePosixPath("/etc/clinic-kiosk/kiosk.toml")

    @property
    def secrets_file(self) -> PurePosixPath:
        """KIOSK_* variables that must not be world-readable (the device token): systemd
        reads this file as root and hands the values to the kiosk in its environment."""
        return PurePosixPath("/etc/clinic-kiosk/kiosk.env")


def files_for(plan: InstallPlan) -> list[InstallFile]:
    """Everything ``install`` writes for this plan, in the order it writes them."""
    files = [
        InstallFile(PurePosixPath("/etc/sysusers.d") / f"{plan.user}.conf", sysusers(plan)),
        InstallFile(PurePosixPath("/etc/systemd/journald.conf.d/clinic-kiosk.conf"), journald()),
    ]
    if plan.role == "kiosk":
        files += [
            InstallFile(PurePosixPath("/etc/pam.d") / KIOSK_USER, pam_session()),
            InstallFile(plan.config_file, kiosk_config(plan), keep_existing=True),
            InstallFile(plan.secrets_file, kiosk_secrets(), mode=0o600, keep_existing=True),
            InstallFile(PurePosixPath("/etc/systemd/system") / KIOSK_SERVICE, kiosk_unit(plan)),
        ]
    else:
        units = PurePosixPath("/etc/systemd/system")
        files += [
            InstallFile(units / CENTRAL_SERVICE, central_unit(plan)),
            InstallFile(units / CENTRAL_PURGE_SERVICE, central_purge_unit(plan)),
            InstallFile(units / CENTRAL_PURGE_TIMER, central_purge_timer()),
        ]
    return files


def sysusers(plan: InstallPlan) -> str:
    """A system user, made by systemd-sysusers (declarative: re-running install changes
    nothing, and the file says on the target machine why the user exists)."""
    lines = [
        f"# {plan.service} runs as this user (written by `python3 main.py install`).",
        f'u {plan.user} - "Clinic {plan.role}" {plan.data_dir} /usr/sbin/nologin',
    ]
    if plan.role == "kiosk":
        lines += [f"m {plan.user} {group}" for group in KIOSK_GROUPS]
    return "\n".join(lines) + "\n"


def journald() -> str:
    limits = "\n".join(f"{key}={value}" for key, value in JOURNAL_LIMITS.items())
    return (
        "# Written by `python3 main.py install`: an unattended machine must never fill its\n"
        "# disk with logs (the kiosk's own data needs the room).\n"
        f"[Journal]\n{limits}\n"
    )


def pam_session() -> str:
    """A login session for the kiosk user: logind then gives it the seat (the screen and the
    touchscreen) and a runtime directory, which cage and SDL need."""
    return (
        "# The kiosk's session on its console (written by `python3 main.py install`).\n"
        "auth     required pam_unix.so nullok\n"
        "account  required pam_unix.so\n"
        "session  required pam_unix.so\n"
        "session  required pam_systemd.so\n"
    )


def kiosk_config(plan: InstallPlan) -> str:
    return (
        "# The kiosk's settings (README, 'Kiosk configuration'). Written once by\n"
        "# `python3 main.py install --kiosk`, never overwritten.\n"
        f'data_dir = "{plan.data_dir}"\n'
        "# site = \"North\"\n"
        "# central_url = \"https://central.example.org\"\n"
        "# min_free_mb = 200\n"
        "# The device token goes in kiosk.env beside this file (readable by root only).\n"
    )


def kiosk_secrets() -> str:
    return (
        "# KIOSK_* settings kept from other users (mode 0600; systemd reads it as root).\n"
        "# KIOSK_CENTRAL_TOKEN=...\n"
    )


def _command(*words: str | PurePosixPath) -> str:
    return " ".join(shlex.quote(str(word)) for word in words)


def kiosk_unit(plan: InstallPlan) -> str:
    kiosk = _command(plan.python, plan.main, "kiosk", "--config", plan.config_file)
    if plan.display == "cage":
        # Kivy's SDL2 (from its wheel) has no native Wayland driver: it draws through cage's
        # Xwayland. -d: no window decorations; -s: Ctrl+Alt+F2 still reaches a console.
        start = f"/usr/bin/cage -d -s -- {kiosk}"
        environment = "SDL_VIDEODRIVER=x11"
        how = "fullscreen under the cage Wayland compositor"
    else:
        start = kiosk
        environment = "SDL_VIDEODRIVER=kmsdrm"
        how = "fullscreen on the console through SDL's KMSDRM driver"
    tty = plan.tty
    return f"""\
# Written by `python3 main.py install --kiosk`; re-run it rather than edit this file.
[Unit]
Description=Clinic front-desk kiosk ({how})
After=systemd-user-sessions.service plymouth-quit-wait.service getty@{tty}.service
Conflicts=getty@{tty}.service
# Never stop restarting: an unattended kiosk has nobody to run `systemctl reset-failed`.
StartLimitIntervalSec=0

[Service]
# READY=1 after the first frame, WATCHDOG=1 from the UI thread (kiosk/service_notify.py);
# under cage the kiosk is cage's child, hence NotifyAccess=all.
Type=notify
NotifyAccess=all
WatchdogSec={plan.watchdog_s}
TimeoutStartSec=180
ExecStartPre=-+/bin/sh -c 'TERM=linux setterm --blank 0 --powerdown 0 --powersave off > /dev/{tty}'
ExecStart={start}
Restart=always
RestartSec=2
User={plan.user}
Group={plan.user}
SupplementaryGroups={" ".join(KIOSK_GROUPS)}
StateDirectory={plan.user}
PAMName={plan.user}
TTYPath=/dev/{tty}
TTYReset=yes
TTYVHangup=yes
TTYVTDisallocate=yes
StandardInput=tty-fail
StandardOutput=journal
StandardError=journal
UtmpIdentifier={tty}
UtmpMode=user
EnvironmentFile=-{plan.secrets_file}
Environment={environment} KIVY_WINDOW=sdl2 KIVY_NO_FILELOG=1 KIVY_HOME={plan.data_dir}/kivy

[Install]
WantedBy=multi-user.target
"""


def central_unit(plan: InstallPlan) -> str:
    central = _command(
        plan.python, plan.main, "central", "--data", plan.data_dir, "--host", plan.host,
        "--port", str(plan.port), "--backup-keep", str(plan.backup_keep),
    )
    return f"""\
# Written by `python3 main.py install --central`; re-run it rather than edit this file.
[Unit]
Description=Clinic kiosk central store (HTTP API and dashboard on {plan.host}:{plan.port})
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
# READY=1 once it listens, WATCHDOG=1 from its event loop (sync/central/service_link.py).
Type=notify
# No start timeout: an upgrade migrates the store before it listens, which on a large store
# can take longer than systemd's 90 s default, and a migration killed half-way is retried
# from the start at every restart. The watchdog takes over once READY=1 is sent.
TimeoutStartSec=infinity
NotifyAccess=main
WatchdogSec={plan.watchdog_s}
ExecStart={central}
Restart=always
RestartSec=2
StateDirectory={plan.user}
{_central_sandbox(plan)}

[Install]
WantedBy=multi-user.target
"""


def _central_sandbox(plan: InstallPlan) -> str:
    """The central store's user and sandbox, the same for the server and its nightly purge:
    its own user, a read-only view of the system but for its data folder."""
    return f"""\
User={plan.user}
Group={plan.user}
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ReadWritePaths={plan.data_dir}"""


def central_purge_unit(plan: InstallPlan) -> str:
    purge = _command(
        plan.python, plan.main, "purge", "--data", plan.data_dir,
        "--days", str(plan.retention_days),
        "--comment-retention-days", str(plan.comment_retention_days),
    )
    return f"""\
# Written by `python3 main.py install --central`; re-run it rather than edit this file.
# The product's rule: data older than the retention period is purged on both sides. The
# kiosks purge their own; this is the central store's, started by {CENTRAL_PURGE_TIMER}.
[Unit]
Description=Clinic kiosk central store: delete data older than the retention period
After={CENTRAL_SERVICE}

[Service]
Type=oneshot
ExecStart={purge}
{_central_sandbox(plan)}
"""


def central_purge_timer() -> str:
    return f"""\
# Written by `python3 main.py install --central`; re-run it rather than edit this file.
[Unit]
Description=Clinic kiosk central store: the nightly retention purge

[Timer]
# At night, when kiosks send least (a purge holds the store's writer while it deletes; the
# kiosks' batches wait and are answered after). Persistent: a machine that was off at that
# time purges at its next start.
OnCalendar=*-*-* 03:30:00
RandomizedDelaySec=30min
Persistent=true
Unit={CENTRAL_PURGE_SERVICE}

[Install]
WantedBy=timers.target
"""
