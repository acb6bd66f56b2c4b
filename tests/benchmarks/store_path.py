"""What the store's own ingest path costs per event, without HTTP: the floor under figures 3,
13 and 14.

``python -m tests.benchmarks.store_path`` checks (``prepare_batch``) and stores
(``store_prepared``) figure 13's events, 20,000 from 4 devices, in this process: no HTTP, no
JSON parsing, no client. Each case, twice: SQLite and PostgreSQL (a throwaway durable
cluster, one writer), batches of 500 each in its own transaction (figures 3 and 13) and
batches of 25 with 40 of them in one transaction (figure 14's kiosks, as the store's group
commit gathers a burst). It prints events/s and the CPU per event: this process's, and on
PostgreSQL the server processes' (read from ``/proc`` through ``os.times`` and
``/proc/PID/stat``), so what the engine costs is told apart from what Python costs.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from kiosk.shared.timeutil import utc_now
from sync.central.auth import authenticate_device
from sync.central.ingest import prepare_batch, store_prepared
from sync.central.storage import CentralStore
from tests.benchmarks.common import enrol_devices, wire_events
from tests.support.postgres import PostgresCluster

DEVICES = 4
PER_DEVICE = 5000
CASES = ((500, 1), (25, 40))  # (events per batch, batches per transaction)
REPEATS = 2
TICKS = os.sysconf("SC_CLK_TCK")


def _server_cpu_s(cluster: PostgresCluster | None) -> float:
    """User + system CPU of every process of the cluster (the postmaster's children)."""
    if cluster is None:
        return 0.0
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == cluster.pid or int(entry.name) == cluster.pid:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _measure(store: CentralStore, tokens: list[str], batch: int, per_transaction: int,
             cluster: PostgresCluster | None) -> tuple[float, float, float]:
    """(events/s, Python CPU µs an event, server CPU µs an event) for one pass."""
    with store.reader() as db:
        devices = [authenticate_device(db, token) for token in tokens]
    events = [wire_events(PER_DEVICE, seed=100 + n) for n in range(DEVICES)]
    batches = [(devices[n], events[n][start:start + batch])
               for start in range(0, PER_DEVICE, batch) for n in range(DEVICES)]
    total = DEVICES * PER_DEVICE
    own, server = sum(os.times()[:2]), _server_cpu_s(cluster)
    started = time.perf_counter()
    for first in range(0, len(batches), per_transaction):
        prepared = [prepare_batch(device, chunk, utc_now())
                    for device, chunk in batches[first:first + per_transaction]]
        with store.write() as db:
            for one in prepared:
                store_prepared(db, one)
    elapsed = time.perf_counter() - started
    own = sum(os.times()[:2]) - own
    server = _server_cpu_s(cluster) - server
    return total / elapsed, own / total * 1e6, server / total * 1e6


def _one(batch: int, per_transaction: int,
         cluster: PostgresCluster | None) -> tuple[float, float, float]:
    """A pass on a fresh store: SQLite's without ``cluster``, else a database on it."""
    if cluster is None:
        folder = Path(tempfile.mkdtemp(prefix="store-path-"))
        url = None
    else:
        folder, url = None, cluster.create_database(f"path_{batch}_{time.monotonic_ns()}")
    tokens = enrol_devices(folder, DEVICES, database_url=url)
    store = CentralStore(folder, database_url=url)
    try:
        return _measure(store, tokens, batch, per_transaction, cluster)
    finally:
        store.close()


def main() -> None:
    print("| engine | events per batch | batches per transaction | events/s | Python CPU µs/event "
          "| server CPU µs/event |")
    print("|---|---|---|---|---|---|")
    with PostgresCluster(durable=True) as cluster:
        for engine, server in (("SQLite", None), ("PostgreSQL", cluster)):
            for batch, per_transaction in CASES:
                for _ in range(REPEATS):
                    rate, own, spent = _one(batch, per_transaction, server)
                    print(f"| {engine} | {batch} | {per_transaction} | {rate:,.0f} | {own:.0f} "
                          f"| {spent:.0f} |", flush=True)


if __name__ == "__main__":
    main()
