"""The dashboard's admin commands, called from ``sync.central.cli``.

user add --data DIR --name NAME [--password-stdin]    a dashboard login (Argon2id)
demo-data --data DIR [--days 28] [--visits N] [--ratings N]
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

from sync.central.storage import CentralStore


def user_add(data_dir: Path, name: str, password_stdin: bool) -> int:
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
    finally:
        store.close()
    print(json.dumps({"user": user.name, "user_id": user.id}))
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
