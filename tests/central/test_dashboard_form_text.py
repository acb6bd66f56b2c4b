"""The dashboard's forms and addresses refuse what no page can use, with a 4xx and a sentence,
the same on both engines, never a 500: a NUL character (PostgreSQL cannot store one, SQLite
stored it), a file where a form takes text, an id with non-ASCII digits or past 64 bits, a
device name with a line break, a channel for a site that does not exist, quiet hours in a
shape the delivery would misread, a TOTP code in other digits than 0-9."""

from __future__ import annotations

import html
import re

import pyotp
import pytest
import requests

from sync.central.people import totp
from tests.central.test_enrol_api import logged_in

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def admin(central_server):
    """An admin's browser session on the store (the one-time login link) and its CSRF token."""
    session = logged_in(central_server)
    page = session.get(central_server.url("/alerts"), timeout=10)
    return session, CSRF.search(page.text).group(1)


def test_a_nul_in_a_form_field_or_the_address_is_a_422_that_names_it(central_server, admin):
    session, csrf = admin
    form = requests.get(central_server.url("/login"), timeout=10).text
    login = requests.post(central_server.url("/login"), timeout=10, allow_redirects=False, data={
        "username": "bo\x00ss", "password": "x", "csrf": CSRF.search(form).group(1)})
    assert login.status_code == 422 and "username" in login.text and "NUL" in login.text
    for path, data in (
        ("/people", {"name": "a\x00b", "role": "admin"}),
        ("/people", {"name": "ab", "role": "viewer", "sites": "No\x00rth"}),
        ("/alerts/rules", {"site": "No\x00rth", "rule": "long_wait"}),
        ("/alerts/channels", {"kind": "webhook", "url": "https://hooks.example/x",
                              "secret": "s", "channel_site": "N\x00"}),
        ("/devices/add", {"code": "BCDF-GHJK", "site": "North", "name": "Desk\x00 2"}),
    ):
        answer = session.post(central_server.url(path), data={"csrf": csrf, **data}, timeout=10)
        field = next(name for name, value in data.items() if "\x00" in value)
        assert answer.status_code == 422, (path, answer.status_code)
        assert f"form field {field!r} contains a NUL character" in html.unescape(answer.text)
    for path in ("/people/x%00y/disable", "/people/x%00y"):
        answer = session.post(central_server.url(path), data={"csrf": csrf}, timeout=10)
        assert answer.status_code == 422 and "address contains a NUL" in answer.text, path


def test_a_file_where_a_form_takes_text_is_a_422(central_server, admin):
    session, csrf = admin
    answer = session.post(central_server.url("/alerts/rules"), timeout=10,
                          data={"csrf": csrf, "site": "North", "rule": "long_wait"},
                          files={"multiple": ("multiple.txt", b"3")})
    assert answer.status_code == 422 and "multiple" in answer.text and "file" in answer.text


@pytest.mark.parametrize("alert_id", ["%C2%B2", "%D9%A1", "99999999999999999999"])
def test_an_alert_id_that_names_no_row_is_a_404(central_server, admin, alert_id):
    session, csrf = admin
    for path in (f"/alerts/{alert_id}/ack", f"/alerts/{alert_id}/close",
                 f"/alerts/deliveries/{alert_id}/retry", f"/alerts/channels/{alert_id}/remove",
                 f"/alerts/channels/{alert_id}/test"):
        answer = session.post(central_server.url(path), data={"csrf": csrf}, timeout=10)
        assert answer.status_code == 404, (path, answer.status_code)


def test_a_channel_for_no_such_site_or_with_misread_quiet_hours_is_refused(central_server, admin):
    session, csrf = admin
    webhook = {"csrf": csrf, "kind": "webhook", "url": "https://hooks.example/x", "secret": "s"}
    unknown = session.post(central_server.url("/alerts/channels"), timeout=10,
                           data={**webhook, "channel_site": "Nowhere"})
    assert unknown.status_code == 422 and "no site named" in unknown.text
    for span in ("T2200-T0700", "2200Z-0700Z", "22:00-7:00"):
        odd = session.post(central_server.url("/alerts/channels"), timeout=10,
                           data={**webhook, "quiet_hours": span})
        assert odd.status_code == 422 and "HH:MM-HH:MM" in odd.text, span
    assert central_server.rows("SELECT COUNT(*) AS n FROM alert_channels") == [{"n": 0}]
    fine = session.post(central_server.url("/alerts/channels"), timeout=10,
                        data={**webhook, "quiet_hours": "22:00-07:00"}, allow_redirects=False)
    assert fine.status_code == 303


def test_a_device_name_with_a_line_break_is_refused(central_server, admin):
    from kiosk.shared.timeutil import utc_now
    from sync.central import enrolment

    session, csrf = admin
    with central_server.embedded.store.write() as db:
        code = enrolment.issue(db, utc_now()).user_code
    answer = session.post(central_server.url("/devices/add"), timeout=10, data={
        "csrf": csrf, "code": code, "site": "North", "name": "Desk\n\x1b[31m2", "role": "desk"})
    assert answer.status_code == 422 and "control characters" in answer.text
    assert central_server.rows("SELECT COUNT(*) AS n FROM devices WHERE name LIKE 'Desk%'") == [
        {"n": 0}]


def test_a_totp_code_in_other_digits_is_a_wrong_code_not_an_error(central_server, admin):
    session, csrf = admin
    secret = totp.new_secret()
    for code in ("\u0661\u0662\u0663\u0664\u0665\u0666", "\u00b2" * 6):
        answer = session.post(central_server.url("/account/totp"), timeout=10,
                              data={"csrf": csrf, "secret": secret, "code": code})
        assert answer.status_code == 422, (code, answer.status_code)
    right = session.post(central_server.url("/account/totp"), timeout=10, data={
        "csrf": csrf, "secret": secret, "code": pyotp.TOTP(secret).now()})
    assert right.status_code == 200
