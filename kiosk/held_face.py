"""A face whose follow-up is still open, held on disk until its rating is written complete.

The face tap is one durable commit (a row in ``meta``); the rating event is written once, with
its tags, when the follow-up ends. A kiosk that dies meanwhile records the held face, without
tags, when it next opens the store. So no face pressed is lost, and the event is still written
once, complete, as the wire format has it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kiosk.local_db import StoreFull
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339

if TYPE_CHECKING:
    from kiosk.store import RecordedEvent, Store

# The meta key of the face held while its follow-up is open.
HELD_RATING = "held_rating"


class HeldFace:
    """The one face a store may hold (a new hold replaces a spent one)."""

    def __init__(self, store: Store):
        self.store = store

    def hold(self, data: dict[str, Any], visit_id: str | None, occurred_at: datetime) -> str:
        """Keep a chosen face on disk until ``record(..., event_id=<returned id>)`` writes it
        complete. One row, replaced by the next hold; a hold whose event exists is spent, so
        the send tap's transaction stays the plain event write. A face still held and not
        recorded (the disk was full when it should have been) is recorded first: StoreFull
        if it still cannot be, and then the earlier face stays held."""
        self._record_unsent()
        event_id = str(uuid.uuid4())
        held = {"id": event_id, "data": data, "visit_id": visit_id,
                "occurred_at": to_rfc3339(occurred_at)}
        self.store.set_meta({HELD_RATING: json.dumps(held)})
        return event_id

    def recover(self) -> RecordedEvent | None:
        """At open: the face a dead kiosk held is recorded now, as it was held (no tags)."""
        if self.store.get_meta(HELD_RATING) is None:
            return None
        try:
            event = self._record_unsent()
        except StoreFull:
            return None  # kept held: recorded at a later start, or before the next hold
        self.store.set_meta({HELD_RATING: None})
        return event

    def drop_if_spent(self) -> None:
        """A hold whose event exists is spent; dropped before a purge could delete that event
        and make the hold look unsent (which would record the face a second time)."""
        held = self._held()
        if held is not None and self.store.has_event(held["id"]):
            self.store.set_meta({HELD_RATING: None})

    def _held(self) -> dict[str, Any] | None:
        try:
            held = json.loads(self.store.get_meta(HELD_RATING) or "null")
            return held if isinstance(held, dict) and isinstance(held.get("id"), str) else None
        except ValueError:
            return None

    def _record_unsent(self) -> RecordedEvent | None:
        held = self._held()
        if held is None or self.store.has_event(held["id"]):
            return None  # nothing held, or held and since sent
        try:
            occurred_at = parse_rfc3339(held["occurred_at"])
            data, visit_id = held["data"], held["visit_id"]
        except (ValueError, KeyError, TypeError):
            return None  # not what hold() writes (edited by hand?): nothing to recover
        return self.store.record(
            "rating.submitted", data, visit_id=visit_id, occurred_at=occurred_at,
            event_id=held["id"],
        )
