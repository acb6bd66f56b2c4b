"""The dashboard's admin commands, called from ``sync.central.cli``.

user add (--data DIR | --database-url URL) --name NAME [--password-stdin] [--role R]
         [--sites A,B] [--can-read-comments]
                                                      a dashboard login (Argon2id)
demo-data (--data DIR | --database-url URL) [--days 28] [--visits N] [--ratings N]
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable

from sync.central.storage import CentralStore


def user_add(open_store: Callable[[], CentralStore], name: str, password_stdin: bool,
             role: str | None = None, sites: str | None = None,
             can_read_comments: bool | None = None) -> int:
    """``open_store``: opens the store, called once the password is in (a store that cannot
    be opened is said after the prompt, not before). ``can_read_comments``: True grants the
    comments permission, False takes it away, None
    leaves it as it is (a new login starts without it)."""
    from sync.central import audit
    from sync.central.comments import can_read_comments as reads_comments
    from sync.central.comments import set_comments_permission
    from sync.central.dashboard.accounts import add_user
    from sync.central.people.manage import audited_view, check_scope, get_person, keep_an_admin
    from sync.central.permissions import parse_sites

    if password_stdin:
        # One line; the newline a shell pipe adds is not part of the password.
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ValueError("the two passwords differ; nothing was changed")
    else:
        raise ValueError("give the password on standard input with --password-stdin")
    store = open_store()
    try:
        with store.write() as db:
            found = db.execute("SELECT id FROM users WHERE name = ?", [name.strip()]).fetchone()
            before = audited_view(get_person(db, found[0])) if found else None
            if before is not None:
                before["can_read_comments"] = reads_comments(db, found[0])
            if before and before["role"] == "admin" and role not in (None, "admin"):
                keep_an_admin(db, found[0])  # the store must keep an admin who can log in
            scope = None
            if sites is not None or role is not None:
                current = (before or {}).get("role", "admin")
                scope = check_scope(db, role or current, parse_sites(sites))
            user = add_user(db, name, password, role=role, scope=scope)
            if can_read_comments is not None:
                set_comments_permission(db, user.id, can_read_comments)
            reads = reads_comments(db, user.id)
            after = {**audited_view(get_person(db, user.id)), "can_read_comments": reads}
            audit.record(db, audit.command_actor(), "user.change" if found else "user.add",
                         user.name, None, before, {**after, "password": "(set)"})
    finally:
        store.close()
    print(json.dumps({"user": user.name, "user_id": user.id, "role": after["role"],
                      "sites": after["sites"], "can_read_comments": reads}))
    return 0


def demo_data(open_store: Callable[[], CentralStore], where: str, days: int,
              visits: int | None, ratings: int | None) -> int:
    """``where``: the store as the operator named it (a directory or a database), for messages."""
    from sync.central.dashboard.demo import fill

    store = open_store()
    try:
        if store.db.execute("SELECT 1 FROM visits LIMIT 1").fetchone():
            raise ValueError(
                f"{where} already holds visits; demo data goes into a fresh "
                f"{'data directory' if store.engine == 'sqlite' else 'database'}"
            )
        written = fill(store, days=days, visits=visits, ratings=ratings)
    finally:
        store.close()
    print(json.dumps(written))
    return 0
