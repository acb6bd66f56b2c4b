"""Store one device's batch of events: at most once each, in one transaction, answered per event.

The kiosk marks an event synced only after reading our answer, so the answer must describe
what is already committed: the whole batch (events and projections) commits before
``ingest_batch`` returns. A lost answer makes the kiosk send the batch again; the
``(device_id, id)`` primary key turns the second copy into ``duplicate``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.timeutil import parse_rfc3339, to_rfc3339
from sync.central.auth import Device
from sync.central.projections import (
    is_clock_suspect,
    normalize_instant,
    project_heartbeat,
    project_rating,
    project_visit,
)
from sync.central.storage import Store
from sync.protocol import Event, EventRejected, validate_event

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


def _insert_event(db: Database, device: Device, event: Event, received_at: datetime) -> bool:
    """True if stored now, False if this device already sent an event with this id."""
    occurred = parse_rfc3339(event.occurred_at)
    cursor = db.execute(
        "INSERT OR IGNORE INTO events (device_id, id, device_seq, type, occurred_at, "
        "received_at, visit_id, data, clock_suspect) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            device.id,
            event.id,
            event.device_seq,
            event.type,
            normalize_instant(event.occurred_at),
            to_rfc3339(received_at),
            event.visit_id,
            json.dumps(event.data, separators=(",", ":")),
            int(is_clock_suspect(occurred, received_at)),
        ],
    )
    return cursor.rowcount == 1


def _visit_of_another_site(db: Database, device: Device, visit_id: str) -> bool:
    """A visit belongs to the site whose device checked it in; until then to nobody (so a
    device cannot claim a visit id early and lock its real kiosk out)."""
    row = db.execute(
        "SELECT site FROM visits WHERE id = ? AND checked_in_at IS NOT NULL", [visit_id]
    ).fetchone()
    return row is not None and row[0] is not None and row[0] != device.site


def ingest_batch(
    store: Store, device: Device, raw_events: list[Any], received_at: datetime
) -> list[dict]:
    """Validate, store and project a batch; one result per event, in the order sent."""
    results: list[dict] = []
    visits_touched: dict[str, None] = {}  # ordered set: each visit replayed once per batch
    ratings: list[Event] = []
    heartbeats: list[Event] = []
    with store.write() as db:
        for raw in raw_events:
            try:
                event = validate_event(raw)
            except EventRejected as error:
                results.append({"id": _echo_id(raw), "status": REJECTED, "reason": str(error)})
                continue
            except Exception:
                # A validator bug must not fail the whole batch: the kiosk would resend it
                # forever and every event behind this one would be stuck.
                logger.exception("validating an event from device %s failed", device.id)
                reason = "the event could not be checked; it was set aside (server log has why)"
                results.append({"id": _echo_id(raw), "status": REJECTED, "reason": reason})
                continue
            if event.device_seq > MAX_DEVICE_SEQ:
                reason = f"device_seq {event.device_seq} is larger than {MAX_DEVICE_SEQ}"
                results.append({"id": _echo_id(raw), "status": REJECTED, "reason": reason})
                continue
            if event.visit_id is not None and _visit_of_another_site(db, device, event.visit_id):
                reason = (f"visit {event.visit_id} belongs to another site; a device writes only "
                          "its own site's visits")
                results.append({"id": _echo_id(raw), "status": REJECTED, "reason": reason})
                continue
            if not _insert_event(db, device, event, received_at):
                results.append({"id": _echo_id(raw), "status": DUPLICATE})
                continue
            results.append({"id": _echo_id(raw), "status": STORED})
            if event.type.startswith("visit."):
                visits_touched[event.visit_id] = None
            elif event.type == "rating.submitted":
                ratings.append(event)
            elif event.type == "device.heartbeat":
                heartbeats.append(event)
        now_text = to_rfc3339(received_at)
        # Visits first, so a rating in the same batch as its checkout finds the visit.
        for visit_id in visits_touched:
            project_visit(db, visit_id, now_text)
        for event in ratings:
            project_rating(db, device, event)
        for event in heartbeats:
            project_heartbeat(db, device, event, received_at)
        db.execute("UPDATE devices SET last_seen_at = ? WHERE id = ?", [now_text, device.id])
    return results
