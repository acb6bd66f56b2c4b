"""Enrolment by short code against a real central store on 127.0.0.1: the routes, the
approval by `device approve`, and every way a code can fail (wrong, expired, denied, reused,
polled too fast, asked for too often)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import time_machine

from kiosk.shared.enrolment_codes import CODE_ALPHABET, normalise_code
from kiosk.shared.timeutil import utc_now
from sync.central import enrolment
from sync.central.migrations import MIGRATIONS, SCHEMA_VERSION
from sync.central.storage import column_names, table_names
from tests.central.test_cli import run_in_process


def ask(server, **body) -> dict:
    response = requests.post(server.url("/api/v1/enrol"), json=body or None, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def poll(server, device_code: str) -> requests.Response:
    return requests.post(server.url("/api/v1/enrol/token"), json={"device_code": device_code},
                         timeout=10)


def approve(server, capsys, code: str, site: str = "North", name: str = "desk-2",
            role: str = "desk") -> tuple[int, str, str]:
    return run_in_process(capsys, "device", "approve", *server.store_args(),
                          "--code", code, "--site", site, "--name", name, "--role", role)


def forget_last_poll(server) -> None:
    """The next poll is not "too soon" (instead of sleeping out the interval)."""
    with server.embedded.store.write() as db:
        db.execute("UPDATE enrolment_codes SET last_poll_at = NULL")


def test_a_code_pair_is_issued_as_rfc_8628_describes(central_server):
    codes = ask(central_server, device_name="desk-2")
    assert set(codes) == {"device_code", "user_code", "verification_uri",
                          "verification_uri_complete", "interval", "expires_in"}
    assert codes["expires_in"] == 900 and codes["interval"] == 5
    code = normalise_code(codes["user_code"])
    assert code is not None and len(code) == 8 and set(code) <= set(CODE_ALPHABET)
    assert codes["verification_uri"] == central_server.url("/devices/add")
    assert codes["verification_uri_complete"].endswith(f"?code={codes['user_code']}")
    # Both codes are secrets: only their digests are stored.
    stored = central_server.rows("SELECT * FROM enrolment_codes")
    assert len(stored) == 1
    flat = repr(stored)
    assert codes["device_code"] not in flat and code not in flat
    assert stored[0]["suggested_name"] == "desk-2"


def test_approved_by_command_the_kiosk_collects_its_token_once(central_server, capsys):
    codes = ask(central_server)
    pending = poll(central_server, codes["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    # Typed as a person might: lower case, no hyphen.
    status, out, err = approve(central_server, capsys,
                               normalise_code(codes["user_code"]).lower(), role="ratings")
    assert status == 0, err
    assert '"approved": true' in out
    forget_last_poll(central_server)
    answer = poll(central_server, codes["device_code"])
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["token_type"] == "Bearer" and token["access_token"].startswith("dev_")
    assert (token["site"], token["device_name"], token["role"]) == ("North", "desk-2", "ratings")
    assert answer.headers["cache-control"] == "no-store"
    # The token works for events and config; it is stored only as its digest.
    config = requests.get(central_server.url("/api/v1/config"), timeout=10,
                          headers={"Authorization": f"Bearer {token['access_token']}"})
    assert config.status_code == 200 and config.json()["device_id"] == token["device_id"]
    assert token["access_token"] not in repr(central_server.rows("SELECT * FROM devices"))
    # Reused: the code gives one token.
    forget_last_poll(central_server)
    again = poll(central_server, codes["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    status, _, err = approve(central_server, capsys, codes["user_code"])
    assert status == 2 and "already approved" in err and "works once" in err


def test_a_denied_code_says_so(central_server, capsys):
    codes = ask(central_server)
    status, out, err = run_in_process(capsys, "device", "deny", *central_server.store_args(),
                                      "--code", codes["user_code"])
    assert status == 0, err
    answer = poll(central_server, codes["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] == "access_denied"
    status, _, err = approve(central_server, capsys, codes["user_code"])
    assert status == 2 and "already denied" in err


def test_a_wrong_code_is_a_sentence_and_approves_nothing(central_server, capsys):
    ask(central_server)
    status, _, err = approve(central_server, capsys, "BCDF-GHJK")
    assert status == 2 and "No kiosk is showing the code BCDF-GHJK" in err
    status, _, err = approve(central_server, capsys, "A1B2")
    assert status == 2 and "is not a kiosk code" in err
    status, _, err = approve(central_server, capsys, ask(central_server)["user_code"],
                             name=" ")
    assert status == 2 and "name must be 1-64 characters" in err
    assert central_server.rows("SELECT count(*) AS n FROM devices")[0]["n"] == 0


def test_an_expired_code_cannot_be_approved_or_collected(central_server, capsys):
    codes = ask(central_server)
    later = utc_now() + timedelta(minutes=15, seconds=1)
    with time_machine.travel(later, tick=True):
        status, _, err = approve(central_server, capsys, codes["user_code"])
        assert status == 2 and "has expired" in err and "New code" in err
        answer = poll(central_server, codes["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] == "expired_token"


def test_an_approval_is_collected_within_the_grace_and_lapses_after_it(central_server, capsys):
    codes = ask(central_server)
    start = utc_now()
    # Approved in the code's last second; the kiosk's last poll comes a minute late.
    with time_machine.travel(start + timedelta(minutes=14, seconds=59), tick=False):
        assert approve(central_server, capsys, codes["user_code"])[0] == 0
    with time_machine.travel(start + enrolment.CODE_LIFETIME + timedelta(minutes=1), tick=False):
        answer = poll(central_server, codes["device_code"])
    assert answer.status_code == 200 and answer.json()["access_token"].startswith("dev_")

    late = ask(central_server)
    with time_machine.travel(start + timedelta(minutes=14, seconds=59), tick=False):
        assert approve(central_server, capsys, late["user_code"], name="desk-3")[0] == 0
    after_grace = start + enrolment.CODE_LIFETIME + enrolment.APPROVAL_GRACE + timedelta(
        seconds=5)
    with time_machine.travel(after_grace, tick=False):
        answer = poll(central_server, late["device_code"])
        assert answer.status_code == 400 and answer.json()["error"] == "expired_token"
        forget_last_poll(central_server)
        assert poll(central_server, late["device_code"]).json()["error"] == "expired_token"
    revoked = central_server.rows("SELECT revoked FROM devices WHERE name = 'desk-3'")
    assert revoked == [{"revoked": 1}]


def test_an_approval_never_polled_for_is_revoked_when_the_next_code_is_issued(central_store):
    now = utc_now()
    with central_store.write() as db:
        issued = enrolment.issue(db, now)
        device = enrolment.approve(db, issued.user_code, "North", "desk-4", "desk", now)
        enrolment.issue(db, now + enrolment.CODE_LIFETIME + enrolment.APPROVAL_GRACE)
        assert db.execute("SELECT revoked FROM devices WHERE id = ?",
                          [device.id]).fetchone()[0] == 1
        assert enrolment.poll(db, issued.device_code, now + timedelta(hours=20)).error == \
            "expired_token"


def test_polling_faster_than_the_interval_slows_the_kiosk_down(central_server):
    codes = ask(central_server)
    assert poll(central_server, codes["device_code"]).json()["error"] == "authorization_pending"
    too_soon = poll(central_server, codes["device_code"]).json()
    assert too_soon["error"] == "slow_down" and too_soon["interval"] == 10
    # The interval stays raised for the code's life (RFC 8628 3.5).
    forget_last_poll(central_server)
    assert poll(central_server, codes["device_code"]).json()["interval"] == 10


def test_codes_are_rate_limited_per_address(central_server):
    for _ in range(10):
        ask(central_server)
    refused = requests.post(central_server.url("/api/v1/enrol"), timeout=10)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many enrolment codes" in refused.json()["detail"]


def test_a_burst_of_simultaneous_code_requests_is_limited_all_the_same(central_server):
    from concurrent.futures import ThreadPoolExecutor

    def ask_once(_):
        response = requests.post(central_server.url("/api/v1/enrol"), json={}, timeout=30)
        return response.status_code, response.headers.get("cache-control")

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask_once, range(20)))
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == 10 and statuses.count(429) == 10
    # The device code is a secret: no cache may keep the answer that carries it.
    assert {caching for status, caching in answers if status == 200} == {"no-store"}


def test_simultaneous_polls_after_approval_hand_the_token_out_once(central_server, capsys):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    codes = ask(central_server)
    assert approve(central_server, capsys, codes["user_code"])[0] == 0
    barrier = threading.Barrier(6)

    def poll_at_once(_):
        barrier.wait()
        answer = poll(central_server, codes["device_code"])
        return answer.status_code, answer.json().get("error")

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(poll_at_once, range(6)))
    assert [status for status, _ in answers].count(200) == 1
    assert {error for status, error in answers if status != 200} <= {"slow_down",
                                                                     "invalid_grant"}


def logged_in(server) -> requests.Session:
    from sync.central.dashboard import one_time_login_url

    session = requests.Session()
    assert session.get(one_time_login_url(server.data_dir, server.base_url, server.database_url),
                       timeout=10).status_code == 200
    return session


def test_codes_in_the_add_a_kiosk_link_are_counted_as_wrong_codes(central_server):
    import re

    with central_server.embedded.store.write() as db:
        issued = enrolment.issue(db, utc_now(), suggested_name="pi-frontdesk")
    session = logged_in(central_server)
    page = session.get(central_server.url(f"/devices/add?code={issued.user_code}"), timeout=10)
    assert 'id="desk-name" value="pi-frontdesk"' in page.text
    limit = central_server.embedded.app.state.wrong_code_limiter.limit
    for _ in range(limit):
        assert session.get(central_server.url("/devices/add?code=BCDF-GHJK"),
                           timeout=10).status_code == 200
    refused = session.get(central_server.url(f"/devices/add?code={issued.user_code}"),
                          timeout=10)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many wrong codes" in refused.text
    # The page without a code still opens: a manager may type the code once the wait is over.
    plain = session.get(central_server.url("/devices/add"), timeout=10)
    assert plain.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', plain.text).group(1)
    central_server.embedded.app.state.wrong_code_limiter.forget("127.0.0.1")
    odd = session.post(central_server.url("/devices/add"), timeout=10, data={
        "csrf": csrf, "code": issued.user_code, "site": "North", "name": "desk-2",
        "decision": "maybe"})
    assert odd.status_code == 422 and "is not a decision" in odd.text
    assert central_server.rows("SELECT id FROM devices WHERE name = 'desk-2'") == []


def test_guessed_device_codes_count_as_refused_tokens(central_server):
    central_server.embedded.app.state.auth_failures.limit = 3
    answers = [poll(central_server, f"guess-{i}") for i in range(4)]
    assert [a.status_code for a in answers] == [400, 400, 400, 429]
    assert answers[0].json()["error"] == "invalid_grant"


@pytest.mark.parametrize("body, says", [
    ({"device_code": "x", "extra": 1}, "extra"),
    ({}, "device_code"),
    ({"device_code": "x", "grant_type": "password"}, "grant_type"),
])
def test_a_malformed_poll_is_a_422_that_names_the_field(central_server, body, says):
    answer = requests.post(central_server.url("/api/v1/enrol/token"), json=body, timeout=10)
    assert answer.status_code == 422 and says in answer.text


def test_unknown_fields_and_query_parameters_are_refused(central_server):
    answer = requests.post(central_server.url("/api/v1/enrol"), json={"patient": "x"},
                           timeout=10)
    assert answer.status_code == 422
    answer = requests.post(central_server.url("/api/v1/enrol?x=1"), timeout=10)
    assert answer.status_code == 422 and "x" in answer.text


def test_a_name_with_a_nul_character_is_a_422_not_a_server_error(central_server):
    # No stored text can hold a NUL (PostgreSQL refuses it): the request is what is wrong.
    answer = requests.post(central_server.url("/api/v1/enrol"),
                           json={"device_name": "desk\u00002"}, timeout=10)
    assert answer.status_code == 422 and "device_name" in answer.text, answer.text
    assert ask(central_server, device_name="desk-2")["user_code"]  # and the store goes on


def test_the_routes_are_in_the_openapi_description(central_server):
    spec = requests.get(central_server.url("/openapi.json"), timeout=10).json()
    assert "/api/v1/enrol" in spec["paths"] and "/api/v1/enrol/token" in spec["paths"]
    errors = spec["components"]["schemas"]["EnrolError"]["properties"]["error"]
    assert {"authorization_pending", "slow_down", "access_denied", "expired_token"} <= set(
        errors["enum"])


def test_the_migration_is_one_named_step(central_server):
    names = [migration.__name__ for migration in MIGRATIONS]
    assert names.count("_enrolment_codes") == 1 and len(names) == SCHEMA_VERSION
    db = central_server.embedded.store.db
    assert "enrolment_codes" in table_names(db)
    columns = set(column_names(db, "devices"))
    assert "role" in columns


def test_too_many_pending_codes_are_refused_with_a_sentence(central_store, monkeypatch):
    monkeypatch.setattr(enrolment, "MAX_PENDING_CODES", 2)
    now = utc_now()
    with central_store.write() as db:
        enrolment.issue(db, now)
        enrolment.issue(db, now)
        with pytest.raises(enrolment.TooManyPendingCodes, match="waiting for approval"):
            enrolment.issue(db, now)
