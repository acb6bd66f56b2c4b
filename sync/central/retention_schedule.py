"""The retention purge as one recorded act, and the daily one a running store makes itself.

``purge_and_record`` is what ``python main.py purge`` runs (by hand, or nightly from the
timer ``install --central`` writes): both retentions in one transaction with their audit entry.

``DailyRetention`` runs it inside a store that has no timer: the embedded store of
``python main.py``, which the kiosk's own retention settings govern, so the product's rule
("data older than the retention period is purged on both sides") holds for a single-desk
practice too. "Due" is read from the audit trail, not from memory: no ``data.purge`` entry
from the last day (none, only older ones, or one stamped in the future by a wrong clock) means
a purge now. So a kiosk restarted every hour still purges once a day, and one switched off
for a week purges soon after it is on again (the first check waits a few minutes, so a long
first purge does not hold up the kiosk's start).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from kiosk.shared.timeutil import Clock, parse_rfc3339, to_rfc3339, utc_now
from sync.central import audit
from sync.central.comments import purge_comments
from sync.central.daily_check import DailyCheck
from sync.central.retention import purge

PURGE_EVERY = timedelta(days=1)
CHECK_EVERY_S = 600.0
# The first check waits this long after the store starts: a first purge of years of data holds
# the store's writer, and the kiosk enrols itself and sends its backlog at start.
FIRST_CHECK_AFTER_S = 300.0
PURGE_ACTION = "data.purge"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long the store keeps data, and patients' comments, in days (each at least 1)."""

    days: int
    comment_days: int


def purge_and_record(store, policy: RetentionPolicy, now: datetime, actor: audit.Actor,
                     by: str | None = None) -> dict[str, int]:
    """Delete what is past ``policy`` at ``now``, and record it in the audit trail in the same
    transaction; the rows deleted per table (ValueError for a retention out of bounds, and
    then nothing is deleted)."""
    with store.write() as db:
        deleted = purge(db, policy.days, now)
        deleted["comments"] = purge_comments(db, policy.comment_days, now)
        after = {"retention_days": policy.days,
                 "comment_retention_days": policy.comment_days, "deleted": deleted}
        if by is not None:
            after["by"] = by
        audit.record(db, actor, PURGE_ACTION, None, None, None, after, now=now)
    return deleted


def last_purge(store, now: datetime) -> datetime | None:
    """When the newest recorded purge up to ``now`` ran, from the audit trail; None before
    the first. One stamped later (a clock that was wrong, then put right) is not counted: it
    would hold every purge off until the clock caught up with it, and being the newest it
    would hide the purges made since."""
    # The primary (store.db), not a replica that may not have the last purge yet.
    row = store.db.execute(
        "SELECT MAX(at) FROM audit WHERE action = ? AND at <= ?",
        [PURGE_ACTION, to_rfc3339(now)],
    ).fetchone()
    return parse_rfc3339(row[0]) if row and row[0] else None


class DailyRetention(DailyCheck):
    """Purges ``store`` by ``policy`` once a day while it serves (``start``/``stop``)."""

    thread_name = "daily-retention"
    what = "the daily retention purge"

    def __init__(self, store, policy: RetentionPolicy, clock: Clock = utc_now,
                 check_every_s: float = CHECK_EVERY_S,
                 first_check_after_s: float | None = None, by: str = "embedded store"):
        # None: the module's FIRST_CHECK_AFTER_S as it is now (a test shortens it).
        first = FIRST_CHECK_AFTER_S if first_check_after_s is None else first_check_after_s
        super().__init__(check_every_s, first)
        self.store = store
        self.policy = policy
        self.clock = clock
        self.by = by

    def run_if_due(self) -> dict[str, int] | None:
        """Purge now if no purge is recorded from the last day; the rows deleted, or None."""
        now = self.clock()
        latest = last_purge(self.store, now)
        if latest is not None and now - latest < PURGE_EVERY:
            return None
        deleted = purge_and_record(self.store, self.policy, now, audit.command_actor(), self.by)
        if any(deleted.values()):
            log.info("retention purge (%d days, comments %d days): %s", self.policy.days,
                     self.policy.comment_days, deleted)
        return deleted
