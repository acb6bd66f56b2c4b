"""The central store's commands, reached through ``python main.py <command> ...``.

    central --data DIR [--host 127.0.0.1] [--port 8700] [--trusted-proxy ADDR]
            [--max-connections N]                      serve the store
    device add --data DIR --site S --name N               prints {"device_id", "token"}
    device revoke --data DIR --device ID
    device list --data DIR
    token add --data DIR --name N                         prints {"token", "token_id"}
    token revoke --data DIR --id TOKEN_ID
    site set --data DIR --site S [--timezone Z] [--target-wait-min N] [--rating-scale 5|4]
             [--followup-tags a,b,c] [--idle-timeout-s N] [--languages en,es,ar]
             [--opening-hours "mon-fri 08:00-18:00, sat 09:00-12:00" | always]
    site list --data DIR
    user add --data DIR --name N [--password-stdin]       a dashboard login
    purge --data DIR [--days 400]                          delete data older than the retention
    demo-data --data DIR [--days 28] [--visits N] [--ratings N]
    alert rule set|list, alert list|ack|close, alert channel add|list|remove|test
                                                           (see sync.central.alerts.commands)

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

from kiosk.shared.languages import LANGUAGES
from sync.central import auth, sites
from sync.central.migrations import SchemaTooNew
from sync.central.retention import DEFAULT_RETENTION_DAYS
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
    """The store in --data; with ``create``, a new one in an existing empty directory."""
    data = _existing_dir(args)
    if not create and not (data / DATABASE_FILE).exists():
        raise CommandFailed(
            f"there is no central store in {args.data} (no {DATABASE_FILE}): check the path"
        )
    return CentralStore(data)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 1 to 65535, or 0 for any")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small: it must be 1 or more")
    return value


def cmd_central(args: argparse.Namespace) -> int:
    from sync.central.app import create_app
    from sync.central.connection_guard import ConnectionLimits, connection_cap

    proxies = trusted_proxies(args.trusted_proxy)
    limits = ConnectionLimits(max_connections=connection_cap(args.max_connections))
    app = create_app(Path(args.data))
    sock = bind_socket(args.host, args.port)
    port = bound_port(sock)  # differs from --port when that is 0 (any free port)
    print(
        f"Central store on {url_for(args.host, port)} (data in {args.data}); Ctrl+C stops it.",
        file=sys.stderr,
        flush=True,
    )
    server = make_server(app, args.host, port, args.log_level, proxies=proxies, limits=limits)
    # uvicorn stops on the first Ctrl+C, then raises it again for whoever called it.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    print("Central store stopped.", file=sys.stderr, flush=True)
    return 0


def cmd_device_add(args: argparse.Namespace) -> int:
    store = _open(args, create=True)
    with store.write() as db:
        device, token = auth.add_device(db, args.site, args.name)
    _print_json({"device_id": device.id, "token": token})
    return 0


def cmd_device_revoke(args: argparse.Namespace) -> int:
    store = _open(args)
    with store.write() as db:
        auth.revoke_device(db, args.device)
    _print_json({"device_id": args.device, "revoked": True})
    return 0


def cmd_device_list(args: argparse.Namespace) -> int:
    _print_json(auth.list_devices(_open(args).db))
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    store = _open(args, create=True)
    with store.write() as db:
        token_id, token = auth.add_reporting_token(db, args.name)
    _print_json({"token": token, "token_id": token_id})
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    store = _open(args)
    with store.write() as db:
        auth.revoke_reporting_token(db, args.id)
    _print_json({"token_id": args.id, "revoked": True})
    return 0


def cmd_site_set(args: argparse.Namespace) -> int:
    tags = None
    if args.followup_tags is not None:
        tags = [tag.strip() for tag in args.followup_tags.split(",") if tag.strip()]
    store = _open(args, create=True)
    with store.write() as db:
        config = sites.update_site(
            db,
            args.site,
            timezone=args.timezone,
            target_wait_min=args.target_wait_min,
            rating_scale=args.rating_scale,
            followup_tags=tags,
            idle_timeout_s=args.idle_timeout_s,
            languages=args.languages,
        )
        shown = config.as_dict()
        if args.opening_hours is not None:
            from sync.central.alerts.hours import set_site_hours

            shown["opening_hours"] = set_site_hours(db, config.name, args.opening_hours)
    _print_json(shown)
    return 0


def cmd_site_list(args: argparse.Namespace) -> int:
    _print_json([config.as_dict() for config in sites.list_sites(_open(args).db)])
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from kiosk.shared.timeutil import utc_now
    from sync.central.retention import purge

    store = _open(args)
    with store.write() as db:
        deleted = purge(db, args.days, utc_now())
    _print_json({"retention_days": args.days, "deleted": deleted})
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from sync.central.dashboard.commands import user_add

    return user_add(_existing_dir(args), args.name, args.password_stdin)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from sync.central.dashboard.commands import demo_data

    return demo_data(Path(args.data), args.days, args.visits, args.ratings)


def _data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="the data directory")


def _command(
    parent, name: str, handler: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    _data_option(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="The central store's commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    central = _command(commands, "central", cmd_central, "serve the central store")
    central.add_argument("--host", default="127.0.0.1", help="address to listen on")
    central.add_argument("--port", type=_port, default=8700, help="port to listen on (0: any)")
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

    device = commands.add_parser("device", help="enrol, revoke and list kiosks")
    device_actions = device.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _command(device_actions, "add", cmd_device_add, "enrol a kiosk; prints its token once")
    add.add_argument("--site", required=True)
    add.add_argument("--name", required=True)
    revoke = _command(device_actions, "revoke", cmd_device_revoke, "revoke a kiosk's token")
    revoke.add_argument("--device", required=True, metavar="ID")
    _command(device_actions, "list", cmd_device_list, "list kiosks and their health")

    token = commands.add_parser("token", help="read-only reporting tokens")
    token_actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    token_add = _command(token_actions, "add", cmd_token_add, "create a reporting token")
    token_add.add_argument("--name", required=True)
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
        "--languages",
        help="the patients' language buttons, the site's default first, e.g. en,es,ar "
        "(any of: " + ", ".join(LANGUAGES) + ")",
    )
    site_set.add_argument(
        "--opening-hours", metavar="HOURS",
        help="when alerts for silent kiosks and long waits apply, on the site's clock: "
             "'mon-fri 08:00-18:00, sat 09:00-12:00' or 'always' (default mon-fri 08:00-18:00)",
    )
    _command(site_actions, "list", cmd_site_list, "list sites and their settings")
    purge = _command(commands, "purge", cmd_purge, "delete data older than the retention period")
    purge.add_argument("--days", type=_at_least_one, default=DEFAULT_RETENTION_DAYS,
                       help=f"retention in days (default {DEFAULT_RETENTION_DAYS})")

    user = commands.add_parser("user", help="dashboard logins")
    user_actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    user_add = _command(user_actions, "add", cmd_user_add, "create a login or set its password")
    user_add.add_argument("--name", required=True)
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    demo = _command(commands, "demo-data", cmd_demo_data, "fill a fresh store with sample data")
    demo.add_argument("--days", type=_at_least_one, default=28, help="days of data ending today")
    demo.add_argument("--visits", type=_at_least_one, help="about this many visits (e.g. 1000000)")
    demo.add_argument("--ratings", type=_at_least_one, help="about this many ratings")

    from sync.central.alerts.commands import register as register_alert_commands

    register_alert_commands(commands, _command, _open, _print_json)
    return parser


def main(argv: list[str]) -> int:
    """Run one command; argv starts with the command word (``["device", "add", ...]``)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (
        CommandFailed,
        StoreUnavailable,
        SchemaTooNew,
        PortUnavailable,
        BadProxyAddress,
        ValueError,
        LookupError,
    ) as error:
        print(f"error: {_sentence(error)}", file=sys.stderr)
    except sqlite3.Error as error:
        print(f"error: the database in {args.data} could not be used: {error}.", file=sys.stderr)
    return USAGE_ERROR


def _sentence(error: Exception) -> str:
    # A KeyError's str() is its repr; its first argument is the message itself.
    text = str(error.args[0] if error.args else error).strip()
    return text if text.endswith(".") else text + "."


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
