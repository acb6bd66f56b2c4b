"""The CSV exports stream on both engines: on PostgreSQL from a server-side (named) cursor, so
the first rows go out before the whole range is read (benchmark figure 16's first bytes)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sync.central import auth, postgres
from sync.central.dashboard import export
from sync.central.ingest import ingest_batch
from tests.support.wire_events import MORNING, wire_event

VISITS = 23
RANGE = [(None, "2026-03-02T00:00:00.000Z", "2026-03-03T00:00:00.000Z")]


def _fill(store) -> None:
    with store.write() as db:
        device, _ = auth.add_device(db, "Stream Clinic", "Desk 1")
    events, seq = [], 0
    for index in range(VISITS):
        visit_id, at = str(uuid.uuid4()), MORNING + timedelta(minutes=5 * index)
        for kind, when, data in (
            ("visit.checked_in", at, {"ticket": f"S-{index:03d}"}),
            ("visit.called", at + timedelta(minutes=3 + index % 7), {}),
            ("rating.submitted", at + timedelta(minutes=20),
             {"score": 1 + index % 5, "scale": 5, "tags": [], "misuse": False}),
        ):
            seq += 1
            events.append(wire_event(seq, kind, when, visit_id, data))
    ingest_batch(store, device, events, MORNING + timedelta(hours=3))


def _open_cursors(db) -> int:
    return db.conn.raw.execute("SELECT count(*) FROM pg_cursors").fetchone()[0]


def test_the_exports_stream_their_rows_in_order(central_store, monkeypatch):
    _fill(central_store)
    monkeypatch.setattr(export, "CHUNK_ROWS", 5)
    monkeypatch.setattr(postgres, "STREAM_ROWS", 5)
    for make, rows in ((export.visits_csv, VISITS), (export.ratings_csv, VISITS)):
        with central_store.reader() as db:
            chunks = make(db, RANGE)
            first = next(chunks)
            assert first.count("\r\n") == 1 + 5  # the header and one chunk's rows
            if getattr(db, "engine", "sqlite") == "postgres":
                # The rest is still on the server, behind a cursor of the read's own.
                assert _open_cursors(db) == 1
            lines = (first + "".join(chunks)).splitlines()
        assert len(lines) == 1 + rows
        times = [line.split(",")[5 if make is export.visits_csv else 3] for line in lines[1:]]
        assert times == sorted(times)


def test_a_download_stopped_early_leaves_its_connection_clean(central_store, monkeypatch):
    _fill(central_store)
    monkeypatch.setattr(export, "CHUNK_ROWS", 5)
    monkeypatch.setattr(postgres, "STREAM_ROWS", 5)
    with central_store.reader() as db:
        chunks = export.visits_csv(db, RANGE)
        next(chunks)
        chunks.close()  # the client went away
        if getattr(db, "engine", "sqlite") == "postgres":
            assert not db.conn.in_transaction
            assert _open_cursors(db) == 0
        assert db.execute("SELECT count(*) FROM visits").fetchone()[0] == VISITS
