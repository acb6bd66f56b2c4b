"""Figure 3: central ingest over HTTP on loopback, beside sqlite-utils ``insert_all``.

The store runs as ``main.py central`` in its own process; 4 client threads, each a kiosk with
its own device token, post batches of 500 realistic events (visits and ratings, so projections
run as they do for real). Request bodies are serialised before the clock starts: this measures
the store, not the load generator's ``json.dumps``.

The baseline is the floor for the same durable work: the same event rows written with
sqlite-utils ``insert_all`` in one process into a database with the central schema and
pragmas, one ``db.atomic()`` transaction per batch of 500 (the store must commit each batch
before it answers it, so fewer commits would be a different contract, not a faster store).
"""

from __future__ import annotations

import json
import threading
import time

import requests

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central.migrations import migrate
from sync.central.storage import connect, database_path
from tests.benchmarks.common import (
    central_process,
    count_rows,
    enrol_devices,
    median,
    row,
    scratch_dir,
    wire_events,
)

CLIENTS = 4
BATCH = 500
MIN_SHARE = 0.25
MIN_RATE = 10_000


def _batches(events: list[dict]) -> list[list[dict]]:
    return [events[i:i + BATCH] for i in range(0, len(events), BATCH)]


def _raw_rate(per_client: list[list[dict]], folder) -> float:
    """Events per second for insert_all of the same rows, one transaction per batch."""
    folder.mkdir(parents=True, exist_ok=True)
    db = connect(database_path(folder))
    migrate(db)
    received = to_rfc3339(utc_now())
    started = time.perf_counter()
    total = 0
    for client, events in enumerate(per_client):
        device_id = f"device-{client}"
        for batch in _batches(events):
            rows = [
                {
                    "device_id": device_id,
                    "id": e["id"],
                    "device_seq": e["device_seq"],
                    "type": e["type"],
                    "occurred_at": e["occurred_at"],
                    "received_at": received,
                    "visit_id": e["visit_id"],
                    "data": json.dumps(e["data"], separators=(",", ":")),
                    "clock_suspect": 0,
                }
                for e in batch
            ]
            with db.atomic():
                db["events"].insert_all(rows, batch_size=BATCH)
            total += len(rows)
    elapsed = time.perf_counter() - started
    db.close()
    return total / elapsed


def post_concurrently(url: str, bodies: list[tuple[str, list[bytes]]]) -> tuple[float, list]:
    """Each (token, bodies) pair is one kiosk thread posting its batches in turn; returns the
    wall time from a common start and every batch's answers."""
    start = threading.Barrier(len(bodies) + 1)
    answers: list = []
    failures: list[str] = []

    def kiosk(token: str, payloads: list[bytes]) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        start.wait()
        for payload in payloads:
            response = session.post(url + "/api/v1/events", data=payload, headers=headers,
                                    timeout=60)
            if response.status_code != 200:
                failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            answers.append(response.json()["results"])
        session.close()

    threads = [threading.Thread(target=kiosk, args=pair) for pair in bodies]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"the central store refused a batch: {failures[0]}")
    return elapsed, answers


def run(quick: bool) -> list[dict]:
    per_client_events = BATCH * (6 if quick else 40)
    per_client = [wire_events(per_client_events, seed=100 + c) for c in range(CLIENTS)]
    total = per_client_events * CLIENTS
    with scratch_dir("ingest") as folder:
        # The raw rate swings most with the machine's load (a short, single-threaded burst), so
        # it is measured three times around the HTTP run and the median kept.
        raw_rates = [_raw_rate(per_client, folder / "raw-1")]
        central_dir = folder / "central"
        tokens = enrol_devices(central_dir, CLIENTS)
        bodies = [
            (token, [json.dumps({"events": b}).encode() for b in _batches(events)])
            for token, events in zip(tokens, per_client, strict=True)
        ]
        with central_process(central_dir) as central:
            elapsed, answers = post_concurrently(central.url, bodies)
        raw_rates += [_raw_rate(per_client, folder / f"raw-{n}") for n in (2, 3)]
        raw_rate = median(raw_rates)
        stored = sum(1 for results in answers for r in results if r["status"] == "stored")
        in_db = count_rows(central_dir, "SELECT COUNT(*) FROM events")
    if stored != total or in_db != total:
        raise RuntimeError(f"sent {total} events; answered stored {stored}, in the DB {in_db}")
    rate = total / elapsed
    share = rate / raw_rate
    return [row(
        f"3. central ingest over HTTP ({CLIENTS} clients x {BATCH}/batch, {total} events)",
        rate, "events/s", raw_rate,
        f">= {MIN_SHARE:.0%} of raw and >= {MIN_RATE:,}/s",
        share >= MIN_SHARE and rate >= MIN_RATE, ratio=share,
    )]
