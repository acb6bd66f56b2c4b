"""The network between kiosk and central store fails in every way we know, while the desk works.

A fault-injecting proxy (tests/sync/scripted_server.py, forwarding to the real central store)
sits between a kiosk's real SyncLoop and the live server. The desk checks patients in, calls
them, checks them out and collects ratings through the model while the proxy adds latency,
hangs, resets connections, cuts replies after the server committed, answers 5xx and 429 with
Retry-After, and then fails every fifth request until it has failed 25 times. Pass: every event
on the central store exactly once, each attempt bounded by the client's timeouts, and this
process's open sockets and threads back where they started.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from kiosk.config import load_settings
from kiosk.desk import FrontDesk
from kiosk.rating_flow import RatingFlow
from kiosk.store import Store
from sync.client import SyncClient
from sync.loop import SyncLoop
from tests.reliability import figures
from tests.reliability.helpers import CentralProcess, open_fds
from tests.support.waiting import wait_until
from tests.sync.scripted_server import (
    Forwarder,
    ScriptedServer,
    answer,
    cut_after_commit,
    hang,
    reply,
    reset,
)

TIMEOUTS = (0.5, 1.0)
SLACK_S = 0.5  # scheduling on a loaded 2-core machine
MIN_VISITS, MAX_VISITS = 100, 3000


def delayed(seconds: float):
    def act(server, conn, request):
        time.sleep(seconds)  # the fault itself: a slow link
        answer(server, conn, request)
    return act


class EveryFifthFails:
    """The default action once the script is done: every fifth request fails, 25 times in all."""

    def __init__(self, limit: int = 25):
        self.limit = limit
        self.seen = 0
        self.failed = 0
        self._lock = threading.Lock()

    def __call__(self, server, conn, request):
        with self._lock:
            self.seen += 1
            fail = self.seen % 5 == 0 and self.failed < self.limit
            self.failed += fail
        (reply(503, b'{"detail": "every fifth"}') if fail else answer)(server, conn, request)


class TimedClient(SyncClient):
    """The real client; it also keeps how long each HTTP attempt took."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attempts: list[float] = []

    def _request(self, method, path, **kwargs):
        started = time.monotonic()
        try:
            return super()._request(method, path, **kwargs)
        finally:
            self.attempts.append(time.monotonic() - started)


@pytest.fixture
def central(tmp_path, central_database_url):
    """The central store in a process of its own, so this process holds only the kiosk's (and
    the proxy's) sockets and threads, and counting them says something (on either engine)."""
    server = CentralProcess(tmp_path / "central", log_level="warning",
                            database_url=central_database_url).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_every_network_fault_is_survived_with_nothing_lost_or_doubled(tmp_path, central):
    started = time.monotonic()
    _, token = central.enrol()
    settings = load_settings(environ={}, data_dir=str(tmp_path / "kiosk"), followup_for="all",
                             misuse_interval_s=0)
    store = Store(settings.database_path)
    fds_before, threads_before = open_fds(), threading.active_count()

    proxy = ScriptedServer(Forwarder(central.url))
    scripted = {
        "latency 0.3 s": delayed(0.3), "hang": hang, "reset": reset,
        "reply cut after commit": cut_after_commit, "HTTP 500": reply(500, b'{"detail": "x"}'),
        "HTTP 502": reply(502), "HTTP 429 + Retry-After": reply(429, **{"Retry-After": "1"}),
    }
    plan = [fault for fault in scripted.values() for _ in range(3)]
    proxy.script(*plan)
    every_fifth = EveryFifthFails()
    proxy.default = every_fifth
    client = TimedClient(store, proxy.url, token, timeouts=TIMEOUTS)
    loop = SyncLoop(store, client, heartbeat_s=0.5, base_delay=0.02, max_delay=0.3)
    loop.start()
    desk, rating = FrontDesk(store, settings), RatingFlow(store, settings)
    try:
        n = 0
        while n < MIN_VISITS or (every_fifth.failed < every_fifth.limit and n < MAX_VISITS):
            n += 1
            visit = desk.check_in()
            desk.call_in(visit["id"])
            desk.check_out(visit["id"])
            rating.start(visit["id"])
            if rating.choose(1 + n % 5) == "followup":
                rating.send_followup()
            time.sleep(0.01)  # a desk's pace, so the pusher makes many small trips
        assert every_fifth.failed == every_fifth.limit
        wait_until(lambda: store.sync_status().backlog == 0, timeout=30,
                   what="the backlog to drain")
    finally:
        assert loop.stop(timeout=5)
        client.close()
        proxy.backend.session.close()
        proxy.close()

    local = store.events()
    rows = central.rows("SELECT id, device_seq FROM events")
    ids = Counter(row["id"] for row in rows)
    lost = len({event["id"] for event in local} - set(ids))
    duplicated = sum(n - 1 for n in ids.values())
    assert (lost, duplicated) == (0, 0)
    assert store.sync_status().rejected == 0
    bound = TIMEOUTS[0] + TIMEOUTS[1] + SLACK_S
    assert max(client.attempts) <= bound, f"an attempt took {max(client.attempts):.2f} s"
    store.close()
    # Sockets and threads come back: the server side of the proxy's keep-alive closes a moment
    # after the client side, so poll rather than compare at once.
    wait_until(lambda: open_fds() <= fds_before and threading.active_count() <= threads_before,
               timeout=10, what=f"fds {fds_before} / threads {threads_before} to come back")
    faults = len(plan) + every_fifth.failed
    figures.record(
        "network_faults",
        title="Fault proxy between kiosk and central",
        figures={"faults_injected": faults, "fault_kinds": len(scripted) + 1,
                 "requests": len(client.attempts), "events_checked": len(local),
                 "slowest_attempt_s": round(max(client.attempts), 2),
                 "attempt_bound_s": bound, "fds_before": fds_before,
                 "fds_after": open_fds(), "threads_before": threads_before,
                 "threads_after": threading.active_count()},
        lost=lost, duplicated=duplicated, seconds=time.monotonic() - started,
    )
