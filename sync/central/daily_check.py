"""A check a running store makes on a thread of its own: once at ``first_after_s``, then every
``check_every_s`` until ``stop``. The daily backup and the embedded store's daily purge are
such checks; each decides for itself, at every check, whether its day's work is due.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class DailyCheck:
    """Subclasses give ``run_if_due``, ``thread_name`` and ``what`` (for the log), and may
    word their failures."""

    thread_name = "daily-check"
    what = "the daily check"

    def __init__(self, check_every_s: float, first_after_s: float = 0.0):
        self.check_every_s = check_every_s
        self.first_after_s = first_after_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_if_due(self):
        raise NotImplementedError

    def failed(self, error: Exception) -> None:
        """A check that raised: logged, and tried again at the next check."""
        log.exception("%s failed (tried again at the next check)", self.what)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        if self._stop.wait(self.first_after_s):
            return
        while not self._stop.is_set():
            try:
                self.run_if_due()
            except Exception as error:  # noqa: BLE001 - the thread must outlive one bad day
                self.failed(error)
            self._stop.wait(self.check_every_s)
