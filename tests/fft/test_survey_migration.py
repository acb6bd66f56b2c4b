"""The central migration that records the survey a rating was asked as (``_rating_survey``),
over a store as the FFT release left it: ratings already there carry no marker."""

from __future__ import annotations

from sync.central.migrations import MIGRATIONS, _fft_and_comments, migrate
from sync.central.storage import CentralStore, connect, database_path


def test_old_ratings_of_a_site_asking_the_fft_are_taken_as_fft_answers(tmp_path):
    db = connect(database_path(tmp_path))
    migrate(db, target=MIGRATIONS.index(_fft_and_comments) + 1)  # as the FFT release left it
    db.conn.execute("INSERT INTO sites (name, survey) VALUES ('North', 'fft'), ('South', 'faces')")
    db.conn.executemany(
        "INSERT INTO ratings (id, device_id, site, score, scale, tags, misuse, occurred_at) "
        "VALUES (?, 'd1', ?, ?, ?, '[]', 0, '2026-10-10T09:00:00.000Z')",
        [("n5", "North", 4, 5), ("n4", "North", 3, 4), ("s5", "South", 4, 5)],
    )
    db.conn.commit()
    db.close()
    store = CentralStore(tmp_path)
    try:
        surveys = dict(store.db.execute("SELECT id, survey FROM ratings").fetchall())
    finally:
        store.close()
    # North asks the FFT: its 5-point ratings were its answers; a 4-point one cannot be, and
    # South's faces never were.
    assert surveys == {"n5": "fft", "n4": None, "s5": None}
