"""Figure 13: figure 3's ingest over HTTP, with the store on PostgreSQL and 2 worker processes,
beside a raw ``COPY`` and a raw ``executemany`` of the same rows into the same table.

A throwaway cluster (``tests.support.postgres.PostgresCluster``) is started with
``durable=True``: ``fsync`` and ``full_page_writes`` on, ``synchronous_commit`` on, as in
production (the tests' clusters turn fsync off; here that would flatter every commit).
``main.py central --database-url URL --workers 2`` runs as a child process; 4 client threads,
each a kiosk with its own device token, post batches of 500 realistic events (figure 3's event
maker and client), so projections and rollups run as they do for real.

The baselines mirror figure 3's: the same event rows written into the ``events`` table of a
freshly migrated database on the same cluster, from one process, one transaction per batch of
500 (the store commits each batch before it answers it), with psycopg's ``cursor.copy``
(``COPY ... FROM STDIN``) and with ``cursor.executemany`` (a prepared INSERT, pipelined). As in
figure 3 the projections are not written by the baselines: they are the store's own work. Each
baseline is measured three times around the HTTP run and the median kept.
"""

from __future__ import annotations

import json
import time

import psycopg

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central.storage import CentralStore
from tests.benchmarks.central_ingest import BATCH, CLIENTS, post_concurrently
from tests.benchmarks.common import (
    central_process,
    count_rows,
    enrol_devices,
    median,
    row,
    wire_events,
)
from tests.support.postgres import PostgresCluster

WORKERS = 2
MIN_SHARE = 0.30
MIN_RATE = 20_000
COLUMNS = ("device_id", "id", "device_seq", "type", "occurred_at", "received_at", "visit_id",
           "data", "clock_suspect")


def _rows(per_client: list[list[dict]]) -> list[list[tuple]]:
    """Every batch's rows as the store writes them (the JSON text of ``data``, received now)."""
    received = to_rfc3339(utc_now())
    batches = []
    for client, events in enumerate(per_client):
        device_id = f"device-{client}"
        for start in range(0, len(events), BATCH):
            batches.append([
                (device_id, e["id"], e["device_seq"], e["type"], e["occurred_at"], received,
                 e["visit_id"], json.dumps(e["data"], separators=(",", ":")), 0)
                for e in events[start:start + BATCH]
            ])
    return batches


def _fresh_database(cluster: PostgresCluster, name: str) -> str:
    """A new database with the central schema (migrated as the store does at start)."""
    url = cluster.create_database(name)
    CentralStore(None, database_url=url, pool_size=1).close()
    return url


def _copy_rate(url: str, batches: list[list[tuple]]) -> float:
    statement = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for batch in batches:
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
                for values in batch:
                    copy.write_row(values)
        elapsed = time.perf_counter() - started
    return sum(map(len, batches)) / elapsed


def _executemany_rate(url: str, batches: list[list[tuple]]) -> float:
    statement = (f"INSERT INTO events ({', '.join(COLUMNS)}) "
                 f"VALUES ({', '.join(['%s'] * len(COLUMNS))})")
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for batch in batches:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(statement, batch)
        elapsed = time.perf_counter() - started
    return sum(map(len, batches)) / elapsed


def run(quick: bool) -> list[dict]:
    per_client_events = BATCH * (6 if quick else 40)
    per_client = [wire_events(per_client_events, seed=100 + c) for c in range(CLIENTS)]
    total = per_client_events * CLIENTS
    batches = _rows(per_client)
    copy_rates: list[float] = []
    many_rates: list[float] = []
    with PostgresCluster(durable=True) as cluster:

        def baselines(round_number: int) -> None:
            copy_rates.append(_copy_rate(_fresh_database(cluster, f"copy_{round_number}"),
                                         batches))
            many_rates.append(_executemany_rate(
                _fresh_database(cluster, f"many_{round_number}"), batches))

        baselines(1)
        url = cluster.create_database("central")
        tokens = enrol_devices(None, CLIENTS, database_url=url)
        bodies = [
            (token, [json.dumps({"events": events[i:i + BATCH]}).encode()
                     for i in range(0, len(events), BATCH)])
            for token, events in zip(tokens, per_client, strict=True)
        ]
        with central_process(None, database_url=url, workers=WORKERS) as central:
            elapsed, answers = post_concurrently(central.url, bodies)
        baselines(2)
        baselines(3)
        stored = sum(1 for results in answers for r in results if r["status"] == "stored")
        in_db = count_rows(None, "SELECT COUNT(*) FROM events", database_url=url)
    if stored != total or in_db != total:
        raise RuntimeError(f"sent {total} events; answered stored {stored}, in the DB {in_db}")
    rate = total / elapsed
    label = (f"13. central ingest over HTTP on PostgreSQL ({WORKERS} workers, fsync on, "
             f"{CLIENTS} clients x {BATCH}/batch, {total} events)")
    target = f">= {MIN_SHARE:.0%} of raw and >= {MIN_RATE:,}/s"
    rows = []
    for name, rates in (("raw COPY", copy_rates), ("raw executemany", many_rates)):
        baseline = median(rates)
        share = rate / baseline
        rows.append(row(f"{label}, vs {name}", rate, "events/s", baseline, target,
                        share >= MIN_SHARE and rate >= MIN_RATE, ratio=share))
    return rows
