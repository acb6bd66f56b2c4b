"""A NUL character (0x00) in a query value gets the same clear answer on both engines, never
a 500: SQLite would compare it and find nothing, PostgreSQL refuses it outright ("text fields
cannot contain NUL"), so the store refuses it itself with a 422. Found by schemathesis:
``/api/v1/audit?action=...%00...`` was a 500 on PostgreSQL. (A NUL in a rating's comment, the
one free text an event carries, is dropped with the other control characters:
``test_comment_characters.py``.)
"""

from __future__ import annotations

import requests


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
