"""POST /api/v1/events against a live server: stored once, answered per event, limits enforced."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from kiosk.shared.wire import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from tests.support.wire_events import WireEvents, at


def statuses(response: requests.Response) -> list[str]:
    return [result["status"] for result in response.json()["results"]]


def test_a_batch_is_stored_and_answered_per_event_in_order(central_server):
    device = central_server.add_device()
    kiosk = WireEvents()
    visit_id, events = kiosk.visit(checked_in=0, called=6, checked_out=20)
    events.append(kiosk.rating(5, at(21), visit_id))

    response = central_server.post_events(device, events)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["id"] for result in results] == [event["id"] for event in events]
    assert statuses(response) == ["stored"] * 4
    stored = central_server.rows(
        "SELECT device_id, device_seq, type FROM events ORDER BY device_seq"
    )
    assert [row["type"] for row in stored] == [event["type"] for event in events]
    assert {row["device_id"] for row in stored} == {device.device_id}
    visit = central_server.rows("SELECT * FROM visits")[0]
    assert (visit["status"], visit["ticket"], visit["wait_min"]) == ("done", "A-017", 6.0)
    assert central_server.rows("SELECT visit_id, link FROM ratings") == [
        {"visit_id": visit_id, "link": "direct"}
    ]


def test_the_same_batch_sent_twice_is_stored_once(central_server):
    device = central_server.add_device()
    _, events = WireEvents().visit(checked_in=0, called=5)

    first = central_server.post_events(device, events)
    second = central_server.post_events(device, events)

    assert statuses(first) == ["stored", "stored"]
    assert statuses(second) == ["duplicate", "duplicate"]
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 2}]
    assert central_server.rows("SELECT COUNT(*) AS n FROM visits") == [{"n": 1}]


def test_an_event_repeated_inside_one_batch_is_a_duplicate(central_server):
    device = central_server.add_device()
    event = WireEvents().heartbeat(at(0))

    response = central_server.post_events(device, [event, event])

    assert statuses(response) == ["stored", "duplicate"]


def test_two_devices_may_use_the_same_event_id(central_server):
    desk, tablet = central_server.add_device(name="Desk 1"), central_server.add_device(name="Tab")
    event = WireEvents().heartbeat(at(0))

    assert statuses(central_server.post_events(desk, [event])) == ["stored"]
    assert statuses(central_server.post_events(tablet, [event])) == ["stored"]


def test_invalid_events_are_rejected_with_a_reason_without_blocking_the_others(central_server):
    device = central_server.add_device()
    kiosk = WireEvents()
    good_before = kiosk.heartbeat(at(0))
    unknown_type = kiosk.event("visit.teleported", at(1), str(uuid.uuid4()), {})
    unknown_field = kiosk.heartbeat(at(2))
    unknown_field["data"]["patient_name"] = "x"
    not_an_object = "hello"
    good_after = kiosk.heartbeat(at(3))

    response = central_server.post_events(
        device, [good_before, unknown_type, unknown_field, not_an_object, good_after]
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert statuses(response) == ["stored", "rejected", "rejected", "rejected", "stored"]
    assert "unknown event type 'visit.teleported'" in results[1]["reason"]
    assert "patient_name" in results[2]["reason"]
    assert results[3]["id"] is None and "JSON object" in results[3]["reason"]
    assert results[0].get("reason") is None
    stored_ids = {row["id"] for row in central_server.rows("SELECT id FROM events")}
    assert stored_ids == {good_before["id"], good_after["id"]}


def test_an_event_with_a_type_that_is_not_a_string_is_rejected_not_a_500(central_server):
    # Found by the OpenAPI fuzz test: {"type": {}} used to crash the whole batch.
    device = central_server.add_device()
    event = WireEvents().heartbeat(at(0))
    event["type"] = {"nested": "object"}

    response = central_server.post_events(device, [event])

    assert response.status_code == 200
    assert statuses(response) == ["rejected"]
    assert "unknown event type" in response.json()["results"][0]["reason"]


def test_a_device_seq_too_large_for_sqlite_is_rejected_not_a_500(central_server):
    device = central_server.add_device()
    event = WireEvents().heartbeat(at(0))
    event["device_seq"] = 2**64

    response = central_server.post_events(device, [event])

    assert statuses(response) == ["rejected"]
    assert "device_seq" in response.json()["results"][0]["reason"]


def test_an_event_claiming_another_device_is_rejected(central_server):
    device = central_server.add_device(name="Desk 1")
    other = central_server.add_device(name="Desk 2")
    event = WireEvents().heartbeat(at(0))
    event["device_id"] = other.device_id

    response = central_server.post_events(device, [event])

    assert statuses(response) == ["rejected"]
    assert "device_id" in response.json()["results"][0]["reason"]
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


def test_more_than_the_maximum_number_of_events_is_refused_whole(central_server):
    device = central_server.add_device()
    kiosk = WireEvents()
    events = [kiosk.heartbeat(at(0)) for _ in range(MAX_BATCH_EVENTS + 1)]

    response = central_server.post_events(device, events)

    assert response.status_code == 413
    assert f"at most {MAX_BATCH_EVENTS}" in response.json()["detail"]
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


def test_exactly_the_maximum_number_of_events_is_accepted(central_server):
    device = central_server.add_device()
    kiosk = WireEvents()
    events = [kiosk.heartbeat(at(0)) for _ in range(MAX_BATCH_EVENTS)]

    response = central_server.post_events(device, events)

    assert response.status_code == 200
    assert statuses(response) == ["stored"] * MAX_BATCH_EVENTS


def oversized_body() -> bytes:
    padding = "x" * (MAX_BATCH_BYTES + 10)
    return json.dumps({"events": [], "padding": padding}).encode()


def test_a_body_over_one_mebibyte_is_refused(central_server):
    device = central_server.add_device()

    response = requests.post(
        central_server.url("/api/v1/events"),
        data=oversized_body(),
        headers={**device.headers, "Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 413
    assert "1 MiB" in response.json()["detail"]


def test_a_chunked_body_over_one_mebibyte_is_refused_too(central_server):
    device = central_server.add_device()
    body = oversized_body()

    def chunks():
        # A generator makes requests send Transfer-Encoding: chunked, with no Content-Length.
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = requests.post(
        central_server.url("/api/v1/events"),
        data=chunks(),
        headers={**device.headers, "Content-Type": "application/json"},
        timeout=10,
    )

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413
    assert "1 MiB" in response.json()["detail"]


def test_a_chunked_body_under_the_limit_is_accepted(central_server):
    device = central_server.add_device()
    body = json.dumps({"events": [WireEvents().heartbeat(at(0))]}).encode()

    response = requests.post(
        central_server.url("/api/v1/events"),
        data=iter([body[:10], body[10:]]),
        headers={**device.headers, "Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 200
    assert statuses(response) == ["stored"]


def test_malformed_json_gets_400_with_a_sentence(central_server):
    device = central_server.add_device()

    response = requests.post(
        central_server.url("/api/v1/events"),
        data=b'{"events": [',
        headers={**device.headers, "Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("The request body is not valid JSON")


def test_a_body_declared_as_something_other_than_json_gets_415_and_stores_nothing(
    central_server,
):
    device = central_server.add_device()
    url = central_server.url("/api/v1/events")
    body = json.dumps({"events": [WireEvents().heartbeat(at(0))]}).encode()

    as_text = requests.post(
        url, data=body, headers={**device.headers, "Content-Type": "text/plain"}, timeout=10
    )
    as_form = requests.post(url, data={"events": "[]"}, headers=device.headers, timeout=10)

    assert as_text.status_code == 415 and "application/json" in as_text.json()["detail"]
    assert as_form.status_code == 415
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


def test_a_body_with_no_declared_type_or_a_charset_is_read_as_json(central_server):
    device = central_server.add_device()
    url = central_server.url("/api/v1/events")
    events = WireEvents()

    untyped = requests.post(
        url, data=json.dumps({"events": [events.heartbeat(at(0))]}).encode(),
        headers=device.headers, timeout=10,
    )
    with_charset = requests.post(
        url, data=json.dumps({"events": [events.heartbeat(at(1))]}).encode(),
        headers={**device.headers, "Content-Type": "application/json; charset=utf-8"},
        timeout=10,
    )

    assert statuses(untyped) == ["stored"] and statuses(with_charset) == ["stored"]


def test_a_body_that_is_not_a_batch_gets_422_with_a_sentence(central_server):
    device = central_server.add_device()
    url = central_server.url("/api/v1/events")

    as_list = requests.post(url, json=[], headers=device.headers, timeout=10)
    extra = requests.post(
        url, json={"events": [], "device": "x"}, headers=device.headers, timeout=10
    )
    not_list = requests.post(url, json={"events": {}}, headers=device.headers, timeout=10)

    assert as_list.status_code == 422 and '{"events": [...]}' in as_list.json()["detail"]
    assert extra.status_code == 422 and "device" in extra.json()["detail"]
    assert not_list.status_code == 422 and "list" in not_list.json()["detail"]


def test_an_empty_batch_is_answered_with_no_results(central_server):
    device = central_server.add_device()

    response = central_server.post_events(device, [])

    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_a_heartbeat_updates_the_devices_health(central_server):
    device = central_server.add_device()
    kiosk = WireEvents()
    newer = kiosk.heartbeat(at(10), backlog=3, version="1.2.0")
    older = kiosk.heartbeat(at(5), backlog=99, version="1.1.0")

    central_server.post_events(device, [newer])
    central_server.post_events(device, [older])  # arrives late: must not win

    (row,) = central_server.rows(
        "SELECT backlog, version, last_heartbeat_at, last_seen_at, clock_skew_s FROM devices"
    )
    assert (row["backlog"], row["version"]) == (3, "1.2.0")
    assert row["last_heartbeat_at"] == at(10)
    assert row["last_seen_at"] is not None
    assert row["clock_skew_s"] > 0  # the fixed morning is in the past of the server's clock


def test_kiosks_sending_at_the_same_time_all_get_stored(central_server):
    devices = [central_server.add_device(name=f"Desk {n}") for n in range(4)]

    def send_batches(device) -> list[str]:
        kiosk = WireEvents()
        answers = []
        for batch in range(5):
            events = [kiosk.heartbeat(at(batch)) for _ in range(20)]
            answers += statuses(central_server.post_events(device, events))
        return answers

    with ThreadPoolExecutor(max_workers=len(devices)) as pool:
        answers = [status for result in pool.map(send_batches, devices) for status in result]

    assert answers == ["stored"] * 400
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 400}]
