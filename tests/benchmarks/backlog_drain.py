"""Figure 5: one kiosk's backlog of 100,000 events drained to the central store by
``SyncClient.sync_once()`` (batches of 500 over HTTP on loopback, each marked synced locally
in its own durable transaction), beside the same events through ``ingest_batch`` in-process,
without HTTP and without the kiosk's side.

The backlog is bulk-inserted into the kiosk's outbox in one transaction, for speed: the same
``events`` rows ``Store.record`` writes (id, gapless device_seq, type, occurred_at, visit_id,
JSON data, nothing synced). The projections are left empty; sync never reads them.
"""

from __future__ import annotations

import json
import time

from kiosk.shared.timeutil import utc_now
from kiosk.store import Store as KioskStore
from sync.central.auth import authenticate_device
from sync.central.ingest import ingest_batch
from sync.central.storage import CentralStore
from sync.client import DEFAULT_BATCH_SIZE, SyncClient
from tests.benchmarks.common import (
    central_process,
    count_rows,
    enrol_devices,
    row,
    scratch_dir,
    wire_events,
)

FULL_EVENTS = 100_000
TARGET_S = 20.0  # for FULL_EVENTS; a quick run scales it to its size


def _fill_outbox(store: KioskStore, events: list[dict]) -> None:
    with store._write() as conn:  # the store's own BEGIN IMMEDIATE ... COMMIT
        conn.executemany(
            "INSERT INTO events(id, device_seq, type, occurred_at, visit_id, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(e["id"], e["device_seq"], e["type"], e["occurred_at"], e["visit_id"],
              json.dumps(e["data"])) for e in events],
        )
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('next_seq', ?)",
                     [str(len(events) + 1)])


def _in_process_seconds(folder, events: list[dict]) -> float:
    token = enrol_devices(folder, 1)[0]
    store = CentralStore(folder)
    try:
        device = authenticate_device(store.db, token)
        started = time.perf_counter()
        for i in range(0, len(events), DEFAULT_BATCH_SIZE):
            ingest_batch(store, device, events[i:i + DEFAULT_BATCH_SIZE], utc_now())
        return time.perf_counter() - started
    finally:
        store.close()


def run(quick: bool) -> list[dict]:
    count = 10_000 if quick else FULL_EVENTS
    target_s = TARGET_S * count / FULL_EVENTS
    events = wire_events(count, seed=5)
    with scratch_dir("drain") as folder:
        baseline_s = _in_process_seconds(folder / "in-process", events)

        kiosk = KioskStore(folder / "kiosk" / "kiosk.sqlite")
        _fill_outbox(kiosk, events)
        central_dir = folder / "central"
        token = enrol_devices(central_dir, 1)[0]
        with central_process(central_dir) as central:
            client = SyncClient(kiosk, central.url, token)
            started = time.perf_counter()
            result = client.sync_once()
            drain_s = time.perf_counter() - started
            client.close()
        backlog = kiosk.sync_status().backlog
        kiosk.close()
        in_db = count_rows(central_dir, "SELECT COUNT(*) FROM events")
    if not result.ok or result.stored != count or backlog or in_db != count:
        raise RuntimeError(f"drain incomplete: {result}, kiosk backlog {backlog}, "
                           f"central holds {in_db} of {count}")
    return [row(
        f"5. backlog drain, {count:,} events (sync_once vs in-process ingest)", drain_s, "s",
        baseline_s, f"<= {target_s:g} s", drain_s <= target_s,
    )]
