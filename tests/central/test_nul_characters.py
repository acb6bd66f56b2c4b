"""A NUL character (0x00) gets the same clear answer on both engines, never a 500.

SQLite stores a NUL in text and PostgreSQL refuses it outright ("text fields cannot contain
NUL"), so the store refuses it itself before either sees it: in a rating's comment (the one
free text an event carries) the event is rejected with a reason, in a query value the request
is a 422. Found by schemathesis: ``/api/v1/audit?action=...%00...`` was a 500 on PostgreSQL.
"""

from __future__ import annotations

import requests

from tests.support.wire_events import WireEvents, at


def test_a_comment_with_a_nul_is_rejected_alone_with_a_reason(central_server):
    device = central_server.add_device()
    central_server.set_site(device.site, comments=True)
    events = WireEvents()
    with_nul = events.rating(4, at(0))
    with_nul["data"]["comment"] = "fine\x00thanks"
    plain = events.rating(5, at(1))
    plain["data"]["comment"] = "fine, thanks"

    answer = central_server.post_events(device, [with_nul, plain]).json()["results"]

    assert [r["status"] for r in answer] == ["rejected", "stored"]
    assert answer[0]["reason"] == "comment must not contain a NUL character (0x00)"


def test_a_query_value_with_a_nul_is_a_422_with_a_sentence(central_server):
    reporting = central_server.add_reporting_token()
    with central_server.embedded.store.write() as db:
        from sync.central import auth

        admin = auth.add_reporting_token(db, "auditor", admin=True)[1]
    for path, token, params in (
        ("/api/v1/audit", admin, {"action": "user.add\x00"}),
        ("/api/v1/metrics", reporting, {"site": "Test\x00Clinic"}),
        ("/api/v1/export/visits.csv", reporting, {"site": "\x00"}),
    ):
        response = requests.get(central_server.url(path), params=params, timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 422, (path, response.text)
        name = next(iter(params))
        assert response.json()["detail"] == (
            f"Query parameter {name!r} contains a NUL character (0x00); remove it."), path
