"""A comment's characters, on both engines: what no keyboard types (a NUL, other control
characters) is dropped, never the rating it came with."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine

from tests.support.wire_events import WireEvents

# The server's clock, pinned a few minutes after the rating (the store refuses instants far
# from its own clock).
PINNED = datetime(2026, 11, 19, 10, 5, tzinfo=UTC)


def test_a_comment_with_control_characters_is_stored_without_them(central_server):
    with time_machine.travel(PINNED, tick=True):
        device = central_server.add_device("North")
        central_server.set_site("North", comments=True)
        event = WireEvents().event("rating.submitted", "2026-11-19T10:00:00Z", None, {
            "score": 4, "scale": 5, "comment": "Kind\x00 staff\x07\nthank you\ttoday"})
        results = central_server.post_events(device, [event]).json()["results"]
    assert results[0]["status"] == "stored"
    assert central_server.rows("SELECT comment FROM rating_comments") == [
        {"comment": "Kind staff\nthank you\ttoday"}]
    assert central_server.rows("SELECT score FROM ratings") == [{"score": 4}]
