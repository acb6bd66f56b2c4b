"""GET /api/v1/metrics and /api/v1/config against a live server, checked by hand.

The morning (minutes after 09:00 UTC on a fixed day; wait = called - checked in):

    visit  in   called  out   wait  rating
    V0     -30  -10     -     20    -        checked in before the range: left out
    V1     0    5       20    5     5 (direct)
    V2     0    10      25    10    4 (direct)  exactly 10 min: bucket 10-20
    V3     10   25      40    15    2 (direct)  exactly the target: within it
    V4     10   45      60    35    1 (direct)
    V5     30   -       -     -     -        cancelled (no-show): not a visit
    V6     40   -       -     -     -        check-in undone: never happened
    V7     50   70      -     20    -        still in the chair
    V9     20   28      35    8     1 flagged misuse: left out of everything
    ratings tablet: 5 at minute 90, no checkout within 5 min before it: unlinked

visits 6 (V1 V2 V3 V4 V7 V9), checked out 5; waits 5 8 10 15 20 35:
median (10+15)/2 = 12.5, p90 at rank 4.5 = 20 + 0.5 * 15 = 27.5, within 15 min 4/6 = 66.67 %.
ratings 5 4 2 1 5: Happy Index (100+75+25+0+100)/5 = 60, positive 3/5 = 60 %, negative
2/5 = 40 %, response rate 4 linked / 5 checked out = 80 %.
buckets: 0-10 {5} -> 100 %, HI 100; 10-20 {4, 2} -> 50 %, HI 50; 20-30 none; 30+ {1} -> 0, 0.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.shared.wire import DEFAULT_TAGS, PROTOCOL_VERSION
from sync.central.migrations import SCHEMA_VERSION
from tests.support.wire_events import WireEvents, at

RANGE = {"from": at(0), "to": at(180)}


@pytest.fixture
def morning(central_server):
    """The morning above, sent by a desk kiosk and a ratings tablet; returns the server."""
    desk = central_server.add_device(name="Desk 1")
    tablet = central_server.add_device(name="Ratings tablet")
    kiosk = WireEvents()
    events = []
    events += kiosk.visit(checked_in=-30, called=-10)[1]
    v1, v1_events = kiosk.visit(checked_in=0, called=5, checked_out=20, ticket="A-001")
    v2, v2_events = kiosk.visit(checked_in=0, called=10, checked_out=25, ticket="A-002")
    v3, v3_events = kiosk.visit(checked_in=10, called=25, checked_out=40, ticket="A-003")
    v4, v4_events = kiosk.visit(checked_in=10, called=45, checked_out=60, ticket="A-004")
    v5, v5_events = kiosk.visit(checked_in=30, ticket="A-005")
    v6, v6_events = kiosk.visit(checked_in=40, ticket="A-006")
    v9, v9_events = kiosk.visit(checked_in=20, called=28, checked_out=35, ticket="A-009")
    events += v1_events + v2_events + v3_events + v4_events + v9_events
    events += kiosk.visit(checked_in=50, called=70, ticket="A-007")[1]
    events += v5_events + [kiosk.cancelled(v5, at(45), "no_show")]
    events += v6_events + [kiosk.undone(v6, at(41), "visit.checked_in")]
    events += [
        kiosk.rating(5, at(21), v1),
        kiosk.rating(4, at(26), v2, tags=("billing",)),
        kiosk.rating(2, at(41), v3, tags=("waiting_time",)),
        kiosk.rating(1, at(61), v4, tags=("waiting_time", "friendliness")),
        kiosk.rating(1, at(36), v9, misuse=True),
    ]
    assert {r["status"] for r in central_server.post_events(desk, events).json()["results"]} == {
        "stored"
    }
    tablet_rating = WireEvents().rating(5, at(90))
    central_server.post_events(tablet, [tablet_rating])
    return central_server


def test_metrics_match_the_hand_computed_figures(morning):
    token = morning.add_reporting_token()

    response = morning.metrics(token, site="Test Clinic", **RANGE)

    assert response.status_code == 200
    figures = response.json()
    assert figures["visits"] == 6
    assert figures["checked_out"] == 5
    assert figures["wait_median_min"] == 12.5
    assert figures["wait_p90_min"] == 27.5
    assert figures["pct_within_target"] == 66.67
    assert figures["ratings"] == 5
    assert figures["happy_index"] == 60.0
    assert figures["pct_positive"] == 60.0
    assert figures["pct_negative"] == 40.0
    assert figures["response_rate"] == 80.0
    assert figures["longest_current_wait_min"] is None  # nobody waiting to be called
    assert figures["by_wait_bucket"] == [
        {"bucket": "0-10", "ratings": 1, "pct_positive": 100.0, "happy_index": 100.0},
        {"bucket": "10-20", "ratings": 2, "pct_positive": 50.0, "happy_index": 50.0},
        {"bucket": "20-30", "ratings": 0, "pct_positive": None, "happy_index": None},
        {"bucket": "30+", "ratings": 1, "pct_positive": 0.0, "happy_index": 0.0},
    ]
    assert (figures["from"], figures["to"], figures["target_wait_min"]) == (
        at(0),
        at(180),
        15.0,
    )


def test_the_site_target_changes_pct_within_target(morning):
    morning.set_site(target_wait_min=10)
    token = morning.add_reporting_token()

    figures = morning.metrics(token, site="Test Clinic", **RANGE).json()

    assert figures["pct_within_target"] == 50.0  # 5, 8, 10 of six waits
    assert figures["target_wait_min"] == 10.0


def test_metrics_per_device(morning):
    token = morning.add_reporting_token()
    (tablet,) = morning.rows("SELECT id FROM devices WHERE name = 'Ratings tablet'")

    figures = morning.metrics(token, device=tablet["id"], **RANGE).json()

    assert (figures["visits"], figures["ratings"], figures["happy_index"]) == (0, 1, 100.0)
    assert figures["response_rate"] is None  # no checkouts: no rate, not 0


def test_an_empty_range_gives_nulls_with_n_zero(morning):
    token = morning.add_reporting_token()

    figures = morning.metrics(token, **{"from": at(-600), "to": at(-300)}).json()

    assert figures["visits"] == 0 and figures["ratings"] == 0
    assert figures["happy_index"] is None and figures["wait_median_min"] is None
    assert [bucket["ratings"] for bucket in figures["by_wait_bucket"]] == [0, 0, 0, 0]


def test_the_default_range_is_the_last_24_hours_with_the_longest_current_wait(central_server):
    device = central_server.add_device()
    token = central_server.add_reporting_token()
    kiosk = WireEvents()
    now = utc_now()
    waiting = kiosk.checked_in(
        "0b0f3c9e-6a52-4a53-9f55-9a3f1f6f6a01", to_rfc3339(now - timedelta(minutes=7))
    )
    old = kiosk.checked_in(
        "0b0f3c9e-6a52-4a53-9f55-9a3f1f6f6a02", to_rfc3339(now - timedelta(hours=30))
    )
    central_server.post_events(device, [waiting, old])

    figures = central_server.metrics(token).json()

    assert figures["visits"] == 1
    assert 7.0 <= figures["longest_current_wait_min"] < 7.5


@pytest.mark.parametrize(
    ("params", "phrase"),
    [
        ({"from": "yesterday"}, "'from' must be an RFC 3339 instant"),
        ({"to": "2026-03-02T09:00:00"}, "'to' must be an RFC 3339 instant"),
        ({"from": at(60), "to": at(0)}, "'from' must be before 'to'"),
    ],
)
def test_a_bad_range_gets_422_with_a_sentence(central_server, params, phrase):
    token = central_server.add_reporting_token()

    response = central_server.metrics(token, **params)

    assert response.status_code == 422
    assert phrase in response.json()["detail"]


def test_an_unknown_site_or_device_gets_404(central_server):
    token = central_server.add_reporting_token()

    assert central_server.metrics(token, site="Nowhere").status_code == 404
    assert "no device" in central_server.metrics(token, device="nope").json()["detail"]


def test_config_tells_the_kiosk_its_site_settings(central_server):
    device = central_server.add_device(site="Main Street")
    central_server.set_site("Main Street", timezone="Europe/London", target_wait_min=20)

    response = requests.get(
        central_server.url("/api/v1/config"), headers=device.headers, timeout=10
    )

    assert response.status_code == 200
    config = response.json()
    assert config["site"] == "Main Street"
    assert config["timezone"] == "Europe/London"
    assert config["target_wait_min"] == 20.0
    assert config["rating_scale"] == 5
    assert config["followup_tags"] == list(DEFAULT_TAGS)
    assert config["idle_timeout_s"] == 20
    assert config["languages"] == ["en"]
    assert config["protocol_version"] == PROTOCOL_VERSION
    assert config["device_id"] == device.device_id


def test_healthz_and_the_openapi_spec(central_server):
    health = requests.get(central_server.url("/healthz"), timeout=10)
    spec = requests.get(central_server.url("/openapi.json"), timeout=10).json()

    assert health.json() == {"status": "ok", "schema_version": SCHEMA_VERSION}
    assert {"/api/v1/events", "/api/v1/config", "/api/v1/metrics", "/healthz"} <= set(spec["paths"])
    schemes = spec["components"]["securitySchemes"]
    assert {"DeviceToken", "ReportingToken"} <= set(schemes)
    body = spec["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["events"]["maxItems"] == 1000
    metrics_fields = spec["components"]["schemas"]["Metrics"]["properties"]
    assert {"happy_index", "by_wait_bucket", "from", "response_rate"} <= set(metrics_fields)
