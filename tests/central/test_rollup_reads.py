"""A page's long-range reads come from an index alone: on PostgreSQL a site's rollup hours from
the primary key, and on both engines a site's ratings by language from (site, occurred_at).

A PostgreSQL table keeps rows in the order they came, and rollup rows come hour by hour for
every site at once: a 90-day read of one site touched a page per row (README, figure 16). Each
rollup's key INCLUDEs the counts (``rollups.cover_rollup_keys``), so the read is an index-only
scan in key order, as SQLite's WITHOUT ROWID tables read. The plans are asked with the
planner's heap-first choices switched off: on a small test table it would rightly scan it
whole, and the question is whether the key alone can answer.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync.central import auth
from sync.central.ingest import ingest_batch
from sync.central.rollups import ROLLUP_PRIMARY_KEYS, SITE_ROLLUP_KEYS, rollup_columns
from sync.central.storage import CentralStore
from tests.support.appointments import morning_events
from tests.support.wire_events import MORNING

SITE = "Rollup Clinic"
NOW = MORNING + timedelta(hours=3)
READS = {
    "rating_hours": "SELECT hour, SUM(n) FILTER (WHERE scale = 5 AND score = 5), "
                    "SUM(n) FILTER (WHERE linked = 1) FROM rating_hours",
    "visit_hours": "SELECT hour, SUM(visits), SUM(checked_out), SUM(waits), SUM(changes), "
                   "SUM(appt_early), SUM(appt_called), SUM(appt_within) FROM visit_hours",
    "negative_tag_hours": "SELECT hour, tag, SUM(n) FROM negative_tag_hours",
    "site_rating_hours": "SELECT hour, SUM(n), SUM(linked), SUM(face_5_5), SUM(face_4_1) "
                         "FROM site_rating_hours",
    "site_visit_hours": "SELECT hour, SUM(visits), SUM(waits), SUM(changes), SUM(appt_within) "
                        "FROM site_visit_hours",
}


@pytest.fixture
def filled(tmp_path, postgres_url):
    store = CentralStore(tmp_path, database_url=postgres_url)
    with store.write() as db:
        device, _ = auth.add_device(db, SITE, "Desk 1")
    ingest_batch(store, device, morning_events(), NOW)
    yield store
    store.close()


def _plan(store: CentralStore, select: str) -> str:
    raw = store.db.conn.raw
    raw.execute("SET enable_seqscan = off")
    raw.execute("SET enable_bitmapscan = off")
    try:
        rows = raw.execute(
            f"EXPLAIN {select} WHERE site = %s AND hour >= %s AND hour < %s GROUP BY 1"
            + (", 2" if "tag," in select else ""),
            [SITE, MORNING.strftime("%Y-%m-%dT00"), NOW.strftime("%Y-%m-%dT23")],
        ).fetchall()
    finally:
        raw.execute("RESET enable_seqscan")
        raw.execute("RESET enable_bitmapscan")
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("table", sorted(READS))
def test_a_sites_hours_are_read_from_the_key_alone(filled, table):
    plan = _plan(filled, READS[table])
    assert f"Index Only Scan using {table}_pkey" in plan, plan


def test_the_keys_keep_their_names_and_columns_cover_the_rest_and_still_count(filled, postgres_url):
    db = filled.db
    for table, keys in {**ROLLUP_PRIMARY_KEYS, **SITE_ROLLUP_KEYS}.items():
        key_columns = [row[0] for row in db.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE c.relname = ? AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)", [f"{table}_pkey"],
        ).fetchall()]
        assert tuple(key_columns[:len(keys)]) == keys
        # And it carries every other column: a column a later migration adds (and a page
        # sums) must be covered too, or the reads go back to the scattered table.
        assert set(key_columns) == set(rollup_columns(db, table)), table
    # The triggers still find the key by its name: what the batch counted is in the rollup.
    visits, rollup = db.execute(
        "SELECT (SELECT COUNT(*) FROM visits WHERE voided = 0 AND cancel_reason IS NULL), "
        "(SELECT SUM(visits) FROM visit_hours)"
    ).fetchone()
    assert visits > 0 and rollup == visits


# Compare's ratings per language, read from the rows (the rollups keep no language).
LANGUAGE_READ = ("SELECT lang, scale, score, visit_id IS NOT NULL, COUNT(*) FROM ratings "
                 "WHERE site = ? AND occurred_at >= ? AND occurred_at < ? AND misuse = 0 "
                 "GROUP BY 1, 2, 3, 4")


def test_a_sites_ratings_by_language_are_read_from_an_index_alone(filled):
    params = [SITE, MORNING.isoformat(), NOW.isoformat()]
    raw = filled.db.conn.raw
    raw.execute("SET enable_seqscan = off")
    raw.execute("SET enable_bitmapscan = off")
    plan = "\n".join(row[0] for row in raw.execute(
        "EXPLAIN " + LANGUAGE_READ.replace("?", "%s"), params).fetchall())
    assert "Index Only Scan using idx_ratings_site_occurred_at" in plan, plan


def test_a_sites_ratings_by_language_are_read_from_an_index_alone_on_sqlite_too(tmp_path):
    store = CentralStore(tmp_path)
    try:
        plan = " ".join(row[3] for row in store.db.execute(
            "EXPLAIN QUERY PLAN " + LANGUAGE_READ, [SITE, "2026-01-01", "2026-02-01"]))
        assert "COVERING INDEX idx_ratings_site_occurred_at" in plan, plan
    finally:
        store.close()
