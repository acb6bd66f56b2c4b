"""Two hundred kiosks push to one central store at once while it is being read.

The central store runs as its own process (``main.py central``). Each simulated kiosk is a real
kiosk store (its own SQLite file) and a real SyncClient in a thread of this process; all start
together on a barrier and push three rounds of visits and ratings. Meanwhile a reporting client
reads /api/v1/metrics and a logged-in manager reads the dashboard's pages, in loops. Pass: no
client ever sees "database is locked" (or any failure), every event is stored exactly once, and
every read is answered.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from kiosk.store import Store
from sync.central import auth
from sync.central.dashboard import accounts
from sync.central.storage import CentralStore
from sync.client import SyncClient
from tests.reliability import figures
from tests.reliability.helpers import CentralProcess

KIOSKS = 200
ROUNDS = 3
PASSWORD = "correct horse battery staple"


class WatchedClient(SyncClient):
    """The real client; it also keeps every refusal's body, to look for "locked" in it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.refusals: list[str] = []

    def _request(self, method, path, **kwargs):
        response = super()._request(method, path, **kwargs)
        if response.status_code >= 400:
            self.refusals.append(f"{response.status_code} {response.text[:300]}")
        return response


def _enrol_all(central: CentralProcess) -> tuple[list[str], str]:
    store = CentralStore(central.data_dir, database_url=central.database_url, pool_size=2)
    try:
        with store.write() as db:
            tokens = [auth.add_device(db, f"Site {n % 10}", f"Desk {n}")[1] for n in range(KIOSKS)]
            reporting = auth.add_reporting_token(db, "reader")[1]
            accounts.add_user(db, "manager", PASSWORD)
    finally:
        store.close()
    return tokens, reporting


def _dashboard_session(url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(url + "/login", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = session.post(url + "/login", timeout=30, allow_redirects=False,
                          data={"username": "manager", "password": PASSWORD, "csrf": csrf,
                                "next": "/"})
    assert answer.status_code == 303, answer.text[:300]
    return session


@pytest.mark.slow
def test_two_hundred_kiosks_at_once_while_metrics_and_dashboard_are_read(
        tmp_path, central_database_url):
    started = time.monotonic()
    # On PostgreSQL as it is deployed for many kiosks: two workers on the one port.
    central = CentralProcess(tmp_path / "central", log_level="warning",
                             database_url=central_database_url,
                             workers=2 if central_database_url else 1).start()
    reads: Counter[str] = Counter()
    read_failures: list[str] = []
    stop_reading = threading.Event()
    try:
        tokens, reporting = _enrol_all(central)
        manager = _dashboard_session(central.url)

        def read_all_the_time() -> None:
            while not stop_reading.is_set():
                for name, call in (
                    ("metrics", lambda: requests.get(
                        central.url + "/api/v1/metrics", timeout=30,
                        headers={"Authorization": f"Bearer {reporting}"})),
                    ("dashboard", lambda: manager.get(central.url + "/", timeout=30)),
                    ("queue", lambda: manager.get(central.url + "/dashboard/queue.json",
                                                  timeout=30)),
                ):
                    response = call()
                    reads[name] += 1
                    if response.status_code != 200 or "locked" in response.text:
                        read_failures.append(f"{name} {response.status_code} {response.text[:200]}")

        readers = [threading.Thread(target=read_all_the_time) for _ in range(2)]
        for reader in readers:
            reader.start()
        barrier = threading.Barrier(KIOSKS)

        def kiosk(n: int) -> dict:
            store = Store(tmp_path / "kiosks" / f"{n}" / "kiosk.sqlite")
            client = WatchedClient(store, central.url, tokens[n])
            errors = []
            try:
                barrier.wait(timeout=60)
                for round_ in range(ROUNDS):
                    visit_id = str(uuid.uuid4())
                    store.record("visit.checked_in", {"ticket": f"A-{round_ + 1:03d}",
                                                      "appointment_at": None}, visit_id=visit_id)
                    store.record("visit.called", {}, visit_id=visit_id)
                    store.record("visit.checked_out", {}, visit_id=visit_id)
                    store.record("rating.submitted", {"score": 1 + n % 5, "scale": 5,
                                                      "tags": [], "misuse": False},
                                 visit_id=visit_id)
                    result = client.sync_once()
                    if not result.ok:
                        errors.append(result.error)
                return {"ids": [event["id"] for event in store.events()], "errors": errors,
                        "refusals": client.refusals, "backlog": store.sync_status().backlog}
            finally:
                client.close()
                store.close()

        with ThreadPoolExecutor(max_workers=KIOSKS) as pool:
            outcomes = list(pool.map(kiosk, range(KIOSKS)))
        stop_reading.set()
        for reader in readers:
            reader.join(timeout=60)
        rows = central.rows("SELECT device_id, id FROM events")
    finally:
        stop_reading.set()
        central.stop()

    said = [text for outcome in outcomes for text in outcome["errors"] + outcome["refusals"]]
    locked = [text for text in said + read_failures if "locked" in text.lower()]
    assert not locked, locked[:5]
    assert not said, said[:5]
    assert not read_failures, read_failures[:5]
    assert all(outcome["backlog"] == 0 for outcome in outcomes)
    ids = Counter(row["id"] for row in rows)
    local = [event_id for outcome in outcomes for event_id in outcome["ids"]]
    lost = len(set(local) - set(ids))
    duplicated = sum(n - 1 for n in ids.values())
    assert (lost, duplicated, len(rows)) == (0, 0, KIOSKS * ROUNDS * 4)
    log_trouble = [line for line in central.log if "locked" in line or "Traceback" in line]
    assert not log_trouble, log_trouble[:5]
    assert min(reads.values()) >= 1
    figures.record(
        "many_kiosks",
        title="200 kiosks at once, dashboard and metrics read meanwhile",
        figures={"kiosks": KIOSKS, "workers": central.workers, "pushes": KIOSKS * ROUNDS,
                 "events_checked": len(rows),
                 "reads_during_push": dict(reads), "database_is_locked_seen": len(locked)},
        lost=lost, duplicated=duplicated, server_errors=0, seconds=time.monotonic() - started,
    )
