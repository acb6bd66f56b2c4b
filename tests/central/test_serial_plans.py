"""The store's PostgreSQL connections plan serially unless the operator says otherwise.

Parallel workers made the dashboard's many small reads 2-3x slower (README, figure 16), so the
store sets ``max_parallel_workers_per_gather = 0`` on each connection (a SET, not a startup
``options``, which PgBouncer refuses); a URL (or PGOPTIONS) that sets it keeps its own value,
and the URL's other options are kept too.
"""

from __future__ import annotations

from urllib.parse import quote

from sync.central import postgres
from sync.central.storage import CentralStore


def _setting(store: CentralStore, name: str) -> str:
    return store.db.execute(f"SHOW {name}").fetchone()[0]


def test_the_stores_connections_plan_serially(tmp_path, postgres_url):
    store = CentralStore(tmp_path, database_url=postgres_url, pool_size=2)
    try:
        assert _setting(store, "max_parallel_workers_per_gather") == "0"
    finally:
        store.close()


def test_the_operators_options_win_and_are_kept(tmp_path, postgres_url, monkeypatch):
    options = quote("-c max_parallel_workers_per_gather=3 -c work_mem=8MB")
    store = CentralStore(tmp_path, database_url=f"{postgres_url}?options={options}",
                         pool_size=2)
    try:
        assert _setting(store, "max_parallel_workers_per_gather") == "3"
        assert _setting(store, "work_mem") == "8MB"
    finally:
        store.close()
    monkeypatch.setenv("PGOPTIONS", "-c max_parallel_workers_per_gather=1")
    assert not postgres.wants_serial_plans(postgres_url)
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=9MB")
    assert postgres.wants_serial_plans(postgres_url)
