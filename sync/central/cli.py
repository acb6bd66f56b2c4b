"""The central store's commands, reached through ``python main.py <command> ...``.

    central --data DIR [--host 127.0.0.1] [--port 8700] [--trusted-proxy ADDR]
            [--max-connections N] [--backup-dir DIR] [--backup-keep N]
                                                          serve the store (a daily backup)
    central --database-url URL [--read-database-url URL] [--workers N] [--host ...] ...
                                                          the store on PostgreSQL, reads that
                                                          may lag from a replica, N processes
    central migrate --data DIR --database-url URL       copy the store into PostgreSQL
    backup --data DIR --to FILE|DIR                       a verified copy of the live store
    restore --from FILE --data DIR [--force]              a checked backup back into --data
    device add --data DIR --site S --name N               prints {"device_id", "token"}
    device approve --data DIR --code C --site S --name N [--role desk]
                                                          approve a kiosk's enrolment code
    device deny --data DIR --code C                       deny one
    device revoke --data DIR --device ID
    device list --data DIR
    token add --data DIR --name N [--sites A,B] [--admin]  prints {"token", "token_id", ...}
    token revoke --data DIR --id TOKEN_ID
    site set --data DIR --site S [--timezone Z] [--target-wait-min N] [--rating-scale 5|4]
             [--followup-tags a,b,c] [--idle-timeout-s N] [--survey faces|fft]
             [--comments on|off] [--languages en,es,ar]
             [--opening-hours "mon-fri 08:00-18:00, sat 09:00-12:00" | always]
             [--admin-totp optional|required]
    site list --data DIR
    user add --data DIR --name N [--password-stdin] [--role admin|manager|viewer] [--sites A,B]
             [--can-read-comments]                     a dashboard login
    user list --data DIR                                   logins, roles, sites, state
    purge --data DIR [--days 400] [--comment-retention-days 90]
                                                           delete data older than the retention
    demo-data --data DIR [--days 28] [--visits N] [--ratings N]
    alert rule set|list, alert list|ack|close, alert channel add|list|remove|test
                                                           (see sync.central.alerts.commands)

Every command that takes ``--data DIR`` also takes ``--database-url URL`` (postgresql://...;
``DATABASE_URL`` in the environment is the fallback, as ``READ_DATABASE_URL`` is for
``--read-database-url``): with a URL the store is that PostgreSQL database and ``--data`` is
optional (sync.central.store_options). ``backup``/``restore`` copy a SQLite file only; on
PostgreSQL they point to pg_dump / pg_basebackup.

Output meant for scripts is JSON on stdout; an error is one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from kiosk.shared import cli_values
from kiosk.shared.enrolment_codes import format_code, normalise_code
from kiosk.shared.fft import SURVEYS
from kiosk.shared.languages import LANGUAGES
from kiosk.shared.timeutil import utc_now
from sync.central import audit, auth, enrolment, sites
from sync.central.backup import BackupFailed
from sync.central.backup_schedule import DEFAULT_KEEP
from sync.central.migrations import SchemaTooNew
from sync.central.permissions import parse_sites
from sync.central.retention import DEFAULT_COMMENT_RETENTION_DAYS, DEFAULT_RETENTION_DAYS
from sync.central.serving import (
    BadProxyAddress,
    PortUnavailable,
    bind_socket,
    bound_port,
    make_server,
    trusted_proxies,
    url_for,
)
from sync.central.storage import DATABASE_FILE, CentralStore, StoreUnavailable
from sync.central.store_options import (
    ONE_SHOT_POOL,
    READ_DATABASE_URL_ENV,
    add_store_options,
    check_reachable,
    database_url,
    describe,
    migrate_postgres,
    open_postgres,
    read_database_url,
    refuse_postgres,
)

USAGE_ERROR = 2
MAX_CONNECTIONS = 1000  # sync.central.connection_guard's default, without importing uvicorn


class CommandFailed(Exception):
    """A command that cannot do what was asked; the message is shown to the operator."""


def _print_json(value) -> None:
    print(json.dumps(value, indent=2 if isinstance(value, list) else None))


def _existing_dir(args: argparse.Namespace) -> Path:
    """The data directory, which must exist: a mistyped path must not quietly become a new,
    empty store that no server reads (``central`` creates the directory on its first start)."""
    data = Path(args.data)
    if not data.is_dir():
        raise CommandFailed(
            f"there is no directory {args.data}: check the path (the central store creates "
            f"its data directory when first started with `main.py central --data DIR`)"
        )
    return data


def _open(args: argparse.Namespace, create: bool = False) -> CentralStore:
    """The store the command names: the PostgreSQL database at --database-url (or
    ``DATABASE_URL``), else the SQLite file in --data; with ``create``, a new SQLite store in
    an existing empty directory (a PostgreSQL database is always migrated on open)."""
    url = database_url(args)
    if url is not None:
        return open_postgres(url, pool_size=ONE_SHOT_POOL)
    data = _existing_dir(args)
    if not create and not (data / DATABASE_FILE).exists():
        raise CommandFailed(
            f"there is no central store in {args.data} (no {DATABASE_FILE}): check the path"
        )
    return CentralStore(data)


# The validators are shared with `install` (kiosk/shared/cli_values.py): one wording per mistake.
_port = cli_values.port_or_any
_at_least_zero = cli_values.at_least_zero
_at_least_one = cli_values.at_least_one


def cmd_central(args: argparse.Namespace) -> int:
    from kiosk.service_notify import ServiceNotifier
    from sync.central.connection_guard import ConnectionLimits, connection_cap

    url = database_url(args)
    read_url = read_database_url(args, url)
    if args.workers > 1 and url is None:
        raise CommandFailed(
            "--workers above 1 needs PostgreSQL (--database-url): one SQLite file has one "
            "writer, so more workers would only queue for it; leave --workers at 1"
        )
    proxies = trusted_proxies(args.trusted_proxy)
    limits = ConnectionLimits(max_connections=connection_cap(args.max_connections))
    data = Path(args.data) if args.data is not None else None
    service = ServiceNotifier.from_environ()
    if args.workers > 1:
        # Migrated once, here, before any worker starts: workers never race to migrate.
        migrate_postgres(url)
        if read_url is not None:
            check_reachable(read_url)
        app = None
    else:
        backups = None
        if args.backup_keep and url is None:
            from sync.central.backup_schedule import DailyBackups

            backups = DailyBackups(data, args.backup_dir, keep=args.backup_keep)
        if url is not None:
            check_reachable(url)  # a sentence now, not a pool's retries
            if read_url is not None:
                check_reachable(read_url)
        app = _app(data, url, read_url, backups, service)
    sock = bind_socket(args.host, args.port)
    port = bound_port(sock)  # differs from --port when that is 0 (any free port)
    where = f"data in {args.data}" if url is None else f"database {describe(url)}"
    if read_url is not None:
        where += f", reads from {describe(read_url)}"
    if args.workers > 1:
        where += f", {args.workers} workers"
    # The first line, parsed by tests and scripts for the port: keep its shape.
    print(f"Central store on {url_for(args.host, port)} ({where}); Ctrl+C stops it.",
          file=sys.stderr, flush=True)
    if url is not None and args.backup_keep:
        print("No daily backup: --backup-keep is for SQLite stores; back PostgreSQL up with "
              "its own tools (pg_dump, pg_basebackup).", file=sys.stderr, flush=True)

    def serve(app=app, service=service) -> None:
        if app is None:  # a worker builds its own app, pool and threads after the fork
            app = _app(data, url, read_url, None, None)
        server = make_server(app, args.host, port, args.log_level, proxies=proxies,
                             limits=limits)
        # uvicorn stops on the first Ctrl+C, then raises it again for whoever called it.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])

    if args.workers > 1:
        from sync.central.workers import Supervisor

        Supervisor(args.workers, serve, service=service).run()
    else:
        serve()
    print("Central store stopped.", file=sys.stderr, flush=True)
    return 0


def _app(data: Path | None, url: str | None, read_url: str | None, backups, service):
    from sync.central.app import create_app

    return create_app(data, database_url=url, read_database_url=read_url, backups=backups,
                      service=service)


def cmd_backup(args: argparse.Namespace) -> int:
    from sync.central.backup import engine_for

    refuse_postgres(args, "backup")
    database_url(args)  # neither --data nor a URL: say to give one
    _existing_dir(args)  # never opened as a CentralStore: that would migrate it first
    report = engine_for(Path(args.data)).backup(Path(args.to))
    _print_json(report.as_dict())
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from sync.central.backup import engine_for

    refuse_postgres(args, "restore")
    database_url(args)
    report = engine_for(Path(args.data)).restore(Path(args.source), force=args.force)
    _print_json(report.as_dict())
    return 0


def cmd_device_add(args: argparse.Namespace) -> int:
    store = _open(args, create=True)
    with store.write() as db:
        device, token = auth.add_device(db, args.site, args.name)
        audit.record(db, audit.command_actor(), "device.add", device.id, device.site, None,
                     {"site": device.site, "name": device.name})
    _print_json({"device_id": device.id, "token": token})
    return 0


def cmd_device_approve(args: argparse.Namespace) -> int:
    store = _open(args)
    with store.write() as db:
        device = enrolment.approve(db, args.code, args.site, args.name, args.role, utc_now())
        audit.record(db, audit.command_actor(), "device.approve", device.id, device.site, None,
                     {"name": device.name, "role": args.role})
    _print_json({"device_id": device.id, "site": device.site, "name": device.name,
                 "role": args.role, "approved": True})
    return 0


def cmd_device_deny(args: argparse.Namespace) -> int:
    shown = format_code(normalise_code(args.code) or "")
    store = _open(args)
    with store.write() as db:
        enrolment.deny(db, args.code, utc_now())
        audit.record(db, audit.command_actor(), "device.deny", None, None, None,
                     {"code": shown})
    _print_json({"code": shown, "denied": True})
    return 0


def cmd_device_revoke(args: argparse.Namespace) -> int:
    store = _open(args)
    with store.write() as db:
        before = db.execute("SELECT site, name, revoked FROM devices WHERE id = ?",
                            [args.device]).fetchone()
        auth.revoke_device(db, args.device)
        audit.record(db, audit.command_actor(), "device.revoke", args.device, before[0],
                     {"name": before[1], "revoked": bool(before[2])}, {"revoked": True})
    _print_json({"device_id": args.device, "revoked": True})
    return 0


def cmd_device_list(args: argparse.Namespace) -> int:
    _print_json(auth.list_devices(_open(args).db))
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    store = _open(args, create=True)
    scope = parse_sites(args.sites)
    with store.write() as db:
        for name in sorted(scope.sites or ()):
            sites.get_site(db, name)  # a mistyped site must not make a token that sees nothing
        token_id, token = auth.add_reporting_token(db, args.name, scope, admin=args.admin)
        shown = {"name": args.name, "role": "admin" if args.admin else "viewer",
                 "sites": scope.describe()}
        audit.record(db, audit.command_actor(), "token.add", token_id, None, None, shown)
    _print_json({"token": token, "token_id": token_id, "role": shown["role"],
                 "sites": sorted(scope.sites) if scope.sites is not None else "all"})
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    store = _open(args)
    with store.write() as db:
        before = db.execute("SELECT name, revoked FROM reporting_tokens WHERE id = ?",
                            [args.id]).fetchone()
        auth.revoke_reporting_token(db, args.id)  # an unknown id: a sentence, nothing written
        audit.record(db, audit.command_actor(), "token.revoke", args.id, None,
                     {"name": before[0], "revoked": bool(before[1])}, {"revoked": True})
    _print_json({"token_id": args.id, "revoked": True})
    return 0


def cmd_site_set(args: argparse.Namespace) -> int:
    tags = None
    if args.followup_tags is not None:
        tags = [tag.strip() for tag in args.followup_tags.split(",") if tag.strip()]
    store = _open(args, create=True)
    with store.write() as db:
        before = _site_before(db, args.site)
        config = sites.update_site(
            db,
            args.site,
            timezone=args.timezone,
            target_wait_min=args.target_wait_min,
            rating_scale=args.rating_scale,
            followup_tags=tags,
            idle_timeout_s=args.idle_timeout_s,
            survey=args.survey,
            comments=None if args.comments is None else args.comments == "on",
            languages=args.languages,
        )
        shown = config.as_dict()
        if args.opening_hours is not None:
            from sync.central.alerts.hours import set_site_hours

            shown["opening_hours"] = set_site_hours(db, config.name, args.opening_hours)
        if args.admin_totp is not None:
            shown["admin_totp"] = sites.set_admin_totp(db, config.name, args.admin_totp)
        audit.record(db, audit.command_actor(), "site.set", config.name, config.name, before,
                     _site_before(db, config.name))
    _print_json(shown)
    return 0


def _site_before(db, name: str) -> dict | None:
    """A site's settings as the audit trail keeps them (None for a site not yet made)."""
    from sync.central.alerts.hours import format_hours, site_hours

    try:
        name = sites.check_site_name(name)
        settings = sites.get_site(db, name).as_dict()
    except LookupError:
        return None
    row = db.execute("SELECT admin_totp FROM sites WHERE name = ?", [name]).fetchone()
    return {**settings, "opening_hours": format_hours(site_hours(db, name)),
            "admin_totp": row[0]}


def cmd_site_list(args: argparse.Namespace) -> int:
    _print_json([config.as_dict() for config in sites.list_sites(_open(args).db)])
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from kiosk.shared.timeutil import utc_now
    from sync.central.retention_schedule import RetentionPolicy, purge_and_record

    policy = RetentionPolicy(args.days, args.comment_retention_days)
    deleted = purge_and_record(_open(args), policy, utc_now(), audit.command_actor())
    _print_json({"retention_days": args.days,
                 "comment_retention_days": args.comment_retention_days, "deleted": deleted})
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from sync.central.dashboard.commands import user_add

    if database_url(args) is None:  # these mistakes are said before the password is asked
        _existing_dir(args)
    return user_add(lambda: _open(args, create=True), args.name, args.password_stdin,
                    args.role, args.sites, args.can_read_comments)


def cmd_user_list(args: argparse.Namespace) -> int:
    from sync.central.people.manage import list_people

    _print_json(list_people(_open(args).db))
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from sync.central.dashboard.commands import demo_data

    url = database_url(args)
    return demo_data(lambda: _open(args, create=True), url and describe(url) or args.data,
                     args.days, args.visits, args.ratings)


def _command(
    parent, name: str, handler: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    add_store_options(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="The central store's commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    central = _command(commands, "central", cmd_central, "serve the central store")
    central.add_argument("--host", default="127.0.0.1", help="address to listen on")
    central.add_argument("--port", type=_port, default=8700, help="port to listen on (0: any)")
    central.add_argument(
        "--read-database-url", metavar="URL",
        help=f"a read replica of --database-url for the dashboard, metrics and exports "
             f"(default: ${READ_DATABASE_URL_ENV})",
    )
    central.add_argument(
        "--workers", type=_at_least_one, default=1, metavar="N",
        help="server processes on the one port (default 1; more than 1 needs --database-url)",
    )
    central.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    central.add_argument(
        "--trusted-proxy", action="append", default=[], metavar="ADDR",
        help="a reverse proxy whose X-Forwarded-For names the client (an IP address or "
             "network; repeat it or separate with commas). Without it the client is the "
             "socket's peer.",
    )
    central.add_argument(
        "--max-connections", type=_at_least_one, default=MAX_CONNECTIONS, metavar="N",
        help=f"connections served at once; more get 503 + Retry-After (default "
             f"{MAX_CONNECTIONS}, lowered to fit the open-file limit)",
    )

    central.add_argument(
        "--backup-dir", type=Path, metavar="DIR",
        help="where the daily backup goes (default DATA/backups; best on another disk)",
    )
    central.add_argument(
        "--backup-keep", type=_at_least_zero, default=DEFAULT_KEEP, metavar="N",
        help=f"daily backups kept, the oldest deleted (default {DEFAULT_KEEP}; 0: no backups)",
    )
    backup = _command(commands, "backup", cmd_backup,
                      "copy the live store to a file (SQLite's online backup), then check it")
    backup.add_argument("--to", required=True, metavar="FILE|DIR",
                        help="a new file, or a folder for a dated "
                             "manual-central-<UTC time>.sqlite3")
    restore = commands.add_parser(
        "restore", help="put a checked backup back as the store in --data",
        description="put a checked backup back as the store in --data",
    )
    restore.set_defaults(handler=cmd_restore)
    restore.add_argument("--from", dest="source", required=True, metavar="FILE",
                         help="the backup file")
    add_store_options(restore)
    restore.add_argument("--force", action="store_true",
                         help="replace an existing store (it is backed up beside it first)")

    device = commands.add_parser("device", help="enrol, revoke and list kiosks")
    device_actions = device.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _command(device_actions, "add", cmd_device_add, "enrol a kiosk; prints its token once")
    add.add_argument("--site", required=True)
    add.add_argument("--name", required=True)
    approve = _command(device_actions, "approve", cmd_device_approve,
                       "approve the enrolment code a kiosk shows; the kiosk then gets its token")
    approve.add_argument("--code", required=True, help="the code on the kiosk, e.g. BCDF-GHJK")
    approve.add_argument("--site", required=True)
    approve.add_argument("--name", required=True)
    approve.add_argument("--role", default="desk", choices=["desk", "ratings", "staff"],
                         help="what the kiosk shows (default desk)")
    deny = _command(device_actions, "deny", cmd_device_deny, "refuse a kiosk's enrolment code")
    deny.add_argument("--code", required=True)
    revoke = _command(device_actions, "revoke", cmd_device_revoke, "revoke a kiosk's token")
    revoke.add_argument("--device", required=True, metavar="ID")
    _command(device_actions, "list", cmd_device_list, "list kiosks and their health")

    token = commands.add_parser("token", help="read-only reporting tokens")
    token_actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    token_add = _command(token_actions, "add", cmd_token_add, "create a reporting token")
    token_add.add_argument("--name", required=True)
    token_add.add_argument(
        "--sites", metavar="A,B",
        help="the sites it reads (comma-separated, each an existing site); default: all",
    )
    token_add.add_argument(
        "--admin", action="store_true",
        help="an admin token: every site, and the audit trail (GET /api/v1/audit)",
    )
    token_revoke = _command(token_actions, "revoke", cmd_token_revoke, "revoke a reporting token")
    token_revoke.add_argument("--id", required=True, metavar="TOKEN_ID")

    site = commands.add_parser("site", help="a site's settings")
    site_actions = site.add_subparsers(dest="action", required=True, metavar="ACTION")
    site_set = _command(site_actions, "set", cmd_site_set, "create a site or change settings")
    site_set.add_argument("--site", required=True)
    site_set.add_argument("--timezone", help="IANA zone, e.g. Europe/London")
    site_set.add_argument("--target-wait-min", type=float)
    site_set.add_argument("--rating-scale", type=int, choices=[4, 5])
    site_set.add_argument("--followup-tags", help="comma-separated, e.g. waiting_time,billing")
    site_set.add_argument("--idle-timeout-s", type=int)
    site_set.add_argument(
        "--survey", choices=list(SURVEYS),
        help="what patients are asked: 'faces' (the smiley faces, the default) or 'fft' (the "
             "NHS Friends and Family Test question, its six answers)",
    )
    site_set.add_argument(
        "--comments", choices=["on", "off"],
        help="offer patients a comment box after their answer (off by default); comments are "
             "redacted on the kiosk and read only by users given --can-read-comments",
    )
    site_set.add_argument(
        "--languages",
        help="the patients' language buttons, the site's default first, e.g. en,es,ar "
        "(any of: " + ", ".join(LANGUAGES) + ")",
    )
    site_set.add_argument(
        "--opening-hours", metavar="HOURS",
        help="when alerts for silent kiosks and long waits apply, on the site's clock: "
             "'mon-fri 08:00-18:00, sat 09:00-12:00' or 'always' (default mon-fri 08:00-18:00)",
    )
    site_set.add_argument(
        "--admin-totp", choices=["optional", "required"],
        help="required: every admin must use a second factor (TOTP) to use the dashboard",
    )
    _command(site_actions, "list", cmd_site_list, "list sites and their settings")
    purge = _command(commands, "purge", cmd_purge, "delete data older than the retention period")
    purge.add_argument("--days", type=_at_least_one, default=DEFAULT_RETENTION_DAYS,
                       help=f"retention in days (default {DEFAULT_RETENTION_DAYS})")
    purge.add_argument(
        "--comment-retention-days", type=_at_least_one, default=DEFAULT_COMMENT_RETENTION_DAYS,
        metavar="DAYS",
        help="patients' comments are deleted after this many days, sooner than the rest "
             f"(default {DEFAULT_COMMENT_RETENTION_DAYS})",
    )

    user = commands.add_parser("user", help="dashboard logins")
    user_actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    user_add = _command(user_actions, "add", cmd_user_add, "create a login or set its password")
    user_add.add_argument("--name", required=True)
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user_add.add_argument(
        "--can-read-comments", action=argparse.BooleanOptionalAction, default=None,
        help="let this login read patients' comments on the dashboard (--no-can-read-comments "
             "takes it away; without either, an existing login keeps what it had)",
    )
    user_add.add_argument(
        "--role", choices=["admin", "manager", "viewer"],
        help="what the login may do (default for a new login: admin; an existing one keeps "
             "its role unless given)",
    )
    user_add.add_argument(
        "--sites", metavar="A,B",
        help="the sites it sees (comma-separated, each an existing site; default: all); "
             "an admin sees every site",
    )
    _command(user_actions, "list", cmd_user_list, "list logins: role, sites, state, TOTP")

    demo = _command(commands, "demo-data", cmd_demo_data, "fill a fresh store with sample data")
    demo.add_argument("--days", type=_at_least_one, default=28, help="days of data ending today")
    demo.add_argument("--visits", type=_at_least_one, help="about this many visits (e.g. 1000000)")
    demo.add_argument("--ratings", type=_at_least_one, help="about this many ratings")

    from sync.central.alerts.commands import register as register_alert_commands

    register_alert_commands(commands, _command, _open, _print_json)
    return parser


def main(argv: list[str]) -> int:
    """Run one command; argv starts with the command word (``["device", "add", ...]``)."""
    if argv[:2] == ["central", "migrate"]:
        # `central` is a command with options, not a group: its one action has its own parser.
        from sync.central.move_command import main as migrate_main

        return migrate_main(argv[2:])
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (
        CommandFailed,
        BackupFailed,
        StoreUnavailable,
        SchemaTooNew,
        PortUnavailable,
        BadProxyAddress,
        ValueError,
        LookupError,
    ) as error:
        print(f"error: {_sentence(error)}", file=sys.stderr)
    except sqlite3.Error as error:
        print(f"error: the database {_where(args)} could not be used: {error}.", file=sys.stderr)
    return USAGE_ERROR


def _where(args: argparse.Namespace) -> str:
    """The store named in a message: its URL without the password, or its data directory."""
    try:
        url = database_url(args)
    except ValueError:
        url = None
    return f"at {describe(url)}" if url else f"in {getattr(args, 'data', None)}"


def _sentence(error: Exception) -> str:
    # A KeyError's str() is its repr; its first argument is the message itself.
    text = str(error.args[0] if error.args else error).strip()
    return text if text.endswith(".") else text + "."


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
