"""Entry point. `python3 main.py` runs the kiosk (with an embedded central store when no central
URL is configured); `python3 main.py test` runs the test suite. Both set the machine up first.

Commands (a public contract, see README.md):
  (none) [--windowed] [--data DIR]                 the kiosk with an embedded central store
  kiosk [--config FILE] [--windowed] [--data DIR]  the kiosk, syncing to its configured store
  central --data DIR [--host H] [--port P]         the central store
          [--trusted-proxy ADDR] [--max-connections N]
          [--backup-dir DIR] [--backup-keep N]     (and its daily backup)
  central migrate --data DIR --database-url URL    copy a SQLite central store into an empty
                                                   PostgreSQL database and verify the copy
  device add|approve|deny|revoke|list, token add|revoke, site set|list, user add|list,
  purge, demo-data,
  alert rule set|list, alert list|ack|close, alert channel add|list|remove|test
                                                   the central store's admin commands (--data DIR)
  install --kiosk|--central [--dry-run] [--root DIR] [--display auto|cage|kmsdrm]
                                                   make this machine an appliance: systemd
                                                   units, a system user, journald limits
  backup --data DIR --to FILE|DIR, restore --from FILE --data DIR [--force]
                                                   the central store's backups
  translations [--check]                           extract the screens' strings and update the
                                                   catalogs in kiosk/locale (--check: only say
                                                   whether they are up to date, exit 1 if not)
  test [pytest args]                               set up, lint and run the test suite (and,
                                                   with no pytest args, the calendar sweep)
  sweep [LABEL ...]                                the clock-sensitive tests at fixed instants
                                                   (every weekday, clock changes, 31 Dec, 29 Feb)
  help                                             this text; `COMMAND --help` for one command
"""

import sys

from kiosk.bootstrap import ensure_environment, run_calendar_sweep, run_tests

CENTRAL_COMMANDS = {"central", "device", "token", "site", "user", "demo-data", "purge", "alert",
                    "backup", "restore"}
COMMANDS = {"kiosk", "test", "sweep", "help", "install", "translations", *CENTRAL_COMMANDS}


def main(argv: list[str]) -> int:
    if argv[:1] in (["help"], ["--help"], ["-h"]):
        commands = __doc__.split("Commands", 1)[1].split(":", 1)[1].strip("\n")
        print(f"usage: python3 main.py [COMMAND] [OPTIONS]\n\n{commands}")
        return 0
    command = argv[0] if argv and not argv[0].startswith("-") else "kiosk"
    if command not in COMMANDS:
        print(
            f"main.py: there is no command {command!r}; the commands are "
            f"{', '.join(sorted(COMMANDS))} (python3 main.py help).",
            file=sys.stderr,
        )
        return 2
    if command == "test":
        ensure_environment(with_tests=True)
        return run_tests(argv[1:])
    if command == "sweep":
        ensure_environment(with_tests=True)
        return run_calendar_sweep(argv[1:])
    ensure_environment()
    if command == "install":
        from kiosk.appliance.install import main as install_main

        return install_main(argv[1:])

    if command == "translations":
        from kiosk.catalogs import main as catalogs_main

        return catalogs_main(argv[1:])
    if command in CENTRAL_COMMANDS:
        from sync.central.cli import main as central_main

        return central_main(argv)
    from kiosk.launcher import main as kiosk_main
    from sync.runner import KioskSync

    if argv and argv[0] == "kiosk":
        # The kiosk alone: it syncs to the central store its config names, if any.
        return kiosk_main(argv[1:], sync_runner=KioskSync())
    # The default: an embedded central store beside the kiosk unless a central URL is set.
    return kiosk_main(argv, sync_runner=KioskSync(embedded=True))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
