"""The disk guard: a kiosk left alone for months must not fill its disk, and must say so early.

About once a minute the guard measures the room the local database has to grow: the disk's
free space plus the database's own free pages (SQLite reuses those before it grows the file,
and a purge makes pages free without giving bytes back to the disk). Below ``min_free_mb``:

1. it purges at once what the daily purge would (kiosk/retention.py): events older than the
   retention period that the central store already has, and those it refused (``sync_error``:
   they will never be sent) once past retention too. Never an event still waiting to be sent.
2. if that was not enough, the staff screen says so, until there is room again.

The check runs on a worker thread of its own (``check_in_background``), never on the UI
thread: a purge of months of data can take seconds, and a frozen screen would miss taps and
its watchdog pings. It needs no sync runner, so a kiosk without a central store is guarded
too. The UI only reads ``low``.

Taps go on being saved meanwhile: when the disk is truly full, the store refuses a tap with a
sentence instead (kiosk/local_db.py), and nothing already saved is lost.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.local_db import StoreError
from kiosk.shared.timeutil import Clock

if TYPE_CHECKING:
    from kiosk.store import Store

log = logging.getLogger(__name__)
CHECK_EVERY = timedelta(seconds=60)
MB = 1024 * 1024
FreeBytes = Callable[[Path], int]


def disk_free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


@dataclass(frozen=True)
class DiskLow:
    """The room left after the guard did what it could."""

    free_bytes: int
    wanted_bytes: int

    @property
    def free_mb(self) -> int:
        return self.free_bytes // MB


class DiskGuard:
    """Checks the room for the local database; ``low`` is None while there is enough."""

    def __init__(self, store: Store, min_free_mb: int, retention_days: int, clock: Clock,
                 free_bytes: FreeBytes = disk_free_bytes):
        self.store = store
        self.wanted_bytes = min_free_mb * MB
        self.retention_days = retention_days
        self.clock = clock
        self.free_bytes = free_bytes
        self.low: DiskLow | None = None
        self.checked_at: datetime | None = None
        self._worker: threading.Thread | None = None

    def room(self) -> int:
        """Bytes the database can still grow by: free on the disk + its own free pages."""
        return self.free_bytes(self.store.path.parent) + self.store.reusable_bytes()

    def _due(self) -> bool:
        now = self.clock()
        # A last check stamped after now (the clock stepped back) is due now too, or checks
        # would stop for as long as the clock went back.
        if self.wanted_bytes and (self.checked_at is None or now < self.checked_at
                                  or now - self.checked_at >= CHECK_EVERY):
            self.checked_at = now
            return True
        return False

    def check_if_due(self) -> DiskLow | None:
        """Check now, on the calling thread, if a minute has passed (not for the UI thread)."""
        if self._due():
            self.check()
        return self.low

    def check_in_background(self) -> DiskLow | None:
        """From the UI thread: start a check on a worker if one is due and none is running,
        and return what the last check found without waiting for this one."""
        if (self._worker is None or not self._worker.is_alive()) and self._due():
            self._worker = threading.Thread(target=self.check, name="disk-guard", daemon=True)
            self._worker.start()
        return self.low

    def wait(self, timeout: float | None = None) -> None:
        """Until the running check (if any) is done: for a clean shutdown and for tests."""
        if self._worker is not None:
            self._worker.join(timeout)

    def check(self) -> DiskLow | None:
        try:
            room = self.room()
            if room < self.wanted_bytes:
                gone = self.store.purge(self.retention_days)
                if gone:
                    log.warning("disk low (%d MB free): purged %d synced events older than "
                                "%d days", room // MB, gone, self.retention_days)
                room = self.room()
        except (StoreError, OSError) as error:  # measuring must never stop the kiosk
            log.warning("the disk guard could not check the disk: %s", error)
            return self.low
        except sqlite3.ProgrammingError:  # the store was closed under the worker: stopping
            return self.low
        was_low, self.low = self.low, (
            DiskLow(room, self.wanted_bytes) if room < self.wanted_bytes else None
        )
        if self.low and not was_low:
            log.warning("disk low: %d MB free for the local database, %d MB wanted",
                        room // MB, self.wanted_bytes // MB)
        return self.low
