"""The lines a connection flood repeats are logged once per interval, with a count.

A flood (thousands of malformed requests, sockets that never finish their headers, a full
file-descriptor table making every ``accept()`` fail) makes uvicorn and asyncio log the same
line again and again; unchecked, that grew a store's log by 157 MB in 10 s. With this filter
the first record of a kind is logged at once; the same kind again within ``interval_s`` is
only counted. The count is written with the first record of that kind after the interval, or,
if the flood has stopped, by itself once the interval is over, e.g. "Invalid HTTP request
received. (and 2,311 more like it in the last 61 s)", the time being the one that really
passed since the kind was last logged.

Only the known flood lines (``FLOOD_MESSAGES``) are ever held back: any other warning or
error, and above all an application's traceback, is logged every time, so two different
failures can never hide behind one. A "kind" is the logger, the level, the message before
its arguments are filled in, and the exception's type and text, so lines that differ only by
a client's address count as one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

REPEAT_INTERVAL_S = 60.0
MAX_KINDS = 512
# The loggers whose records a flood repeats: uvicorn's errors and asyncio's (accept() failing).
FLOOD_LOGGERS = ("uvicorn.error", "asyncio")
# The beginnings of the lines a flood repeats (uvicorn's protocol warnings, the connection
# guard's own, asyncio's accept() failing for want of file descriptors).
FLOOD_MESSAGES = (
    "Invalid HTTP request received.",
    "Unsupported upgrade request.",
    "No supported WebSocket library detected.",
    "Exceeded concurrency limit.",
    "Refused a connection",
    "Closed a connection whose request",
    "socket.accept() out of system resource",
)
# Marks a record this filter wrote itself (a count), so that it is not counted again.
_COUNT_MARK = "_repeat_count_written"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _with_count(record: logging.LogRecord, more: int, seconds: float) -> None:
    record.msg = (f"{record.getMessage()} (and {more:,} more like it in the last "
                  f"{_duration(seconds)})")
    record.args = None


@dataclass
class _Kind:
    logged_at: float  # when a record of this kind was last let through
    held: int = 0  # how many were held back since
    last_held: logging.LogRecord | None = None


def _later(delay_s: float, action: Callable[[], None]) -> None:
    timer = threading.Timer(delay_s, action)
    timer.daemon = True  # a pending count never keeps a stopping store alive
    timer.start()


class RepeatedRecordFilter(logging.Filter):
    def __init__(
        self,
        interval_s: float = REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = MAX_KINDS,
        messages: tuple[str, ...] = FLOOD_MESSAGES,
        later: Callable[[float, Callable[[], None]], None] = _later,
    ):
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self.max_kinds = max_kinds
        self.messages = messages
        self._later = later  # runs an action after a delay: writing a stopped flood's count
        self._kinds: OrderedDict[tuple, _Kind] = OrderedDict()
        self._lock = threading.Lock()
        self._count_due = False

    def _kind_of(self, record: logging.LogRecord) -> tuple | None:
        """The record's kind, or None for a record that is always logged."""
        if record.levelno < logging.WARNING or getattr(record, _COUNT_MARK, False):
            return None
        template = str(record.msg)
        if not template.startswith(self.messages):
            return None
        exc = record.exc_info[1] if record.exc_info else None
        exc_kind = (type(exc).__name__, str(exc)) if exc is not None else ("", "")
        return (record.name, record.levelno, template, *exc_kind)

    def filter(self, record: logging.LogRecord) -> bool:
        key = self._kind_of(record)
        if key is None:
            return True
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(key)
            if seen is not None and now - seen.logged_at < self.interval_s:
                seen.held += 1
                seen.last_held = record
                self._schedule_count(now - seen.logged_at)
                return False
            self._kinds[key] = _Kind(logged_at=now)
            self._kinds.move_to_end(key)
            while len(self._kinds) > self.max_kinds:
                self._kinds.popitem(last=False)
        if seen is not None and seen.held:
            _with_count(record, seen.held, now - seen.logged_at)
        return True

    def _schedule_count(self, since_logged_s: float) -> None:
        """Make sure the held-back count is written even if no record of its kind follows."""
        if not self._count_due:
            self._count_due = True
            self._later(max(0.0, self.interval_s - since_logged_s), self.write_due_counts)

    def write_due_counts(self) -> None:
        """Log, for each kind whose interval is over, its last held-back record with the count
        of the others: the flood has stopped, or its next record would carry it."""
        now = self.clock()
        due: list[logging.LogRecord] = []
        with self._lock:
            self._count_due = False
            waiting = []
            for kind in self._kinds.values():
                if not kind.held:
                    continue
                since = now - kind.logged_at
                if since < self.interval_s:
                    waiting.append(since)
                    continue
                record = logging.makeLogRecord(kind.last_held.__dict__)
                if kind.held > 1:
                    _with_count(record, kind.held - 1, since)
                setattr(record, _COUNT_MARK, True)
                due.append(record)
                kind.logged_at, kind.held, kind.last_held = now, 0, None
            if waiting:
                self._schedule_count(max(waiting))
        for record in due:
            logging.getLogger(record.name).handle(record)


def limit_repeated_logs(loggers: tuple[str, ...] = FLOOD_LOGGERS) -> None:
    """Put one shared filter on ``loggers`` (once: a second call changes nothing)."""
    shared: RepeatedRecordFilter | None = None
    for name in loggers:
        logger = logging.getLogger(name)
        for existing in logger.filters:
            if isinstance(existing, RepeatedRecordFilter):
                shared = shared or existing
    shared = shared or RepeatedRecordFilter()
    for name in loggers:
        logger = logging.getLogger(name)
        if shared not in logger.filters:
            logger.addFilter(shared)
