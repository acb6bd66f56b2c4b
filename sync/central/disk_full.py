"""A full disk: recognised, answered 507 with a sentence, and reported by ``/healthz``.

SQLite says "database or disk is full" (``SQLITE_FULL``) when the file cannot grow, whether
the disk is out of space or the file has reached its page limit; nothing of the failed write
is kept (the transaction is rolled back), so the kiosk may simply send again later: the
answer carries ``Retry-After`` and kiosks back off on it. The store remembers the failure
until a write commits again, and ``/healthz`` reports it meanwhile.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

RETRY_AFTER_S = 60
# Below this much free space on the data directory's disk, /healthz says the disk is full:
# a commit needs room for the WAL's pages before it can succeed.
MIN_FREE_BYTES = 1024 * 1024
SENTENCE = (
    "The central store's disk is full: nothing of this request was stored. Free some space "
    f"on the server; the kiosk keeps its events and sends them again (retry in {RETRY_AFTER_S} s)."
)


def is_disk_full(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        return (
            getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or "database or disk is full" in str(error)
        )
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


def low_on_space(data_dir: Path) -> bool:
    try:
        return shutil.disk_usage(data_dir).free < MIN_FREE_BYTES
    except OSError:
        return False  # cannot tell; the failed writes will say so
