"""Repair a store written before the plausible-time and visit rules (migration 4).

Before those rules an event stamped in year 9999 or 1970, a correction putting a visit's times
out of order, or a second rating for one visit was stored and counted, and some of them broke
the dashboard for good. This finds what today's ingest would refuse, moves those events to
``events_set_aside`` (kept, with the reason, for the audit trail; never replayed), rebuilds
the visits they touched, unlinks ratings that are not a visit's one response, and rebuilds the
device rows a future heartbeat froze. After it, every figure comes only from events that
today's ingest would have stored.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339
from kiosk.shared.wire import (
    MAX_AHEAD,
    PRODUCT_EPOCH,
    EventRejected,
    check_plausible,
    parse_wire_instant,
)
from sync.central.projections import (
    FUTURE_TOLERANCE,
    order_events,
    order_problem,
    project_visit,
    replay_visit,
    upsert_visit_sql,
)

EVENT_COLUMNS = ("device_id", "id", "device_seq", "type", "occurred_at", "received_at",
                 "visit_id", "data", "clock_suspect")
OUT_OF_ORDER = (
    "called_at < checked_in_at OR checked_out_at < called_at OR checked_out_at < checked_in_at"
)


def create_set_aside_table(db: Database) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS events_set_aside (device_id TEXT NOT NULL, id TEXT NOT NULL, "
        "device_seq INTEGER, type TEXT, occurred_at TEXT, received_at TEXT, visit_id TEXT, "
        "data TEXT, clock_suspect INTEGER, reason TEXT NOT NULL, set_aside_at TEXT NOT NULL, "
        "PRIMARY KEY (device_id, id))"
    )


def _set_aside(db: Database, key: tuple[str, str], reason: str, now_text: str) -> None:
    columns = ", ".join(EVENT_COLUMNS)
    db.execute(
        f"INSERT OR IGNORE INTO events_set_aside ({columns}, reason, set_aside_at) "
        f"SELECT {columns}, ?, ? FROM events WHERE device_id = ? AND id = ?",
        [reason, now_text, *key],
    )
    db.execute("DELETE FROM events WHERE device_id = ? AND id = ?", list(key))


def _implausible(text: object, name: str, now: datetime) -> str | None:
    try:
        check_plausible(parse_wire_instant(text), name, now)
    except (EventRejected, ValueError) as error:
        return str(error)
    return None


def _implausible_events(db: Database, now: datetime) -> list[tuple[tuple[str, str], str]]:
    """(device_id, id) and reason of each stored event with an instant outside the window."""
    low, high = to_rfc3339(PRODUCT_EPOCH), to_rfc3339(now + MAX_AHEAD)
    found = []
    for device_id, event_id, occurred_at in db.execute(
        "SELECT device_id, id, occurred_at FROM events WHERE occurred_at < ? OR occurred_at > ?",
        [low, high],
    ):
        found.append(((device_id, event_id), _implausible(occurred_at, "occurred_at", now)
                      or "occurred_at outside the plausible window"))
    for device_id, event_id, kind, data in db.execute(
        "SELECT device_id, id, type, data FROM events WHERE "
        "(type = 'visit.checked_in' AND json_extract(data, '$.appointment_at') IS NOT NULL) "
        "OR (type = 'visit.corrected' AND json_extract(data, '$.value') IS NOT NULL)"
    ):
        name = "appointment_at" if kind == "visit.checked_in" else "value"
        reason = _implausible(json.loads(data)[name], name, now)
        if reason:
            found.append(((device_id, event_id), reason))
    return found


def _visit_events(db: Database, visit_id: str) -> list[dict]:
    return list(db.query(
        "SELECT device_id, id, device_seq, type, occurred_at, data FROM events "
        "WHERE visit_id = ? AND type LIKE 'visit.%'",
        [visit_id],
    ))


def _rebuild_visit(db: Database, visit_id: str, now_text: str, upsert_sql: str) -> None:
    """Replay the visit's events in order, setting aside each that would put its times out
    of order (as ingest now refuses it), then write the visit's row again."""
    accepted: list[dict] = []
    for event in order_events(_visit_events(db, visit_id)):
        problem = order_problem(replay_visit(order_events([*accepted, event])), event)
        if problem is None:
            accepted.append(event)
        else:
            _set_aside(db, (event["device_id"], event["id"]),
                       f"{event['type']} put the visit's times out of order ({problem})", now_text)
    if accepted:
        project_visit(db, visit_id, now_text, upsert_sql=upsert_sql)
        return
    # Nothing of the visit is left: it never (plausibly) happened.
    db.execute("UPDATE ratings SET visit_id = NULL, link = NULL, wait_min = NULL "
               "WHERE visit_id = ?", [visit_id])
    db.execute("DELETE FROM visits WHERE id = ?", [visit_id])


def _one_response_per_visit(db: Database) -> None:
    """Keep each visit's earliest linked rating; unlink the others and those naming a visit
    the store does not know."""
    db.execute(
        "UPDATE ratings SET visit_id = NULL, link = NULL, wait_min = NULL WHERE visit_id IS NOT "
        "NULL AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.id = ratings.visit_id "
        "AND v.checked_in_at IS NOT NULL)"
    )
    db.execute(
        "UPDATE ratings SET visit_id = NULL, link = NULL, wait_min = NULL WHERE rowid IN ("
        "SELECT rowid FROM (SELECT rowid, ROW_NUMBER() OVER (PARTITION BY visit_id "
        "ORDER BY occurred_at, id) AS n FROM ratings WHERE visit_id IS NOT NULL) AS ranked "
        "WHERE n > 1)"
    )


def _rebuild_device_health(db: Database, now: datetime) -> None:
    """Device rows whose last heartbeat is outside the window take their newest plausible
    heartbeat again; the sequence counts are worked out from the events."""
    low, high = to_rfc3339(PRODUCT_EPOCH), to_rfc3339(now + MAX_AHEAD)
    poisoned = [row[0] for row in db.execute(
        "SELECT id FROM devices WHERE last_heartbeat_at < ? OR last_heartbeat_at > ?", [low, high]
    )]
    for device_id in poisoned:
        newest = db.execute(
            "SELECT occurred_at, received_at, data FROM events WHERE device_id = ? "
            "AND type = 'device.heartbeat' AND occurred_at <= ? ORDER BY occurred_at DESC "
            "LIMIT 1", [device_id, to_rfc3339(now + FUTURE_TOLERANCE)]
        ).fetchone()
        values = dict.fromkeys(("at", "backlog", "rejected", "version", "skew"))
        if newest:
            occurred_at, received_at, data = newest
            data = json.loads(data)
            values.update(
                at=occurred_at, backlog=data.get("backlog"),
                rejected=data.get("rejected"), version=data.get("version"),
                skew=round((parse_wire_instant(received_at)
                            - parse_wire_instant(occurred_at)).total_seconds(), 3),
            )
        db.execute(
            "UPDATE devices SET last_heartbeat_at = :at, backlog = :backlog, "
            "rejected = :rejected, version = :version, clock_skew_s = :skew "
            "WHERE id = :id", {**values, "id": device_id},
        )
    # Numbers below the oldest event kept or set aside count as stored: a purge may have
    # deleted them. Those set aside count as missing, as a rejected event's number does.
    db.execute(
        "UPDATE devices SET (seq_max, seq_stored, seq_reversals) = (SELECT MAX(device_seq), "
        "SUM(kept) + MIN(device_seq) - 1, 0 FROM (SELECT device_seq, 1 AS kept FROM events "
        "WHERE device_id = devices.id UNION ALL SELECT device_seq, 0 FROM events_set_aside "
        "WHERE device_id = devices.id) AS numbers)"
    )


def repair_store(db: Database, now: datetime) -> dict[str, int]:
    """Apply the rules above to everything stored (``now``: the store's clock); returns how
    many events were set aside and visits rebuilt."""
    now_text = to_rfc3339(now)
    create_set_aside_table(db)
    implausible = _implausible_events(db, now)
    touched: set[str] = set()
    for key, reason in implausible:
        row = db.execute("SELECT visit_id, type FROM events WHERE device_id = ? AND id = ?",
                         list(key)).fetchone()
        if row is None:
            continue  # listed twice (two instants out of the window)
        visit_id, kind = row
        _set_aside(db, key, reason, now_text)
        if kind.startswith("visit."):
            touched.add(visit_id)
        elif kind == "rating.submitted":
            db.execute("DELETE FROM ratings WHERE id = ?", [key[1]])
    low, high = to_rfc3339(PRODUCT_EPOCH), to_rfc3339(now + MAX_AHEAD)
    touched.update(row[0] for row in db.execute(
        f"SELECT id FROM visits WHERE {OUT_OF_ORDER} OR wait_min < 0 "
        "OR checked_in_at < ? OR checked_in_at > ?", [low, high]
    ))
    set_aside_before = db.execute("SELECT COUNT(*) FROM events_set_aside").fetchone()[0]
    # The columns the visits table has now (an older schema's, inside a migration): read once.
    upsert_sql = upsert_visit_sql(db)
    for visit_id in sorted(touched):
        _rebuild_visit(db, visit_id, now_text, upsert_sql)
    _one_response_per_visit(db)
    _rebuild_device_health(db, now)
    return {"set_aside": db.execute("SELECT COUNT(*) FROM events_set_aside").fetchone()[0],
            "set_aside_for_order": db.execute(
                "SELECT COUNT(*) FROM events_set_aside").fetchone()[0] - set_aside_before,
            "visits_rebuilt": len(touched)}
