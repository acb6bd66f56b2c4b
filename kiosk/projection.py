"""How each event changes the kiosk's ``visits`` and ``ratings`` tables.

Applied in the same transaction as the event's insert, so the tables the screens read never
disagree with the outbox. ``extra`` carries projection-only columns derived on the kiosk (the
visit's local day and ticket number) that are not part of the wire format.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.store import RecordedEvent


def project(conn: sqlite3.Connection, event: RecordedEvent, extra: dict[str, Any]) -> None:
    kind, at, visit_id, data = event.type, event.occurred_at, event.visit_id, event.data
    if kind == "visit.checked_in":
        conn.execute(
            "INSERT INTO visits(id, ticket, ticket_no, day, appointment_at, checked_in_at, "
            "status, last_change) VALUES (?, ?, ?, ?, ?, ?, 'waiting', ?)",
            [visit_id, data["ticket"], extra.get("ticket_no"), extra.get("day"),
             data.get("appointment_at"), at, kind],
        )
    elif kind == "visit.called":
        _update_visit(conn, visit_id, called_at=at, status="in_chair", last_change=kind)
    elif kind == "visit.checked_out":
        _update_visit(conn, visit_id, checked_out_at=at, status="done", last_change=kind)
    elif kind == "visit.cancelled":
        _update_visit(
            conn, visit_id, cancelled_at=at, cancel_reason=data["reason"],
            status=data["reason"], last_change=kind,
        )
    elif kind == "visit.corrected":
        _update_visit(conn, visit_id, **{data["field"]: data["value"]})
    elif kind == "visit.undone":
        _project_undo(conn, visit_id, data["action"])
    elif kind == "rating.submitted" and not data.get("dont_know"):
        # An FFT "Don't know" has no score: it stays in the outbox (the central store counts
        # it in the FFT return) and out of ``ratings``, which every face figure reads.
        conn.execute(
            "INSERT INTO ratings(id, visit_id, score, scale, tags, misuse, occurred_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [event.id, visit_id, data["score"], data["scale"], json.dumps(data.get("tags", [])),
             int(data.get("misuse", False)), at],
        )


def _project_undo(conn: sqlite3.Connection, visit_id: str, action: str) -> None:
    previous = "visit.undone"
    if action == "visit.checked_in":
        _update_visit(conn, visit_id, status="voided", last_change=previous)
    elif action == "visit.called":
        _update_visit(conn, visit_id, called_at=None, status="waiting", last_change=previous)
    elif action == "visit.checked_out":
        _update_visit(conn, visit_id, checked_out_at=None, status="in_chair", last_change=previous)
    elif action == "visit.cancelled":
        row = conn.execute("SELECT called_at FROM visits WHERE id = ?", [visit_id]).fetchone()
        status = "in_chair" if row and row[0] else "waiting"
        _update_visit(
            conn, visit_id, cancelled_at=None, cancel_reason=None, status=status,
            last_change=previous,
        )


def _update_visit(conn: sqlite3.Connection, visit_id: str | None, **columns: Any) -> None:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(
        f"UPDATE visits SET {assignments} WHERE id = ?", [*columns.values(), visit_id]
    )
