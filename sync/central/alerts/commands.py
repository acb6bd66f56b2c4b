"""The ``alert`` commands (registered by ``sync.central.cli``):

    alert rule set --data DIR --site S --rule R [--on|--off] [--threshold X] [--min-ratings N]
                   [--window-min M] [--multiple X] [--min-negative N] [--silent-min M]
                   [--cooldown-min M] [--clear-min M]
    alert rule list --data DIR --site S
    alert list --data DIR [--site S] [--state open|notified|acknowledged|closed]
                          [--from T] [--to T]
    alert ack --data DIR --id N --by NAME [--comment TEXT]
    alert close --data DIR --id N --by NAME [--comment TEXT]
    alert channel add --data DIR --kind webhook --url URL (--secret S|--secret-stdin) [--site S]
                      [--format json|slack] [--dashboard-url URL]
                      [--quiet-hours 22:00-07:00 [--quiet-timezone Europe/London]]
    alert channel add --data DIR --kind email --smtp-host H [--smtp-port P]
                      [--starttls|--tls] [--smtp-user U --smtp-password-stdin]
                      --to ADDR[,ADDR] --from ADDR [--site S] [--dashboard-url URL]
    alert channel list --data DIR
    alert channel remove --data DIR --id N
    alert channel test --data DIR --id N          send a test message now
"""

from __future__ import annotations

import sys

from kiosk.shared.timeutil import utc_now
from sync.central import audit
from sync.central.alerts import channels, lifecycle, rules
from sync.central.metrics_query import parse_range
from sync.central.sites import get_site


def _rule_set(args, store, print_json) -> int:
    params = {name: getattr(args, name) for name in rules.BOUNDS}
    with store.write() as db:
        get_site(db, args.site)
        before = rules.site_rules(db, args.site)[args.rule].as_dict()
        setting = rules.set_rule(db, args.site, args.rule, args.enabled, **params)
        audit.record(db, audit.command_actor(), "alert_rule.set", args.rule, args.site, before,
                     setting.as_dict())
    print_json({"site": args.site, **setting.as_dict()})
    return 0


def _rule_list(args, store, print_json) -> int:
    get_site(store.db, args.site)
    print_json([setting.as_dict() for setting in rules.site_rules(store.db, args.site).values()])
    return 0


def _list(args, store, print_json) -> int:
    if args.state is not None and args.state not in lifecycle.STATES:
        raise ValueError(f"state {args.state!r} must be one of {', '.join(lifecycle.STATES)}")
    start, end = parse_range(args.from_, args.to, utc_now())
    print_json(lifecycle.list_alerts(store.db, start, end, args.site, args.state))
    return 0


def _ack(args, store, print_json) -> int:
    with store.write() as db:
        lifecycle.acknowledge(db, args.id, args.by, utc_now(), args.comment)
        audit.record(db, audit.command_actor(), "alert.acknowledge", f"alert {args.id}",
                     lifecycle.alert_site(db, args.id), None,
                     {"state": "acknowledged", "acknowledged_by": args.by,
                      "comment": args.comment})
    print_json({"id": args.id, "state": "acknowledged"})
    return 0


def _close(args, store, print_json) -> int:
    with store.write() as db:
        lifecycle.close_by_hand(db, args.id, args.by, utc_now(), args.comment)
        audit.record(db, audit.command_actor(), "alert.close", f"alert {args.id}",
                     lifecycle.alert_site(db, args.id), None,
                     {"state": "closed", "closed_by": args.by, "comment": args.comment})
    print_json({"id": args.id, "state": "closed"})
    return 0


def _channel_add(args, store, print_json) -> int:
    security = "tls" if args.tls else "starttls" if args.starttls else "none"
    # Secrets may come from stdin, so they stay out of the process list and shell history.
    password = sys.stdin.readline().rstrip("\n") if args.smtp_password_stdin else None
    secret = sys.stdin.readline().rstrip("\n") if args.secret_stdin else args.secret
    settings = {
        "url": args.url, "secret": secret, "format": args.format,
        "smtp_host": args.smtp_host, "smtp_port": args.smtp_port, "security": security,
        "smtp_user": args.smtp_user, "smtp_password": password,
        "mail_to": args.to, "mail_from": args.from_, "dashboard_url": args.dashboard_url,
        "quiet_hours": args.quiet_hours, "quiet_timezone": args.quiet_timezone,
    }
    with store.write() as db:
        if args.site is not None:
            get_site(db, args.site)
        channel = channels.add_channel(db, args.kind, args.site, settings, utc_now())
        audit.record(db, audit.command_actor(), "alert_channel.add", f"channel {channel['id']}",
                     args.site, None, channel)
    print_json(channel)
    return 0


def _channel_list(args, store, print_json) -> int:
    print_json([channels.public(channel) for channel in channels.list_channels(store.db)])
    return 0


def _channel_remove(args, store, print_json) -> int:
    with store.write() as db:
        before = channels.public(channels.get_channel(db, args.id))
        channels.remove_channel(db, args.id)
        audit.record(db, audit.command_actor(), "alert_channel.remove", f"channel {args.id}",
                     before.get("site"), before, None)
    print_json({"id": args.id, "removed": True})
    return 0


def _channel_test(args, store, print_json) -> int:
    channel = channels.get_channel(store.db, args.id)
    now = utc_now()
    try:
        channels.send(channel, channels.sample_alert(channel, now), now)
    except channels.DeliveryFailed as error:
        raise ValueError(f"the test message was not delivered: {error}") from None
    print_json({"id": args.id, "sent": True})
    return 0


def register(commands, command, open_store, print_json) -> None:
    """Add ``alert ...`` to the CLI; ``command`` makes a subcommand with ``--data``."""

    def runs(handler):
        return lambda args: handler(args, open_store(args), print_json)

    alert = commands.add_parser("alert", help="alert rules, alerts and where they are sent")
    actions = alert.add_subparsers(dest="action", required=True, metavar="ACTION")

    rule = actions.add_parser("rule", help="a site's alert rules")
    rule_actions = rule.add_subparsers(dest="rule_action", required=True, metavar="ACTION")
    rule_set = command(rule_actions, "set", runs(_rule_set), "change one rule at a site")
    rule_set.add_argument("--site", required=True)
    rule_set.add_argument("--rule", required=True, choices=rules.RULES)
    switch = rule_set.add_mutually_exclusive_group()
    switch.add_argument("--on", dest="enabled", action="store_const", const=True, default=None)
    switch.add_argument("--off", dest="enabled", action="store_const", const=False)
    for name in rules.BOUNDS:
        rule_set.add_argument("--" + name.replace("_", "-"), dest=name, type=float)
    rule_list = command(rule_actions, "list", runs(_rule_list), "a site's rules as they apply")
    rule_list.add_argument("--site", required=True)

    listing = command(actions, "list", runs(_list), "alerts live in a range (default 24 h)")
    listing.add_argument("--site")
    listing.add_argument("--state", choices=lifecycle.STATES)
    listing.add_argument("--from", dest="from_", metavar="T", help="RFC 3339")
    listing.add_argument("--to", metavar="T", help="RFC 3339")
    for name, handler, text in (("ack", _ack, "acknowledge an alert"),
                                ("close", _close, "close an alert by hand")):
        sub = command(actions, name, runs(handler), text)
        sub.add_argument("--id", type=int, required=True)
        sub.add_argument("--by", required=True, help="who (a name or a role, not a patient)")
        sub.add_argument("--comment")

    channel = actions.add_parser("channel", help="where alerts are sent")
    channel_actions = channel.add_subparsers(dest="channel_action", required=True,
                                             metavar="ACTION")
    add = command(channel_actions, "add", runs(_channel_add), "add a webhook or e-mail channel")
    add.add_argument("--kind", required=True, choices=channels.KINDS)
    add.add_argument("--site", help="only this site's alerts (default: every site)")
    add.add_argument("--url", help="webhook: where to POST")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="webhook: the HMAC-SHA256 key (visible to ps; "
                        "--secret-stdin is not)")
    secret.add_argument("--secret-stdin", action="store_true",
                        help="webhook: read the HMAC-SHA256 key from the first line of stdin")
    add.add_argument("--format", choices=channels.FORMATS, default="json",
                     help="webhook: json (signed alert) or slack (the text and the signed time)")
    add.add_argument("--smtp-host")
    add.add_argument("--smtp-port", type=int, default=25)
    tls = add.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true")
    tls.add_argument("--tls", action="store_true", help="TLS from the start (port 465)")
    add.add_argument("--smtp-user")
    add.add_argument("--smtp-password-stdin", action="store_true")
    add.add_argument("--to", help="e-mail: recipients, comma-separated")
    add.add_argument("--from", dest="from_", help="e-mail: sender address")
    add.add_argument("--dashboard-url", help="the dashboard's address, linked in messages")
    add.add_argument("--quiet-hours", metavar="HH:MM-HH:MM",
                     help="daily hours when nothing is sent (held, then sent), e.g. 22:00-07:00")
    add.add_argument("--quiet-timezone", metavar="ZONE", help="the quiet hours' zone (UTC)")
    command(channel_actions, "list", runs(_channel_list), "list channels (secrets hidden)")
    for name, handler, text in (("remove", _channel_remove, "remove a channel"),
                                ("test", _channel_test, "send a test message now")):
        sub = command(channel_actions, name, runs(handler), text)
        sub.add_argument("--id", type=int, required=True)


