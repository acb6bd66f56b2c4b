"""The dashboard's admin commands, called from ``sync.central.cli``.

user add --data DIR --name NAME [--password-stdin] [--can-read-comments]
                                                      a dashboard login (Argon2id)
demo-data --data DIR [--days 28] [--visits N] [--ratings N]
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

from sync.central.storage import CentralStore


def user_add(data_dir: Path, name: str, password_stdin: bool,
             can_read_comments: bool | None = None) -> int:
    """``can_read_comments``: True grants the comments permission, False takes it away, None
    leaves it as it is (a new login starts without it)."""
    from sync.central.comments import can_read_comments as reads_comments
    from sync.central.comments import set_comments_permission
    from sync.central.dashboard.accounts import add_user

    if password_stdin:
        # One line; the newline a shell pipe adds is not part of the password.
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ValueError("the two passwords differ; nothing was changed")
    else:
        raise ValueError("give the password on standard input with --password-stdin")
    store = CentralStore(Path(data_dir))
    try:
        with store.write() as db:
            user = add_user(db, name, password)
            if can_read_comments is not None:
                set_comments_permission(db, user.id, can_read_comments)
            reads = reads_comments(db, user.id)
    finally:
        store.close()
    print(json.dumps({"user": user.name, "user_id": user.id, "can_read_comments": reads}))
    return 0


def demo_data(data_dir: Path, days: int, visits: int | None, ratings: int | None) -> int:
    from sync.central.dashboard.demo import fill

    store = CentralStore(Path(data_dir))
    try:
        if store.db.execute("SELECT 1 FROM visits LIMIT 1").fetchone():
            raise ValueError(
                f"{data_dir} already holds visits; demo data goes into a fresh data directory"
            )
        written = fill(store, days=days, visits=visits, ratings=ratings)
    finally:
        store.close()
    print(json.dumps(written))
    return 0
