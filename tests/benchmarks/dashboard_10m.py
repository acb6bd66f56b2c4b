"""Figure 16: figure 6's pages and API calls over about 10 million events (three years of a
20-site, 80-desk group), on SQLite and on PostgreSQL reading from a streaming replica.

The two stores are filled at once with the same rows (``tests.benchmarks.group_store``: how,
and how the rollups are built on each engine); the fill's times are rows of the table. Then
each engine's store is served by ``main.py central`` in its own process: ``--data DIR`` for
SQLite, ``--database-url PRIMARY --read-database-url REPLICA`` for PostgreSQL, with a real
replica (``pg_basebackup -R``) made after the fill and caught up before anything is timed.
The rows are figure 6's (p95 of each page and call beside ``/healthz``), one set per engine.

The cluster is a throwaway one (``tests.support.postgres``): fsync off, like the tests' (a
read benchmark; nothing here is about surviving a power cut), ``shared_buffers`` 1 GB as an
operator would give a database of this size instead of the 128 MB default.

``DASHBOARD_10M_DATA=DIR`` keeps the filled stores for the next run (the fill takes about
half an hour here): the SQLite store in ``DIR/sqlite``, the PostgreSQL primary and replica
folders under ``DIR`` (stopped at the end), what the fill measured in ``DIR/fill.json``.
``--quick`` fills 300,000 events instead.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from sync.central import auth
from sync.central.dashboard import accounts
from sync.central.storage import CentralStore
from tests.benchmarks import group_store
from tests.benchmarks.common import central_process, row, scratch_dir
from tests.benchmarks.dashboard_requests import PASSWORD, measure
from tests.support.postgres import PostgresCluster, PostgresReplica

EVENTS = 10_000_000
QUICK_EVENTS = 300_000
STATE_FILE = "fill.json"
SETTINGS = {"shared_buffers": "1GB"}
REPLICA_CATCH_UP_S = 900.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _bench_login(store: CentralStore) -> dict:
    """The login "bench" (its password set again) and a new reporting token's header."""
    with store.write() as db:
        accounts.add_user(db, "bench", PASSWORD)
        return {"Authorization": f"Bearer {auth.add_reporting_token(db, 'figure 16')[1]}"}


def _servers(root: Path, state: dict) -> tuple[PostgresCluster, PostgresReplica]:
    primary = PostgresCluster(root, port=state.get("primary_port"), settings=SETTINGS,
                              folder=root / state["primary"] if "primary" in state else None)
    replica = PostgresReplica(primary, root, port=state.get("replica_port"),
                              folder=root / state["replica"] if "replica" in state else None)
    return primary, replica


def _fill_rows(state: dict, events_label: str) -> list[dict]:
    fill = state["fill"]
    seconds = fill["seconds"]
    total = sum(seconds.values())
    result = [row(f"16. fill, {name} ({events_label})", round(value, 1), "s", None,
                  "(information)", None) for name, value in seconds.items()]
    result.append(row(f"16. fill in all, both engines ({events_label}; "
                      f"{fill['visits']:,} visits, {fill['ratings']:,} ratings)",
                      round(total, 1), "s", None, "(information)", None))
    for name, size in state["sizes"].items():
        result.append(row(f"16. size on disk, {name} ({events_label})", size, "MB", None,
                          "(information)", None))
    return result


def _sizes(root: Path, primary: PostgresCluster, url: str) -> dict[str, int]:
    sqlite_bytes = sum(f.stat().st_size for f in (root / "sqlite").glob("central.sqlite3*"))
    with primary.connect() as db:
        pg_bytes = db.execute("SELECT pg_database_size(%s)", [url.rsplit("/", 1)[1]]).fetchone()[0]
    return {"SQLite file": round(sqlite_bytes / 1e6), "PostgreSQL database": round(pg_bytes / 1e6)}


def run(quick: bool) -> list[dict]:
    events = QUICK_EVENTS if quick else EVENTS
    samples = 20 if quick else 40
    keep = os.environ.get("DASHBOARD_10M_DATA")
    with scratch_dir("dashboard-10m") as scratch:
        root = Path(keep) if keep else scratch
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)  # the postgres user reaches its folders under it
        state_path = root / STATE_FILE
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        primary, replica = _servers(root, state)
        try:
            primary.start()
            url = primary.url("kiosk")
            if "fill" not in state:
                if (root / "sqlite").exists():
                    raise RuntimeError(f"{root} holds a fill that did not finish: remove the "
                                       "folder (stop its PostgreSQL first) and run again")
                primary.create_database("kiosk")
                sqlite_store = CentralStore(root / "sqlite")
                postgres_store = CentralStore(None, database_url=url)
                try:
                    report = group_store.fill(sqlite_store, postgres_store, events, progress=_log)
                finally:
                    sqlite_store.close()
                    postgres_store.close()
                state = {"primary": primary.folder.name, "primary_port": primary.port,
                         "fill": {"events": report.events, "visits": report.visits,
                                  "ratings": report.ratings,
                                  "seconds": {k: round(v, 1) for k, v in report.seconds.items()}},
                         "sizes": _sizes(root, primary, url)}
                state_path.write_text(json.dumps(state, indent=2))
            replica.start()  # after the fill: a base backup of the filled database
            state.update(replica=replica.folder.name, replica_port=replica.port)
            state_path.write_text(json.dumps(state, indent=2))
            label = f"{state['fill']['events']:,} events"
            result = _fill_rows(state, label)
            for engine in ("sqlite", "postgres"):
                result += _measure(engine, root, primary, replica, url, samples, label)
            return result
        finally:
            if keep:
                replica.stop()
                primary.stop()
            else:
                replica.close()
                primary.close()


def _measure(engine: str, root: Path, primary: PostgresCluster, replica: PostgresReplica,
             url: str, samples: int, label: str) -> list[dict]:
    if engine == "sqlite":
        store = CentralStore(root / "sqlite")
        args: tuple[str, ...] = ()
        data_dir = root / "sqlite"
    else:
        store = CentralStore(None, database_url=url)
        args = ("--database-url", url, "--read-database-url", replica.url("kiosk"))
        data_dir = root / "postgres-server"
        data_dir.mkdir(exist_ok=True)
    try:
        reporting = _bench_login(store)
    finally:
        store.close()
    if engine == "postgres":
        replica.wait_caught_up(timeout=REPLICA_CATCH_UP_S)
    name = "SQLite" if engine == "sqlite" else "PostgreSQL, reads from the replica"
    _log(f"[16] measuring {name}")
    with central_process(data_dir, startup_timeout=120.0, extra_args=args) as central:
        return measure(central.url, reporting, samples, f"16. {name}, {label}",
                       first_requests=True)


if __name__ == "__main__":
    for line in run("--quick" in sys.argv):
        print(line)
