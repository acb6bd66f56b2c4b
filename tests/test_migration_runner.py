"""The generic migration runner: any list of migrations, the version kept where the caller says."""

from __future__ import annotations

import pytest
from sqlite_utils import Database

from kiosk.local_db import connect
from kiosk.migration_runner import SchemaTooNew, run_migrations, user_version


def _add(table: str):
    def migration(db: Database) -> None:
        db[table].create({"id": int}, pk="id")

    return migration


def test_runs_each_missing_migration_once_in_pragma_user_version(tmp_path):
    db = Database(connect(tmp_path / "any.sqlite"))
    steps = [_add("a"), _add("b")]
    assert run_migrations(db, steps[:1]) == 1
    assert run_migrations(db, steps) == 2  # only the new one runs (a second "a" would fail)
    assert run_migrations(db, steps) == 2
    assert user_version(db) == 2 and set(db.table_names()) == {"a", "b"}
    db.close()


def test_stops_at_a_target_and_rolls_back_a_failing_migration(tmp_path):
    db = Database(connect(tmp_path / "any.sqlite"))

    def broken(db: Database) -> None:
        db["c"].create({"id": int}, pk="id")
        raise RuntimeError("half done")

    assert run_migrations(db, [_add("a"), _add("b"), broken], target=2) == 2
    with pytest.raises(RuntimeError, match="half done"):
        run_migrations(db, [_add("a"), _add("b"), broken])
    assert user_version(db) == 2 and "c" not in db.table_names()  # nothing half applied
    db.close()


def test_a_newer_file_is_refused_with_a_sentence(tmp_path):
    db = Database(connect(tmp_path / "any.sqlite"))
    run_migrations(db, [_add("a"), _add("b")])
    with pytest.raises(SchemaTooNew, match="schema version 2, newer than this program"):
        run_migrations(db, [_add("a")])
    db.close()
