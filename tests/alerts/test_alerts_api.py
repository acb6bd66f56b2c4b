"""GET /api/v1/alerts on a live central store, fed real wire-format batches over HTTP: the
rating rules run as the ratings arrive (the evaluator thread, woken by ingest)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests

from kiosk.shared.timeutil import to_rfc3339, utc_now
from tests.support.wire_events import WireEvents

WAIT_LIMIT_S = 5.0


def get_alerts(server, token: str, **params) -> requests.Response:
    return requests.get(server.url("/api/v1/alerts"), params=params,
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)


def wait_for_alerts(server, token: str, **params) -> list[dict]:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        alerts = get_alerts(server, token, **params).json()["alerts"]
        if alerts:
            return alerts
        time.sleep(0.05)
    raise AssertionError(f"no alert within {WAIT_LIMIT_S} s")


def test_ratings_sent_over_http_open_an_alert_that_the_api_answers(central_server):
    desk = central_server.add_device()
    token = central_server.add_reporting_token()
    kiosk = WireEvents()
    now = utc_now()
    events = [kiosk.rating(score, to_rfc3339(now - timedelta(seconds=30 - i)))
              for i, score in enumerate([1, 2, 1, 4])]
    events.append(kiosk.rating(1, to_rfc3339(now), misuse=True))

    answer = central_server.post_events(desk, events)

    assert answer.status_code == 200
    (alert,) = wait_for_alerts(central_server, token, site=desk.site, state="open")
    assert (alert["rule"], alert["site"], alert["subject"]) == ("negative_burst", desk.site, None)
    assert alert["figures"]["ratings"] == 4 and alert["figures"]["negative"] == 3
    everything = get_alerts(central_server, token).json()
    assert [a["id"] for a in everything["alerts"]] == [alert["id"]]
    assert get_alerts(central_server, token, state="closed").json()["alerts"] == []
    long_ago = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
    assert get_alerts(central_server, token, **long_ago).json()["alerts"] == []


@pytest.mark.parametrize(("params", "status", "detail"), [
    ({"state": "sleeping"}, 422, "Unknown state 'sleeping'; use one of open, notified, "
                                 "acknowledged, closed (or leave it out)."),
    ({"site": "Nowhere"}, 404, "There is no site named 'Nowhere'."),
    ({"from": "yesterday"}, 422, None),
    ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 422,
     "'from' must be before 'to'."),
    ({"colour": "red"}, 422, None),
])
def test_bad_queries_get_a_sentence(central_server, params, status, detail):
    token = central_server.add_reporting_token()

    answer = get_alerts(central_server, token, **params)

    assert answer.status_code == status
    if detail is not None:
        assert answer.json()["detail"] == detail
    else:
        assert isinstance(answer.json()["detail"], str) and answer.json()["detail"]


def test_only_a_reporting_token_reads_alerts(central_server):
    desk = central_server.add_device()

    assert get_alerts(central_server, "rep_wrong").status_code == 401
    refused = get_alerts(central_server, desk.token)
    assert refused.status_code == 403 and "reporting token" in refused.json()["detail"]
