"""The alert threads, started and stopped with the central app.

The evaluator runs the rating rules for a site the moment ingest says something was stored
there (:meth:`AlertService.nudge`, which only records the site and wakes the thread, so
ingest never waits and never fails for it), and every rule at every site every
``EVALUATE_EVERY_S`` seconds, because nothing arrives while a patient waits or a kiosk is
silent. The deliverer sends what the outbox holds. Both take ``now`` from one clock, and the
functions they call take it as a parameter, so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime

from kiosk.shared.timeutil import Clock, utc_now
from sync.central import database_down
from sync.central.alerts import outbox
from sync.central.alerts.engine import all_sites, evaluate_site
from sync.central.alerts.lifecycle import apply_findings, changes
from sync.central.alerts.rules import RATING_RULES, RULES

EVALUATE_EVERY_S = 15.0
DELIVER_POLL_S = 1.0

logger = logging.getLogger(__name__)


def evaluate(store, now: datetime, sites: Iterable[str] | None = None,
             rules: tuple[str, ...] = RULES) -> list[int]:
    """Evaluate ``rules`` at ``sites`` (all when None) at ``now``; the ids of alerts opened."""
    opened: list[int] = []
    for site in (all_sites(store.db) if sites is None else sites):
        try:
            opened += _evaluate_one(store, site, now, rules)
        except Exception as error:  # noqa: BLE001 - one site's problem must not silence the others
            if database_down.is_database_unreachable(error):
                raise  # every site would meet it: the pass ends, logged in one line
            logger.exception("evaluating alert rules at site %r failed", site)
    return opened


def _evaluate_one(store, site: str, now: datetime, rules: tuple[str, ...]) -> list[int]:
    findings = evaluate_site(store.db, site, now, rules)
    # Nothing to change: the writer lock ingest uses is not taken at all (the usual case,
    # and the one a flood of ratings meets, with or without an alert live).
    if not changes(store.db, site, findings, now):
        return []
    with store.write() as db:
        return apply_findings(db, site, findings, now)


class AlertService:
    """The evaluator and deliverer threads of one store (see the module docstring)."""

    def __init__(self, store, clock: Clock = utc_now, evaluate_every_s: float = EVALUATE_EVERY_S,
                 deliver_poll_s: float = DELIVER_POLL_S):
        self.store = store
        self.clock = clock
        self.evaluate_every_s = evaluate_every_s
        self.deliver_poll_s = deliver_poll_s
        self._nudged: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._deliver = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def nudge(self, site: str) -> None:
        """Something was stored at ``site``: evaluate its rating rules soon (non-blocking)."""
        with self._lock:
            self._nudged.add(site)
        self._wake.set()

    def wake_deliverer(self) -> None:
        self._deliver.set()

    def start(self) -> None:
        if self._threads:
            return
        with self.store.write() as db:
            outbox.recover_interrupted(db)
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._evaluate_loop, name="alert-evaluator", daemon=True),
            threading.Thread(target=self._deliver_loop, name="alert-deliverer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._deliver.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _evaluate_loop(self) -> None:
        next_full = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_full - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._lock:
                nudged, self._nudged = self._nudged, set()
            try:
                if time.monotonic() >= next_full:
                    next_full = time.monotonic() + self.evaluate_every_s
                    opened = evaluate(self.store, self.clock())
                else:
                    opened = evaluate(self.store, self.clock(), sorted(nudged), RATING_RULES)
            except Exception as error:  # noqa: BLE001 - the next pass tries again; the log says why
                _log_failure("evaluating alert rules failed", error)
                continue
            if opened:
                self._deliver.set()

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            self._deliver.wait(self.deliver_poll_s)
            self._deliver.clear()
            if self._stop.is_set():
                break
            try:
                outbox.deliver_due(self.store, self.clock(), should_stop=self._stop.is_set,
                                   clock=self.clock)
            except Exception as error:  # noqa: BLE001 - the next poll tries again; the log says why
                _log_failure("delivering alerts failed", error)


def _log_failure(what: str, error: Exception) -> None:
    """A database out of reach (PostgreSQL restarting) is the moment's, not a bug: one line,
    not a traceback per pass; anything else keeps its traceback."""
    if database_down.is_database_unreachable(error):
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        logger.warning("%s: the database cannot be reached (%s); trying again", what, reason)
    else:
        logger.exception(what, exc_info=error)


def after_ingest(app, site: str, results: list[dict]) -> None:
    """Ingest's one call, after its commit: wake the evaluator for the site. Never raises."""
    try:
        if any(result["status"] == "stored" for result in results):
            app.state.alerts.nudge(site)
    except Exception:  # noqa: BLE001 - an alert problem must never fail a kiosk's batch
        logger.exception("waking the alert evaluator failed")
