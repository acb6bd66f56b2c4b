"""The central schema's one list of migrations, on both engines: an older database is brought
up to date when the store opens, a newer one is refused with a sentence, and the two engines
end with the same tables and columns."""

from __future__ import annotations

import pytest

from sync.central.migrations import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew, migrate
from sync.central.storage import CentralStore, column_names, connect_to, table_names


def _version(db) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def test_a_database_at_an_older_version_is_migrated_when_the_store_opens(tmp_path,
                                                                          central_database_url):
    db = connect_to(tmp_path, central_database_url)
    try:
        assert migrate(db, target=SCHEMA_VERSION - 2) == SCHEMA_VERSION - 2
        assert _version(db) == SCHEMA_VERSION - 2
    finally:
        db.close()
    store = CentralStore(tmp_path, database_url=central_database_url)
    try:
        assert _version(store.db) == SCHEMA_VERSION
    finally:
        store.close()


def test_a_database_from_a_newer_program_is_refused_with_a_sentence(tmp_path,
                                                                     central_database_url):
    CentralStore(tmp_path, database_url=central_database_url).close()
    db = connect_to(tmp_path, central_database_url)
    try:
        db.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    finally:
        db.close()
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1} but this "
                                            "program knows only"):
        CentralStore(tmp_path, database_url=central_database_url)


def test_both_engines_have_the_same_tables_and_columns(tmp_path, postgres_url):
    sqlite_store = CentralStore(tmp_path / "sqlite")
    postgres_store = CentralStore(None, database_url=postgres_url)
    try:
        shapes = []
        for store in (sqlite_store, postgres_store):
            db = store.db
            shapes.append({table: column_names(db, table) for table in table_names(db)
                           if table != "schema_version"})  # PostgreSQL's PRAGMA user_version
        assert shapes[0] == shapes[1]
        assert len(MIGRATIONS) == SCHEMA_VERSION
    finally:
        sqlite_store.close()
        postgres_store.close()
