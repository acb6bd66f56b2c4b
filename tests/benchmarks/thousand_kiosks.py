"""Figure 14: 1,000 kiosks, each with its own device token and its own kept-alive connection,
push a batch of 25 events at the same moment, on both engines: SQLite (``main.py central
--data DIR``, one process) and PostgreSQL (``main.py central --database-url URL --workers 2``
on a throwaway cluster with fsync on). p99 of the batch latency, beside one kiosk's batch alone
on the same server; every event must be stored exactly once, counted in the database (the
events table's key is (device, event id), so the count is the number of distinct events).

The client is ``kiosk_burst``'s: one asyncio HTTP/1.1 connection per kiosk, all in one
process, so that the load generator stays a small part of a machine the server shares. The
store's ``--max-connections`` is raised to 1,100 (per worker) so that the 1,000 kiosks are
served, not refused, whichever worker the kernel hands them to.

Two more rows give the floor: the same bursts against the same web stack (uvicorn and FastAPI)
answering without any store, in one process and in two (``framework_floor``). On a 2-CPU machine
that the load generator shares, that floor alone was 0.3-0.4 s of the 1 s target.
"""

from __future__ import annotations

import asyncio
import traceback

from tests.benchmarks import kiosk_burst
from tests.benchmarks.common import (
    central_process,
    count_rows,
    enrol_devices,
    median,
    percentile,
    row,
    scratch_dir,
    wire_events,
)
from tests.benchmarks.framework_floor import floor_server
from tests.support.postgres import PostgresCluster

KIOSKS = 1000
BATCH = kiosk_burst.BATCH
TARGET_P99_S = 1.0
ALONE_REPEATS = 7
WORKERS = 2
MAX_CONNECTIONS = 1100


def _run_engine(data_dir, database_url, rounds: int, workers: int,
                read_database_url: str | None = None):
    """Enrol, serve, post alone then in bursts; returns (alone latencies, bursts, stored)."""
    tokens = enrol_devices(data_dir, KIOSKS + 1, database_url=database_url)
    alone_token, tokens = tokens[0], tokens[1:]
    alone_bodies = kiosk_burst.bodies(wire_events(BATCH * ALONE_REPEATS, seed=1), ALONE_REPEATS)
    per_kiosk = [kiosk_burst.bodies(wire_events(BATCH * rounds, seed=1000 + k), rounds)
                 for k in range(KIOSKS)]
    by_round = [[per_kiosk[k][r] for k in range(KIOSKS)] for r in range(rounds)]
    with central_process(data_dir, database_url=database_url, workers=workers,
                         read_database_url=read_database_url,
                         max_connections=MAX_CONNECTIONS) as central:
        alone = asyncio.run(kiosk_burst.alone(central.url, alone_token, alone_bodies))
        bursts = asyncio.run(kiosk_burst.bursts(central.url, tokens, by_round))
    stored = count_rows(data_dir, "SELECT COUNT(*) FROM events", database_url=database_url)
    return alone, bursts, stored - BATCH * ALONE_REPEATS


def floor_p99(rounds: int, workers: int) -> float:
    """The p99 of the same bursts against the web stack with no store behind it
    (``framework_floor``): the least any store served by it could reach here."""
    per_kiosk = [kiosk_burst.bodies(wire_events(BATCH * rounds, seed=1000 + k), rounds)
                 for k in range(KIOSKS)]
    by_round = [[per_kiosk[k][r] for k in range(KIOSKS)] for r in range(rounds)]
    with floor_server(workers) as url:
        bursts = asyncio.run(kiosk_burst.bursts(url, ["floor"] * KIOSKS, by_round))
    return median([percentile(b.latencies, 0.99) for b in bursts])


def _floor_row(rounds: int, workers: int) -> dict:
    label = f"{KIOSKS} kiosks x {BATCH} events at once, {workers} process"
    label += "es" if workers > 1 else ""
    try:
        p99 = floor_p99(rounds, workers)
    except Exception as error:
        traceback.print_exc()
        return row(f"14. floor ({label})", None, "", None, f"error: {error}", None)
    return row(f"14. floor: the same bursts, FastAPI + uvicorn answering without a store "
               f"({label}): p99", p99, "s", None, "(information)", None)


def _rows(engine: str, rounds: int, alone, bursts, stored) -> list[dict]:
    sent = KIOSKS * BATCH * rounds
    p99 = median([percentile(b.latencies, 0.99) for b in bursts])
    label = f"{KIOSKS} kiosks x {BATCH} events at once, {engine}"
    if rounds > 1:
        label += f", median of {rounds} bursts"
    return [
        row(f"14. 1,000 kiosks: batch latency p99 ({label})", p99, "s", median(alone),
            f"<= {TARGET_P99_S:g} s", p99 <= TARGET_P99_S),
        row(f"14. 1,000 kiosks: events stored once in the central DB ({label})", stored,
            "events", sent, "all, once", stored == sent),
    ]


def run_postgres(rounds: int) -> tuple[list[float], list[kiosk_burst.Burst], int]:
    with PostgresCluster(durable=True) as cluster:
        url = cluster.create_database("central")
        return _run_engine(None, url, rounds, WORKERS)


def _engine_rows(engine: str, rounds: int, measure) -> list[dict]:
    """One engine's rows, or an error row with the reason: a failure on one engine must not
    hide the other's figures."""
    try:
        return _rows(engine, rounds, *measure())
    except Exception as error:
        traceback.print_exc()
        return [row(f"14. 1,000 kiosks ({engine})", None, "", None, f"error: {error}", False)]


def run(quick: bool) -> list[dict]:
    kiosk_burst.ensure_open_files(KIOSKS)
    rounds = 1 if quick else 3
    with scratch_dir("thousand") as folder:
        sqlite_rows = _engine_rows("SQLite", rounds,
                                   lambda: _run_engine(folder, None, rounds, 1))
    postgres_rows = _engine_rows(f"PostgreSQL, {WORKERS} workers", rounds,
                                 lambda: run_postgres(rounds))
    floors = [_floor_row(rounds, 1), _floor_row(rounds, WORKERS)]
    return sqlite_rows + postgres_rows + floors
