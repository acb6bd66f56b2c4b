"""How the kiosk forgets: data older than the retention period is deleted, a chunk at a time.

Unsynced events are never deleted, whatever their age, and neither is the newest event, which
carries the device's sequence forward. A chunk per transaction, so the first purge of a long
history never holds up a tap; and once a day is enough (``DailyPurge``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kiosk.local_db import StoreError
from kiosk.shared.timeutil import Clock, to_rfc3339

if TYPE_CHECKING:
    from kiosk.store import Store

log = logging.getLogger(__name__)
# Rows a purge deletes per transaction, so a tap never waits behind a long delete.
PURGE_CHUNK = 2000
PURGE_INTERVAL = timedelta(days=1)
Write = Callable[[], AbstractContextManager[sqlite3.Connection]]


def purge_before(write: Write, cutoff: datetime, comment_cutoff: datetime | None = None) -> int:
    """Delete what is older than ``cutoff``, and patients' comments older than
    ``comment_cutoff`` (their own, shorter retention); returns the number of events deleted."""
    if comment_cutoff is not None:
        forget_comments_before(write, comment_cutoff)
    stamp = to_rfc3339(cutoff)
    gone = delete_in_chunks(
        write,
        "events",
        "occurred_at < ? AND (synced_at IS NOT NULL OR sync_error IS NOT NULL) "
        "AND device_seq < (SELECT MAX(device_seq) FROM events)",
        [stamp],
    )
    delete_in_chunks(write, "ratings", "occurred_at < ?", [stamp])
    delete_in_chunks(
        write, "visits", "checked_in_at < ? AND status NOT IN ('waiting', 'in_chair')", [stamp]
    )
    return gone


def forget_comments_before(write: Write, cutoff: datetime) -> int:
    """Take the comment out of every rating older than ``cutoff``, synced or not: the rating
    stays (its face still counts), the free text goes. Returns the ratings changed."""
    changed = 0
    while True:
        with write() as conn:
            count = conn.execute(
                "UPDATE events SET data = json_remove(data, '$.comment') WHERE rowid IN "
                "(SELECT rowid FROM events WHERE type = 'rating.submitted' AND occurred_at < ? "
                f"AND json_extract(data, '$.comment') IS NOT NULL LIMIT {PURGE_CHUNK})",
                [to_rfc3339(cutoff)],
            ).rowcount
        changed += count
        if count < PURGE_CHUNK:
            return changed


def delete_in_chunks(write: Write, table: str, where: str, params: list[Any]) -> int:
    deleted = 0
    while True:
        with write() as conn:
            count = conn.execute(
                f"DELETE FROM {table} WHERE rowid IN "
                f"(SELECT rowid FROM {table} WHERE {where} LIMIT {PURGE_CHUNK})",
                params,
            ).rowcount
        deleted += count
        if count < PURGE_CHUNK:
            return deleted


class DailyPurge:
    """Runs ``Store.purge`` at most once per ``PURGE_INTERVAL``; nothing when retention is off."""

    def __init__(self, store: Store, retention_days: int | None, clock: Clock,
                 comment_retention_days: int | None = None):
        self.store = store
        self.retention_days = retention_days
        self.comment_retention_days = comment_retention_days
        self.clock = clock
        self.purged_at: datetime | None = None

    def run_if_due(self) -> None:
        if not self.retention_days:
            return
        now = self.clock()
        if self.purged_at is not None and now - self.purged_at < PURGE_INTERVAL:
            return
        try:
            gone = self.store.purge(self.retention_days, self.comment_retention_days)
        except StoreError as error:
            log.warning("could not purge old data: %s", error)
            return
        self.purged_at = now
        if gone:
            log.info("purged %d events older than %d days", gone, self.retention_days)
