"""The per-hour caches key PostgreSQL's rows by server, database and its oid, and the server's
start: a database made again under the same name never meets the hours of the one before."""

from __future__ import annotations

from sync.central.storage import CentralStore


def _key(tmp_path, url):
    store = CentralStore(tmp_path, database_url=url, pool_size=1)
    try:
        return store.db.cache_key
    finally:
        store.close()


def test_a_database_made_again_under_its_name_has_a_new_key(tmp_path, postgres_cluster):
    first = _key(tmp_path, postgres_cluster.create_database("cache_key_one"))
    other = _key(tmp_path, postgres_cluster.create_database("cache_key_two"))
    postgres_cluster.drop_database("cache_key_one")
    again = _key(tmp_path, postgres_cluster.create_database("cache_key_one"))
    postgres_cluster.drop_database("cache_key_one")
    postgres_cluster.drop_database("cache_key_two")
    assert len({first, other, again}) == 3
    assert first[0] == again[0] and first[1] != again[1]  # same name, a new oid
