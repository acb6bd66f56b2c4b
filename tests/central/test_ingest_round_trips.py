"""Ingest on PostgreSQL waits for a fixed number of answers per batch, whatever it holds, and a
write sent ahead without waiting (``bulk_writes.execute_later``) that fails is still the fault
of its own event alone, on both engines."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from sync.central import ingest
from sync.central.auth import add_device
from sync.central.bulk_writes import execute_later
from sync.central.ingest import UNSTORABLE, ingest_batch
from sync.central.postgres import PgConnection
from sync.central.storage import CentralStore
from tests.support.wire_events import WireEvents, at

RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# The statements whose answers a batch waits for: its look-ups (a handful, each for the whole
# batch), the events' COPY, one statement each for visits and ratings, the device's rows, the
# savepoint and the collection of the pipelined writes. Not one per event.
MAX_WAITS_PER_BATCH = 25


def _count_waits(monkeypatch) -> list[int]:
    """A counter of this thread's PgConnection calls that wait for PostgreSQL's answer. Only
    this thread's: a store another test of this process left running (a session's dashboard
    store, its alert engine) sends statements of its own now and then, which once made a
    batch look one statement longer than the next."""
    waits = [0]
    ours = threading.get_ident()
    for name in ("execute", "insert_many", "copy_rows"):
        real = getattr(PgConnection, name, None)
        if real is None:
            continue

        def counted(self, *args, _real=real, **kwargs):
            if threading.get_ident() == ours:
                waits[0] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(PgConnection, name, counted)
    return waits


def _desk_batch(visits: int, first_minute: int) -> tuple[WireEvents, list[dict], list[dict]]:
    """A desk's batch of ``visits`` whole visits, every other one rated at the desk, and a
    tablet's ratings (one per unrated checkout, sent before it) for the rest to pair with."""
    desk, tablet = WireEvents(), WireEvents()
    desk_events, tablet_events = [], []
    for number in range(visits):
        visit_id = str(uuid.uuid4())
        start = first_minute + number * 3
        desk_events += [desk.checked_in(visit_id, at(start)), desk.called(visit_id, at(start + 1)),
                        desk.checked_out(visit_id, at(start + 2))]
        if number % 2:
            desk_events.append(desk.rating(5, at(start + 2), visit_id))
        else:
            tablet_events.append(tablet.rating(4, at(start + 2)))
        desk_events.append(desk.heartbeat(at(start + 2), backlog=number))
    return desk, desk_events, tablet_events


def test_a_batch_waits_for_as_many_answers_whatever_its_size(postgres_url, tmp_path,
                                                             monkeypatch):
    store = CentralStore(tmp_path / "store", database_url=postgres_url)
    try:
        with store.write() as db:
            desk, tablet = add_device(db, "S", "Desk")[0], add_device(db, "S", "Tablet")[0]
        waits = _count_waits(monkeypatch)
        counted = []
        for visits, first_minute in ((4, 0), (40, 100)):
            _, desk_events, tablet_events = _desk_batch(visits, first_minute)
            ingest_batch(store, tablet, tablet_events, RECEIVED)
            waits[0] = 0
            results = ingest_batch(store, desk, desk_events, RECEIVED)
            assert {result["status"] for result in results} == {"stored"}
            counted.append(waits[0])
        paired = store.query("SELECT COUNT(*) AS n FROM ratings WHERE link = 'paired'")[0]["n"]
        direct = store.query("SELECT COUNT(*) AS n FROM ratings WHERE link = 'direct'")[0]["n"]
    finally:
        store.close()
    assert (paired, direct) == (22, 22)  # the batches did project every rating
    assert counted[1] == counted[0] <= MAX_WAITS_PER_BATCH, counted


def test_a_write_sent_ahead_that_fails_rejects_its_own_event_alone(central_store, monkeypatch):
    # The heartbeat whose backlog is 13 breaks a constraint through a write sent ahead
    # (pipelined on PostgreSQL: its failure surfaces only when a later statement collects the
    # answers); it must still be pinned on that one event, as it is on SQLite.
    real = ingest.project_heartbeat

    def breaking_for_backlog_13(db, device, event, received_at):
        if event.data["backlog"] == 13:
            execute_later(db, "UPDATE devices SET token_sha256 = (SELECT token_sha256 FROM "
                          "devices WHERE id <> ?) WHERE id = ?", [device.id, device.id])
        real(db, device, event, received_at)

    with central_store.write() as db:
        device = add_device(db, "S", "Desk")[0]
        add_device(db, "S", "Other desk")
    monkeypatch.setattr(ingest, "project_heartbeat", breaking_for_backlog_13)
    kiosk = WireEvents()
    visit_id = str(uuid.uuid4())
    sent = [kiosk.checked_in(visit_id, at(0)), kiosk.heartbeat(at(1), backlog=13),
            kiosk.heartbeat(at(2), backlog=1), kiosk.called(visit_id, at(3))]

    results = ingest_batch(central_store, device, sent, RECEIVED)

    assert [result["status"] for result in results] == ["stored", "rejected", "stored",
                                                         "stored"]
    assert results[1]["reason"] == UNSTORABLE
    stored = {row["id"] for row in central_store.query("SELECT id FROM events")}
    assert stored == {sent[0]["id"], sent[2]["id"], sent[3]["id"]}
    (row,) = central_store.query("SELECT backlog FROM devices WHERE id = ?", [device.id])
    assert row["backlog"] == 1
