"""How far the read replica is behind the primary, in seconds, for the Devices page and
``/healthz``: the dashboard's figures come from the replica, so a person must be told when they
may be old rather than be shown old figures as if they were current.

The measure: 0 when the replica has replayed all the WAL the primary has written (the primary's
``pg_current_wal_lsn()`` against the replica's ``pg_last_wal_replay_lsn()``); otherwise the age
of the last transaction the replica replayed (``now() - pg_last_xact_replay_timestamp()``).
That age is an upper bound: after a quiet hour the first new write makes the replica look an
hour behind until it replays it, a moment later. Said as "the figures may be up to N s old",
it is never a lie. Comparing positions first is what keeps a quiet store from showing a lag.

Measured at most once per ``MAX_AGE_S`` per process, so a busy dashboard (or a monitor
polling ``/healthz``) costs two tiny queries a second or two, not two per request.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sync.central.storage import StoreUnavailable

# How long a measurement is reused. Replay lag that matters is tens of seconds; a second or
# two of staleness in the measure itself is noise beside it.
MAX_AGE_S = 1.5
# Beyond this the Devices page warns that the figures may be that old (the page refreshes its
# figures by hand, and a human reads "a few seconds" as current).
WARNING_AFTER_S = 30.0


@dataclass(frozen=True)
class LagReading:
    """One measurement: ``seconds`` behind the primary (0: caught up), or None with
    ``problem`` when it could not be measured (the replica or the primary did not answer)."""

    seconds: float | None
    problem: str | None = None

    @property
    def warning(self) -> bool:
        """Far enough behind (or unmeasurable) that the figures shown may mislead."""
        return self.seconds is None or self.seconds > WARNING_AFTER_S


def measure_lag(primary, replica) -> float:
    """Seconds the replica is behind the primary (0 when caught up); ``sqlite3.Error`` (the
    store's error classes on either engine) when either does not answer."""
    written = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    caught_up, age = replica.execute(
        "SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(? AS pg_lsn), false), "
        "extract(epoch FROM now() - pg_last_xact_replay_timestamp())",
        [written],
    ).fetchone()
    if caught_up:
        return 0.0
    # Behind, but nothing replayed since the replica started: no commit time to go by. Its
    # whole life is the honest bound (it answers queries, so it has started).
    if age is None:
        age = replica.execute(
            "SELECT extract(epoch FROM now() - pg_postmaster_start_time())").fetchone()[0]
    return max(0.0, float(age))


class LagMeter:
    """The latest :class:`LagReading`, measured again once it is ``max_age`` seconds old.
    ``primary`` and ``replica`` give the calling thread's connections."""

    def __init__(self, primary: Callable, replica: Callable, max_age: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic):
        self._primary = primary
        self._replica = replica
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._reading: LagReading | None = None
        self._taken_at = 0.0

    def read(self) -> LagReading:
        with self._lock:
            now = self._clock()
            if self._reading is None or now - self._taken_at >= self._max_age:
                self._reading = self._measure()
                self._taken_at = now
            return self._reading

    def _measure(self) -> LagReading:
        try:
            return LagReading(measure_lag(self._primary(), self._replica()))
        except (sqlite3.Error, StoreUnavailable) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            return LagReading(None, first_line)
