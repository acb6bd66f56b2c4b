"""Store one device's batch of events: at most once each, in one transaction, answered per event.

The kiosk marks an event synced only after reading our answer, so the answer must describe
what is already committed: the whole batch (events and projections) commits before
``ingest_batch`` returns. The server splits the same work in two: ``prepare_batch`` (no
database) on the request's side, ``store_prepared`` in the group-commit writer, which answers
only once the transaction holding the batch has committed. A lost answer makes the kiosk send
the batch again; the ``(device_id, id)`` primary key turns the second copy into ``duplicate``.

Every check of a batch against the store reads the store as it was before that batch (as
storing it event by event, then projecting, always did), so they are asked once per batch.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from kiosk.shared.wire import Event, EventRejected, validate_event
from sync.central.auth import Device
from sync.central.bulk_writes import copy_rows, execute_later, flush, on_postgres
from sync.central.comments import site_takes_comments, split_comment, store_comment
from sync.central.projections import (
    FUTURE_TOLERANCE,
    insert_ratings,
    is_clock_suspect,
    order_events,
    order_problem,
    project_dont_know,
    project_heartbeat,
    project_rating,
    project_visit,
    record_sequence,
    replay_visit,
    upsert_visits,
)
from sync.central.storage import CentralStore

STORED = "stored"
DUPLICATE = "duplicate"
REJECTED = "rejected"
# SQLite integers are 64-bit signed; a kiosk would need 10^11 taps a second for a century.
MAX_DEVICE_SEQ = 2**63 - 1

logger = logging.getLogger(__name__)


def _echo_id(raw: Any) -> str | None:
    """The id as the kiosk sent it, so it can match our answer to its outbox row."""
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        return raw["id"]
    return None


# to_rfc3339's own shape, which every kiosk sends: such a text is stored as it came (parsing
# and formatting it again gives it back), and compares with others of its shape as time does.
CANONICAL_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
# The largest IN (...) list per query, well under SQLite's default limit of host parameters.
IN_CHUNK = 500
_encode_data = json.JSONEncoder(separators=(",", ":")).encode

EVENT_COLUMNS = ("device_id", "id", "device_seq", "type", "occurred_at", "received_at",
                 "visit_id", "data", "clock_suspect")
INSERT_EVENTS_HEAD = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})"


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start:start + IN_CHUNK]


def _column_where_in(db: Database, sql: str, first: list, values: list,
                     array_type: str = "text") -> list[tuple]:
    """Rows of ``sql`` (ending in ``IN ({})``) for every value, a chunk of values at a time;
    on PostgreSQL all at once, as one array of ``array_type`` (``= ANY``): a list of hundreds
    of placeholders is a long statement psycopg parses and quotes again at every call."""
    if on_postgres(db):
        sql = sql.replace("IN ({})", f"= ANY(?::{array_type}[])")
        return db.execute(sql, [*first, list(values)]).fetchall()
    rows: list[tuple] = []
    for chunk in _chunks(values):
        marks = ", ".join("?" * len(chunk))
        rows.extend(db.execute(sql.format(marks), [*first, *chunk]).fetchall())
    return rows


def _already_stored(db: Database, device: Device, ids: list[str]) -> set[str]:
    sql = "SELECT id FROM events WHERE device_id = ? AND id IN ({})"
    return {row[0] for row in _column_where_in(db, sql, [device.id], ids)}


def _visits_of_other_sites(db: Database, device: Device, visit_ids: list[str]) -> set[str]:
    """A visit belongs to the site whose device checked it in; until then to nobody (so a
    device cannot claim a visit id early and lock its real kiosk out)."""
    sql = "SELECT id, site FROM visits WHERE checked_in_at IS NOT NULL AND id IN ({})"
    return {
        visit_id for visit_id, site in _column_where_in(db, sql, [], visit_ids)
        if site is not None and site != device.site
    }


def _visits_with_events(db: Database, visit_ids: list[str]) -> set[str]:
    sql = "SELECT DISTINCT visit_id FROM events WHERE visit_id IN ({})"
    return {row[0] for row in _column_where_in(db, sql, [], visit_ids)}


def _visits_with_ratings(db: Database, visit_ids: list[str]) -> set[str]:
    sql = "SELECT DISTINCT visit_id FROM ratings WHERE visit_id IN ({})"
    return {row[0] for row in _column_where_in(db, sql, [], visit_ids)}


def _checked_in_waits(db: Database, visit_ids: list[str]) -> dict[str, tuple]:
    """Per checked-in visit among these, ``(wait_min,)``."""
    sql = "SELECT id, wait_min FROM visits WHERE checked_in_at IS NOT NULL AND id IN ({})"
    return {visit_id: (wait,) for visit_id, wait in _column_where_in(db, sql, [], visit_ids)}


def _seqs_stored(db: Database, device: Device, seqs: list[int]) -> dict[int, str]:
    """device_seq -> the id of this device's event stored with it."""
    sql = "SELECT device_seq, id FROM events WHERE device_id = ? AND device_seq IN ({})"
    return dict(_column_where_in(db, sql, [device.id], seqs, "bigint"))


def _stored_visit_events(db: Database, visit_ids: list[str]) -> dict[str, list[dict]]:
    """Per visit, its stored events as rows ``project_visit`` reads."""
    found: dict[str, list[dict]] = {visit_id: [] for visit_id in visit_ids}
    sql = ("SELECT visit_id, device_id, device_seq, type, occurred_at, data FROM events "
           "WHERE type LIKE 'visit.%' AND visit_id IN ({})")
    for visit_id, device_id, seq, kind, occurred_at, data in _column_where_in(
        db, sql, [], visit_ids
    ):
        found[visit_id].append({"device_id": device_id, "device_seq": seq, "type": kind,
                                "occurred_at": occurred_at, "data": data})
    return found


def _validated(raw: Any, device: Device, received_at: datetime) -> Event | str:
    """The event, or the reason it is rejected."""
    try:
        event = validate_event(raw, received_at)
    except EventRejected as error:
        return str(error)
    except Exception:
        # A validator bug must not fail the whole batch: the kiosk would resend it
        # forever and every event behind this one would be stuck.
        logger.exception("validating an event from device %s failed", device.id)
        return "the event could not be checked; it was set aside (server log has why)"
    if event.device_seq > MAX_DEVICE_SEQ:
        return f"device_seq {event.device_seq} is larger than {MAX_DEVICE_SEQ}"
    return event


class _Prepared:
    """One valid event with what storing it needs that does not depend on the store."""

    __slots__ = ("event", "echo_id", "occurred_at", "clock_suspect", "data_text")

    def __init__(self, event: Event, echo_id: str | None, occurred_at: str, clock_suspect: bool,
                 data_text: str):
        self.event = event
        self.echo_id = echo_id
        self.occurred_at = occurred_at
        self.clock_suspect = clock_suspect
        self.data_text = data_text


class PreparedBatch:
    """A batch checked against the wire format, before it meets the store (see
    :func:`prepare_batch`); :func:`store_prepared` writes it."""

    __slots__ = ("device", "received_at", "received_text", "entries")

    def __init__(self, device: Device, received_at: datetime, entries: list):
        self.device = device
        self.received_at = received_at
        self.received_text = to_rfc3339(received_at)
        # Per event sent, in order: a _Prepared, or the result of a rejected event.
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)


def prepare_batch(device: Device, raw_events: list[Any], received_at: datetime) -> PreparedBatch:
    """The part of ingest that needs no database: validation, timestamps, the JSON to store.

    The server runs it on the request's side so the single writer only writes.
    """
    suspect_after = to_rfc3339(received_at + FUTURE_TOLERANCE)
    entries: list = []
    for raw in raw_events:
        event = _validated(raw, device, received_at)
        if not isinstance(event, Event):
            entries.append({"id": _echo_id(raw), "status": REJECTED, "reason": event})
            continue
        occurred_text = event.occurred_at
        if CANONICAL_INSTANT.fullmatch(occurred_text):
            clock_suspect = occurred_text > suspect_after  # both millisecond-exact, same shape
        else:
            occurred = parse_rfc3339(occurred_text)
            occurred_text = to_rfc3339(occurred)
            clock_suspect = is_clock_suspect(occurred, received_at)
        stored_data = event.data
        if event.type == "rating.submitted" and "comment" in event.data:
            # The comment is redacted again and kept only in rating_comments (see
            # sync.central.comments), never in the stored event.
            stored_data, comment = split_comment(event.data)
            event = replace(event, data={**stored_data, "comment": comment})
        entries.append(_Prepared(event, _echo_id(raw), occurred_text, clock_suspect,
                                 _encode_data(stored_data)))
    return PreparedBatch(device, received_at, entries)


def ingest_batch(
    store: CentralStore, device: Device, raw_events: list[Any], received_at: datetime
) -> list[dict]:
    """Validate, store and project a batch in a transaction of its own; one result per event."""
    prepared = prepare_batch(device, raw_events, received_at)
    with store.write() as db:
        return store_prepared(db, prepared)


def store_prepared(db: Database, batch: PreparedBatch) -> list[dict]:
    """Store and project a prepared batch inside the caller's open transaction (which must
    commit before the results are sent); one result per event, in the order sent.

    Every rule an event can break is checked before it is written, so a batch normally goes
    in whole. Should projecting it fail all the same (a bug, a value SQLite cannot hold), the
    batch is rolled back to where it started and stored again one event at a time, each in a
    savepoint of its own: the event that fails is rejected alone and the others are stored.
    The kiosk would otherwise resend the batch forever, and everything behind it would wait.
    """
    conn = db.conn
    conn.execute("SAVEPOINT ingest_batch")
    try:
        results = _store_checked(db, batch)
    except Exception as error:
        if not conn.in_transaction or of_the_moment(error):
            raise  # the whole batch fails (507 for a full disk) and is sent again later
        conn.execute("ROLLBACK TO ingest_batch")
        conn.execute("RELEASE ingest_batch")
        logger.exception("a batch from device %s failed; storing it event by event",
                         batch.device.id)
        return _store_one_by_one(db, batch)
    conn.execute("RELEASE ingest_batch")
    return results


UNSTORABLE = ("the event could not be stored (the server log has why); it is not taken again, "
              "so do not resend it")


def of_the_moment(error: BaseException) -> bool:
    """An error of the moment (a full disk, an I/O error, a locked file, no memory): the
    batch must fail whole and be sent again, never be rejected for it. Only what would fail
    the same way every time (a value SQLite cannot hold, a constraint) is isolated."""
    if isinstance(error, MemoryError):
        return True
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, (sqlite3.IntegrityError, sqlite3.DataError)
    )


def _store_one_by_one(db: Database, batch: PreparedBatch) -> list[dict]:
    conn = db.conn
    results: list[dict] = []
    for entry in batch.entries:
        single = PreparedBatch(batch.device, batch.received_at, [entry])
        conn.execute("SAVEPOINT ingest_event")
        try:
            results += _store_checked(db, single)
        except Exception as error:
            if not conn.in_transaction or of_the_moment(error):
                raise
            conn.execute("ROLLBACK TO ingest_event")
            logger.exception("an event from device %s could not be stored", batch.device.id)
            echo = entry.echo_id if isinstance(entry, _Prepared) else entry.get("id")
            results.append({"id": echo, "status": REJECTED, "reason": UNSTORABLE})
        conn.execute("RELEASE ingest_event")
    return results


def _rejected(entry: _Prepared, reason: str) -> dict:
    return {"id": entry.echo_id, "status": REJECTED, "reason": reason}


def _store_checked(db: Database, batch: PreparedBatch) -> list[dict]:
    device = batch.device
    results: list[dict] = []
    valid = [entry for entry in batch.entries if isinstance(entry, _Prepared)]
    # What each event is checked against is the store as it was before this batch, read in
    # a few queries for the whole batch rather than one or two per event.
    stored_before = _already_stored(db, device, list({entry.event.id: None for entry in valid}))
    seqs_before = _seqs_stored(db, device, list({entry.event.device_seq: None for entry in valid}))
    named_visits = list({
        entry.event.visit_id: None for entry in valid if entry.event.visit_id is not None
    })
    foreign_visits = _visits_of_other_sites(db, device, named_visits)
    visit_ids = list({
        entry.event.visit_id: None for entry in valid if entry.event.type.startswith("visit.")
    })
    # A visit none of whose events was stored before this batch has exactly the events this
    # batch stores (all of this device's): replay those without reading them back.
    visits_seen_before = _visits_with_events(db, visit_ids) if visit_ids else set()
    stored_events = _stored_visit_events(db, list(visits_seen_before)) if visits_seen_before \
        else {}
    received_text = batch.received_text
    rows: list[tuple] = []
    stored_ids: set[str] = set()
    seqs_taken: dict[int, str] = {}
    reused = 0
    # Per visit, the batch's accepted events as rows ``project_visit`` reads (ordered set of
    # visits: each visit replayed once per batch).
    visits_touched: dict[str, list[dict]] = {}
    ratings: list[tuple[Event, str]] = []
    heartbeats: list[Event] = []
    for entry in batch.entries:
        if not isinstance(entry, _Prepared):
            results.append(entry)
            continue
        event = entry.event
        if event.visit_id is not None and event.visit_id in foreign_visits:
            results.append(_rejected(entry, (
                f"visit {event.visit_id} belongs to another site; a device writes only "
                "its own site's visits")))
            continue
        if event.id in stored_before or event.id in stored_ids:
            results.append({"id": entry.echo_id, "status": DUPLICATE})
            continue
        # A number this device already used under another id is stored all the same and
        # counted (``seq_reused``): a kiosk whose damaged database was moved aside starts its
        # sequence again with its token, and refusing it would lose every later tap.
        if seqs_before.get(event.device_seq) or seqs_taken.get(event.device_seq):
            reused += 1
        occurred_text = entry.occurred_at
        visit_row = None
        if event.type.startswith("visit."):
            visit_row = {"device_id": device.id, "device_seq": event.device_seq,
                         "type": event.type, "occurred_at": occurred_text, "data": event.data}
            accepted = visits_touched.get(event.visit_id, [])
            problem = order_problem(
                replay_visit(order_events([*stored_events.get(event.visit_id, ()),
                                           *accepted, visit_row])),
                visit_row,
            )
            if problem is not None:
                results.append(_rejected(entry, (
                    f"{event.type} would put the visit's times out of order ({problem}): times "
                    "must run check-in, then called in, then check-out")))
                continue
        stored_ids.add(event.id)
        seqs_taken[event.device_seq] = event.id
        rows.append((device.id, event.id, event.device_seq, event.type, occurred_text,
                     received_text, event.visit_id, entry.data_text, int(entry.clock_suspect)))
        results.append({"id": entry.echo_id, "status": STORED})
        if visit_row is not None:
            visits_touched.setdefault(event.visit_id, []).append(visit_row)
        elif event.type == "rating.submitted":
            ratings.append((event, occurred_text))
        elif event.type == "device.heartbeat":
            heartbeats.append(event)
    # Every id and sequence number was checked above (against the store and within the
    # batch), so a plain INSERT cannot meet a conflict; if it ever did, the batch is stored
    # again event by event (see store_prepared).
    copy_rows(db, "events", EVENT_COLUMNS, rows)
    device_site = None
    if len(visits_seen_before) < len(visits_touched):
        device_site = db.execute("SELECT site FROM devices WHERE id = ?", [device.id]).fetchone()
    # Ratings naming these visits, asked once: projecting one visit changes only which ratings
    # name that visit, so the answer holds through the loop below.
    rated = _visits_with_ratings(db, list(visits_touched)) if visits_touched else set()
    visit_rows: dict[str, dict] = {}
    pending_visits: list[dict] = []
    rated_next = {event.visit_id for event, _ in ratings if event.visit_id is not None}
    # Visits first, so a rating in the same batch as its checkout finds the visit.
    for visit_id, events in visits_touched.items():
        if visit_id in visits_seen_before:
            visit_rows[visit_id] = project_visit(
                db, visit_id, received_text, has_ratings=visit_id in rated,
                pending_upserts=pending_visits,
                all_events=[*stored_events[visit_id], *events],
                rated_next=visit_id in rated_next,
            )
        else:
            visit_rows[visit_id] = project_visit(
                db, visit_id, received_text, only_events=events, device_site=device_site,
                has_ratings=visit_id in rated, pending_upserts=pending_visits,
                rated_next=visit_id in rated_next,
            )
    upsert_visits(db, pending_visits)
    # What each rating naming a visit is checked against, read once for all of them (after
    # the visits above, which may have paired waiting ratings): see project_rating.
    direct = list({event.visit_id: None for event, _ in ratings
                   if event.visit_id and not event.data.get("dont_know")})
    rated_visits = _visits_with_ratings(db, direct) if direct else set()
    unseen = [visit_id for visit_id in direct if visit_id not in visit_rows]
    checked_in_waits = _checked_in_waits(db, unseen) if unseen else {}
    pending_ratings: list[tuple] = []
    linked_here: set[str] = set()
    takes_comments: bool | None = None  # the site's setting, read once, when first needed
    for event, occurred_text in ratings:
        if event.data.get("dont_know"):
            project_dont_know(db, device, event, occurred_text)
        else:
            project_rating(db, device, event, occurred_text, visit_rows, pending_ratings,
                           linked_here, rated_visits, checked_in_waits)
        if event.data.get("comment"):
            if takes_comments is None:
                takes_comments = site_takes_comments(db, device.site)
            if not takes_comments:
                continue  # the site never turned the comment box on: the comment is dropped
            store_comment(db, event.id, device.id, device.site, occurred_text,
                          event.data["comment"])
    insert_ratings(db, pending_ratings)
    for event in heartbeats:
        project_heartbeat(db, device, event, batch.received_at)
    record_sequence(db, device, [row[2] for row in rows], reused)
    execute_later(db, "UPDATE devices SET last_seen_at = ? WHERE id = ?",
                  [received_text, device.id])
    # The batch's pipelined writes fail here, inside store_prepared's savepoint, if at all.
    flush(db)
    return results
