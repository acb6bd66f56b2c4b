"""One failure limiter for every place that refuses guesses: device and reporting tokens
(``sync.central.security``) and the dashboard's login form (``dashboard.accounts``).

A key (a client address, or a name at an address) may fail ``limit`` times in any
``window_s`` seconds; then it waits until the oldest of those failures leaves the window.
Each key keeps at most its last ``limit`` failure times, and the table keeps at most
``max_keys`` keys (the one whose last failure is oldest goes first, in O(1)), so a flood of
addresses or names costs bounded memory and constant time per request: nothing scans the
table. In memory only: a restart forgets, which is acceptable for slowing guessers down.

No installed limiter fits: ``pyrate-limiter`` comes only with the test tools, and its
buckets count attempts, not failures, with no way to ask "may this key try?" without
counting a try.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

MAX_TRACKED_KEYS = 10_000


class FailureLimiter:
    """Failures per key over a sliding window, bounded in keys; thread-safe."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ):
        self.limit = limit  # may be changed later (tests raise it); each key trims to it
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: Hashable) -> int:
        """Whole seconds until ``key`` may try again; 0 when it may try now."""
        with self._lock:
            return self._retry_after(key)

    def failed(self, key: Hashable) -> None:
        with self._lock:
            self._failed(key)

    def try_acquire(self, key: Hashable) -> int:
        """Count an attempt that is limited whether or not it succeeds (e.g. issuing a code),
        checked and counted under one lock: 0 when it may go ahead (and is counted), else the
        seconds to wait (and nothing is counted). With ``retry_after`` then ``failed``,
        simultaneous requests could all pass the check before any was counted."""
        with self._lock:
            if wait := self._retry_after(key):
                return wait
            self._failed(key)
            return 0

    def _retry_after(self, key: Hashable) -> int:
        times = self._failures.get(key)
        if times is None or len(times) < self.limit:
            return 0
        # The limit-th most recent failure is the one that must leave the window.
        left = self.window_s - (self.clock() - times[-self.limit])
        return max(1, math.ceil(left)) if left > 0 else 0

    def _failed(self, key: Hashable) -> None:
        times = self._failures.pop(key, None)
        if times is None:
            times = deque()
            if len(self._failures) >= self.max_keys:
                self._failures.popitem(last=False)  # the stalest key: closest to expiring
        times.append(self.clock())
        while len(times) > max(1, self.limit):
            times.popleft()
        self._failures[key] = times  # to the end: the most recently failed

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
