"""Repeated warnings and errors are logged once per interval, with a count.

A flood (thousands of malformed requests, sockets that never finish their headers, a full
file-descriptor table making every ``accept()`` fail) makes uvicorn and asyncio log the same
line again and again; unchecked, that grew a store's log by 157 MB in 10 s. With this filter
the first record of a kind is logged at once; the same kind again within ``interval_s`` is
only counted, and the first one after the interval carries the count, e.g. "Invalid HTTP
request received. (and 2,311 more like it in the last 60 s)". Access lines (INFO) are never
held back. A "kind" is the logger, the level, the message before its arguments are filled in,
and the exception's type, so lines that differ only by a client's address count as one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

REPEAT_INTERVAL_S = 60.0
MAX_KINDS = 512
# The loggers whose records a flood repeats: uvicorn's errors and asyncio's (accept() failing).
FLOOD_LOGGERS = ("uvicorn.error", "asyncio")


class RepeatedRecordFilter(logging.Filter):
    def __init__(
        self,
        interval_s: float = REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = MAX_KINDS,
    ):
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self.max_kinds = max_kinds
        # kind -> [when its last logged record was let through, how many were held back since]
        self._kinds: OrderedDict[tuple, list] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        kind = (record.name, record.levelno, str(record.msg), exc_type)
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.interval_s:
                seen[1] += 1
                return False
            held_back = seen[1] if seen is not None else 0
            self._kinds[kind] = [now, 0]
            self._kinds.move_to_end(kind)
            while len(self._kinds) > self.max_kinds:
                self._kinds.popitem(last=False)
        if held_back:
            record.msg = (
                f"{record.getMessage()} (and {held_back:,} more like it in the last "
                f"{self.interval_s:g} s)"
            )
            record.args = None
        return True


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
