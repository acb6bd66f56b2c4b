"""``python3 main.py central migrate --data DIR --database-url URL``: the move's command line.

``central`` itself is a command with options (``central --data DIR``), so ``central migrate``
is routed here by ``sync.central.cli.main`` before that parser sees it; ``central --data DIR``
keeps working exactly as before.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

from sync.central.migrations import SchemaTooNew
from sync.central.move import MoveFailed, move_store
from sync.central.storage import StoreUnavailable

USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py central migrate",
        description="copy the SQLite central store in --data into an empty PostgreSQL "
                    "database, then check the copy (counts per table, every site's metrics); "
                    "safe to run again after a failure: it finishes the copy",
    )
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="the data directory holding the SQLite store")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        metavar="URL",
                        help="the PostgreSQL database to fill (default: $DATABASE_URL)")
    return parser


def main(argv: list[str]) -> int:
    """Run the move; argv is what follows ``central migrate``."""
    from sync.central.postgres import is_postgres_url

    args = build_parser().parse_args(argv)
    try:
        if not args.database_url:
            raise MoveFailed("give the PostgreSQL database to move into with --database-url "
                             "postgresql://USER@HOST:PORT/DB (or DATABASE_URL)")
        if not is_postgres_url(args.database_url):
            raise MoveFailed("--database-url must be a postgresql:// URL, e.g. "
                             "postgresql://kiosk@db.example:5432/central")
        report = move_store(Path(args.data), args.database_url)
    except (MoveFailed, StoreUnavailable, SchemaTooNew) as error:
        print(f"error: {_sentence(error)}", file=sys.stderr)
        return USAGE_ERROR
    except sqlite3.Error as error:
        print(f"error: the move stopped: {_sentence(error)} Run the command again once that "
              f"is fixed; it finishes the copy.", file=sys.stderr)
        return USAGE_ERROR
    print(json.dumps(report))
    return 0


def _sentence(error: Exception) -> str:
    text = str(error.args[0] if error.args else error).strip().splitlines()[0]
    return text if text.endswith(".") else text + "."
