"""The kiosk's sync loop: when to send, and what the staff screen is told about it.

``SyncLoop`` is a daemon thread that runs ``SyncClient.sync_once`` on every new event and on a
heartbeat interval, backs off with full jitter after failures (sync/backoff.py), records the
device's heartbeat, runs the daily purge (kiosk/retention.py) and keeps the site's config as
last fetched. ``status()`` reads only memory and the local database, so the UI thread never
waits on the network.
"""

from __future__ import annotations

import logging
import random as random_module
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from kiosk.config import Settings
from kiosk.retention import DailyPurge
from kiosk.shared.timeutil import Clock, utc_now
from kiosk.store import RecordedEvent, Store, StoreError
from kiosk.sync_status import SyncStatus
from sync.backoff import BASE_DELAY_S, MAX_DELAY_S, retry_delay
from sync.client import SyncClient, SyncResult, client_for

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 30.0


class SyncLoop:
    """A daemon thread that runs ``sync_once`` on every new event and on a heartbeat interval,
    backing off with full jitter after failures. ``client=None`` means no central store is
    configured: the kiosk records locally and ``status()`` says so."""

    def __init__(
        self,
        store: Store,
        client: SyncClient | None,
        heartbeat_s: float = HEARTBEAT_INTERVAL_S,
        base_delay: float = BASE_DELAY_S,
        max_delay: float = MAX_DELAY_S,
        random: Callable[[], float] = random_module.random,
        pause: Callable[[float], object] | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        retention_days: int | None = None,
        comment_retention_days: int | None = None,
    ):
        if heartbeat_s <= 0 or base_delay <= 0 or max_delay < base_delay:
            raise ValueError("heartbeat_s and base_delay must be > 0 and max_delay ≥ base_delay")
        self.store = store
        self.client = client
        self.heartbeat_s = heartbeat_s
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._random = random
        self._clock = clock
        self._monotonic = monotonic
        self._stopping = threading.Event()
        self._wake = threading.Event()
        # The default pause ends early on stop(), so stopping never waits out a backoff.
        self._pause = pause or self._stopping.wait
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._last_success_at: datetime | None = None
        self._last_error: str | None = None
        self._token_refused = False
        self._site_config: dict[str, Any] | None = None
        self.last_delay: float | None = None
        # Once a day, local data older than the retention period goes (never unsynced events).
        self._purge = DailyPurge(store, retention_days, clock, comment_retention_days)
        store.on_record(self._on_record)

    # -- control -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.client is None or self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sync-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread; True if it ended within ``timeout``. A request in flight is bounded
        by the client's timeouts, and the thread is a daemon, so it never holds the kiosk up."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def wake(self) -> None:
        """Ask for a pass now (when idle; a backoff in progress is not cut short)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _on_record(self, _event: RecordedEvent) -> None:
        self._wake.set()

    # -- what the staff screen reads ---------------------------------------------------------

    def status(self) -> SyncStatus:
        """The store's figures with what only the loop knows laid over them."""
        local = self.store.sync_status()
        with self._state_lock:
            return replace(
                local,
                configured=self.client is not None,
                running=self.running,
                last_synced_at=self._last_success_at or local.last_synced_at,
                consecutive_failures=self._failures,
                last_error=self._last_error,
                token_refused=self._token_refused,
                site_name=(self._site_config or {}).get("site"),
            )

    def site_config(self) -> dict[str, Any] | None:
        """The site config last fetched from the central store, if any."""
        with self._state_lock:
            return self._site_config

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        next_heartbeat = self._monotonic()
        while not self._stopping.is_set():
            heartbeat_due = self._monotonic() >= next_heartbeat
            if heartbeat_due:
                next_heartbeat = self._monotonic() + self.heartbeat_s
                self._record_heartbeat()
                self._purge.run_if_due()
            self._wake.clear()  # before the pass: an event recorded during it wakes us again
            result = self._pass()
            self._after_pass(result)
            if result.ok and (heartbeat_due or self.site_config() is None):
                self._refresh_site_config()
            if result.ok:
                self._wake.wait(max(0.0, next_heartbeat - self._monotonic()))
            else:
                self.last_delay = self._delay_after(result)
                self._pause(self.last_delay)

    def _pass(self) -> SyncResult:
        try:
            return self.client.sync_once()
        except Exception as error:  # the pusher must outlive one bad pass (disk full, a bug)
            log.exception("sync pass failed on the kiosk's side")
            return SyncResult(error=f"Sync failed on this kiosk: {error}")

    def _record_heartbeat(self) -> None:
        # While offline a heartbeat tells the central store nothing it will not learn from the
        # backlog later, and a week offline would queue 20,000 of them.
        if self._failures:
            return
        try:
            local = self.store.sync_status()
            data = {"backlog": local.backlog, "version": self.client.version,
                    "rejected": local.rejected}
            self.store.record("device.heartbeat", data)
        except StoreError as error:
            log.warning("could not record a heartbeat: %s", error)

    def _refresh_site_config(self) -> None:
        try:
            config = self.client.fetch_config()
        except Exception:  # noqa: BLE001 - the pusher must outlive one bad answer (or a bug)
            log.exception("fetching the site config failed on the kiosk's side")
            return
        if config is not None:
            with self._state_lock:
                self._site_config = config

    def _after_pass(self, result: SyncResult) -> None:
        with self._state_lock:
            if result.ok:
                if self._failures:
                    log.info("sync recovered after %d failures", self._failures)
                self._failures = 0
                self._last_success_at = self._clock()
                self._last_error = None
                self._token_refused = False
                return
            self._failures += 1
            self._last_error = result.error
            self._token_refused = result.token_refused
            failures = self._failures
        # One warning per outage; the rest go to debug so a long outage does not flood the log.
        level = logging.WARNING if failures == 1 else logging.DEBUG
        log.log(level, "sync failed (%d in a row): %s", failures, result.error)

    def _delay_after(self, result: SyncResult) -> float:
        if result.token_refused:
            # Retrying a refused token quickly cannot help; an operator has to act first.
            return self.max_delay
        return retry_delay(
            self._failures, result.retry_after, self._random, self.base_delay, self.max_delay
        )


def sync_loop_for(store: Store, settings: Settings, **options: Any) -> SyncLoop:
    """The loop for a kiosk's settings (not started); without a central URL it only reports."""
    options.setdefault("retention_days", settings.retention_days)
    options.setdefault("comment_retention_days", settings.comment_retention_days)
    return SyncLoop(store, client_for(store, settings), **options)
