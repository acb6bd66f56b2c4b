"""Privacy: no field for a name, phone, date of birth, record number or free text in any table
(kiosk and central) or in the API's schema; unknown fields refused; old data purged both sides.

The denylist works on field *names*: a new column or property whose name suggests personal data
fails here until someone decides, in ALLOWED below, that it is about a device, a site or a staff
login and not about a patient.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import requests

from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.shared.wire import EVENT_TYPES
from kiosk.store import Store
from sync.central import cli
from sync.central.storage import CentralStore, column_names, table_names
from sync.client import SyncClient
from sync.loop import SyncLoop
from tests.reliability import figures
from tests.support.clock import FakeClock
from tests.support.waiting import wait_until
from tests.support.wire_events import WireEvents

PERSONAL = re.compile(
    r"name|phone|mobile|dob|birth|nhs|mrn|record_?no|record_?number|email|e_mail|address|"
    r"postcode|zip_?code|comment|note|free_?text|surname|patient|ssn|insurance|gender|"
    r"^text$|message|remark|description"
)
# Decided one by one: these name devices, sites, tokens and staff logins, never a patient.
VISIT_ID = "5f0f3c1e-6c1e-4b8a-9d55-1e7c2b1c0a11"
ALLOWED = {
    "central.devices.name",  # "Desk 1"
    "central.sites.name",  # "Main St Clinic"
    "central.reporting_tokens.name",  # "Power BI"
    "central.users.name",  # the practice manager's login name
    "api.KioskConfig.device_name",
    # A staff member's optional comment on acknowledging an alert (issue 15: "by whom, with an
    # optional comment"), about the alert's cause ("called in a second nurse"); the page and
    # the commands ask for no patient details; at most 500 characters.
    "central.alerts.ack_comment",
    "central.alert_history.note",  # the same comment in the alert's history, or system text
    "api.Alert.comment",
    # Issue 17's comment box: the one field that holds a patient's free text. Off unless a
    # site turns it on; redacted on the kiosk and again on ingest (kiosk.shared.redaction);
    # at most 500 characters; read only with the comments permission; purged after
    # comment_retention_days (default 90) on both sides. The kiosk keeps it only inside its
    # outbox's event data, which has no column of its own.
    "central.rating_comments.comment",
    # Switches, not text: a site's "offer the comment box" and a login's "may read them".
    "central.sites.comments",
    "api.KioskConfig.comments",
    "central.users.can_read_comments",
    # Enrolment by code: the name a kiosk suggests for itself (its host name, "desk-2") and the
    # name the manager gave it; and RFC 8628's error_description, a sentence of the store's.
    "central.enrolment_codes.suggested_name",
    "api.EnrolRequest.device_name",
    "api.EnrolToken.device_name",
    "api.EnrolError.error_description",
}


def _tables(db) -> dict[str, list[str]]:
    return {table: column_names(db, table) for table in table_names(db)}


def _schema_fields(node, where: str = ""):
    """Every property and parameter name in an OpenAPI document, with where it is."""
    if isinstance(node, dict):
        for key in node.get("properties", {}):
            yield f"{where}.{key}", key
        if "name" in node and "in" in node:  # a parameter
            yield f"{where}.param.{node['name']}", node["name"]
        for key, value in node.items():
            yield from _schema_fields(value, key if key[:1].isupper() else where)
    elif isinstance(node, list):
        for value in node:
            yield from _schema_fields(value, where)


def test_no_table_or_api_field_can_hold_personal_data(tmp_path, central_server):
    kiosk = Store(tmp_path / "kiosk.sqlite")
    central = CentralStore(tmp_path / "central", database_url=central_server.database_url)
    fields: dict[str, str] = {}
    try:
        for side, db in (("kiosk", kiosk.db), ("central", central.db)):
            for table, columns in _tables(db).items():
                fields.update({f"{side}.{table}.{column}": column for column in columns})
    finally:
        kiosk.close()
        central.close()
    spec = central_server.embedded.app.openapi()
    fields.update({f"api.{where.lstrip('.')}": name for where, name in _schema_fields(spec)})

    suspicious = sorted(path for path, name in fields.items()
                        if PERSONAL.search(name.lower()) and path not in ALLOWED)
    assert not suspicious, f"fields that may hold personal data: {suspicious}"
    assert len(fields) > 80  # the walk really saw the schemas
    assert set(fields) >= ALLOWED, f"stale allowances: {ALLOWED - set(fields)}"
    figures.record("privacy_fields", title="Tables and API fields checked for personal data",
                   figures={"fields_checked": len(fields), "allowed_by_decision": len(ALLOWED)})


def test_an_unknown_field_is_refused_at_every_level_for_every_type(central_server):
    device = central_server.add_device()
    kiosk = WireEvents()
    samples = {
        "visit.checked_in": {"ticket": "A-001"}, "visit.called": {}, "visit.checked_out": {},
        "visit.cancelled": {"reason": "no_show"},
        "visit.corrected": {"field": "called_at", "value": "2026-03-02T09:00:00Z"},
        "visit.undone": {"action": "visit.called"},
        "rating.submitted": {"score": 5, "scale": 5},
        "device.heartbeat": {"backlog": 0, "version": "1"},
    }
    assert set(samples) == set(EVENT_TYPES)
    events = []
    for kind, data in samples.items():
        visit_id = None if kind.startswith(("rating", "device")) else VISIT_ID
        inside = kiosk.event(kind, "2026-03-02T09:00:00Z", visit_id, {**data, "patient_name": "X"})
        outside = kiosk.event(kind, "2026-03-02T09:00:00Z", visit_id, dict(data))
        outside["phone"] = "0123"
        events += [inside, outside]
    results = central_server.post_events(device, events).json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * len(events)
    assert all(("patient_name" in r["reason"]) or ("phone" in r["reason"]) for r in results)
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


def test_an_unknown_query_parameter_is_refused_on_every_api_route(central_server):
    device = central_server.add_device()
    reporting = {"Authorization": f"Bearer {central_server.add_reporting_token()}"}
    calls = [
        ("POST", "/api/v1/events", device.headers, {"events": []}),
        ("GET", "/api/v1/config", device.headers, None),
        ("GET", "/api/v1/metrics", reporting, None),
        ("GET", "/api/v1/export/visits.csv", reporting, None),
        ("GET", "/api/v1/export/ratings.csv", reporting, None),
        ("GET", "/healthz", {}, None),
    ]
    for method, path, headers, body in calls:
        answer = requests.request(method, central_server.url(f"{path}?patient_name=X"),
                                  headers=headers, json=body, timeout=10)
        assert answer.status_code == 422, path
        assert "'patient_name'" in answer.json()["detail"], path
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]
    # The token comes first: without one, the answer is a 401 whatever the query string.
    anonymous = requests.get(central_server.url("/api/v1/metrics?patient_name=X"), timeout=10)
    assert anonymous.status_code == 401


def test_retention_purges_old_data_on_the_central_store(central_server, capsys):
    device = central_server.add_device()
    kiosk = WireEvents()
    now = utc_now()
    old, recent = now - timedelta(days=401), now - timedelta(days=1)
    batch = []
    for when in (old, recent):
        visit_id, visit_events = kiosk.visit(0, 10, 20)
        for event in visit_events:
            event["occurred_at"] = to_rfc3339(when + timedelta(minutes=len(batch)))
        batch += visit_events
        batch.append(kiosk.rating(4, to_rfc3339(when + timedelta(minutes=30)), visit_id=visit_id))
    assert {r["status"] for r in central_server.post_events(device, batch).json()["results"]} \
        == {"stored"}

    # Two old alerts: one closed long ago (it goes, with its history), one still open (stays).
    long_ago = to_rfc3339(old)
    with central_server.embedded.store.write() as db:
        for state, closed_at in (("closed", long_ago), ("open", None)):
            alert_id = db.execute(
                "INSERT INTO alerts (site, rule, subject, state, summary, figures, opened_at, "
                "closed_at) VALUES (?, 'negative_burst', '', ?, 'old', '{}', ?, ?) RETURNING id",
                [device.site, state, long_ago, closed_at]).fetchone()[0]
            db.execute("INSERT INTO alert_history (alert_id, at, action) VALUES (?, ?, 'opened')",
                       [alert_id, long_ago])

    assert cli.main(["purge", *central_server.store_args(), "--days", "400"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["deleted"] == {"alerts": 1, "events": 4, "ratings": 1, "dont_know": 0,
                                 "visits": 1, "comments": 0}
    assert central_server.rows("SELECT state FROM alerts") == [{"state": "open"}]
    assert central_server.rows("SELECT COUNT(*) AS n FROM alert_history") == [{"n": 1}]
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 4}]
    assert central_server.rows("SELECT COUNT(*) AS n FROM visits") == [{"n": 1}]
    (rating,) = central_server.rows("SELECT occurred_at FROM ratings")
    assert rating["occurred_at"] > to_rfc3339(now - timedelta(days=400))


def test_retention_purges_old_synced_data_on_the_kiosk(tmp_path, central_server):
    device = central_server.add_device()
    clock = FakeClock(utc_now() - timedelta(days=40))
    store = Store(tmp_path / "kiosk.sqlite", clock=clock)
    old = store.record("rating.submitted", {"score": 5, "scale": 5, "tags": [], "misuse": False})
    client = SyncClient(store, central_server.base_url, device.token)
    assert client.sync_once().stored == 1
    clock.now = utc_now()
    recent = store.record("rating.submitted", {"score": 2, "scale": 5, "tags": [],
                                               "misuse": False})
    loop = SyncLoop(store, client, heartbeat_s=3600, clock=clock, retention_days=30)
    loop.start()
    try:
        wait_until(lambda: old.id not in {e["id"] for e in store.events()}, timeout=10,
                   what="the loop's daily purge")
        wait_until(lambda: store.sync_status().backlog == 0, timeout=10)
    finally:
        assert loop.stop(timeout=5)
        client.close()
    assert recent.id in {event["id"] for event in store.events()}
    assert [row["id"] for row in store.ratings_between("0", "9")] == [recent.id]
    store.close()
