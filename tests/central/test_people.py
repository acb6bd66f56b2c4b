"""People: the password rule (NIST SP 800-63B), TOTP with the clock pinned, recovery codes,
set-password links, disabling and resetting, and the admin second factor a site can require;
on a real SQLite store and over HTTP against a real server."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import requests
import time_machine

from sync.central import audit
from sync.central.dashboard import accounts
from sync.central.people import manage, totp
from sync.central.people.passwords import WeakPassword, check_password
from sync.central.permissions import Scope
from sync.central.sites import set_admin_totp, update_site
from tests.support.hashing import fast_hasher

# A fixed instant: TOTP codes depend on the clock, so the tests pin it.
NOON = datetime(2026, 6, 1, 12, 0, 7, tzinfo=UTC)
ADMIN_PASSWORD = "quiet harbour lanterns"
ACTOR = audit.Actor("user", "user:admin", "127.0.0.1")


@pytest.fixture(autouse=True)
def cheap_hashing():
    accounts.set_hasher(fast_hasher())


def test_the_password_rule_is_length_and_not_a_known_password():
    with pytest.raises(WeakPassword, match="at least 12 characters"):
        check_password("Tr0ub4dor&3")  # 11 characters: composition does not make up for it
    for known in ("password1234", "PASSWORD1234", " qwerty123456 "):
        with pytest.raises(WeakPassword, match="common and breached"):
            check_password(known)
    with pytest.raises(WeakPassword, match="common and breached"):
        check_password("north-manager", "north-manager")
    with pytest.raises(WeakPassword, match="at most 256"):
        check_password("x" * 257)
    # No composition rules: lower-case words alone are fine.
    assert check_password("quiet harbour lanterns") == "quiet harbour lanterns"
    assert check_password("steady rivers of tea", "north-viewer") == "steady rivers of tea"


@pytest.mark.parametrize("weak", ["123456789012", "aaaaaaaaaaaa", "passwordpassword",
                                  "changeme1234", "letmein12345", "welcome12345",
                                  "Summer2024!!", "north-manager-2026"])
def test_long_but_guessable_passwords_are_refused(weak):
    with pytest.raises(WeakPassword, match="too easy to guess|common and breached"):
        check_password(weak, "north-manager")


def test_a_password_longer_than_zxcvbn_scores_is_judged_by_its_start():
    assert check_password("quiet harbour lanterns " * 10)  # 230 characters: accepted
    with pytest.raises(WeakPassword, match="too easy to guess"):
        check_password("a" * 200)


def test_totp_codes_with_the_clock_pinned(central_store):
    with central_store.write() as db:
        user = accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(NOON)
    with central_store.write() as db:
        with pytest.raises(accounts.AccountError, match="not right"):
            manage.enable_totp(db, ACTOR, user, secret, "000000" if code != "000000" else "1",
                               NOON)
        codes = manage.enable_totp(db, ACTOR, user, secret, code, NOON)
    assert len(codes) == totp.RECOVERY_CODES and len(set(codes)) == totp.RECOVERY_CODES
    stored = central_store.db.execute("SELECT recovery_codes FROM users").fetchone()[0]
    assert all(c not in stored for c in codes)  # only their digests

    later = NOON + timedelta(seconds=30)
    with central_store.write() as db:
        # The setup's code is spent; the next step's code works once, and only once.
        assert manage.check_second_factor(db, user.id, code, NOON) is None
        next_code = pyotp.TOTP(secret).at(later)
        assert manage.check_second_factor(db, user.id, next_code, later) == "totp"
        assert manage.check_second_factor(db, user.id, next_code, later) is None
        # A code from two minutes ago is out of the window.
        old = pyotp.TOTP(secret).at(later - timedelta(minutes=2))
        assert manage.check_second_factor(db, user.id, old, later) is None
        # A recovery code works once, in either spelling.
        assert manage.check_second_factor(db, user.id, codes[0].upper(), later) == "recovery"
        assert manage.check_second_factor(db, user.id, codes[0], later) is None
    actions = [row[0] for row in central_store.db.execute("SELECT action FROM audit")]
    assert actions == ["user.totp_enable"]


def test_people_management_keeps_an_admin_and_records_each_change(central_store):
    with central_store.write() as db:
        update_site(db, "North")
        admin = accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
        user, token = manage.add_person(db, ACTOR, "north-viewer", "viewer",
                                        Scope(frozenset({"North"})))
    assert accounts.verify_password(central_store.db, "north-viewer", "") is None
    with central_store.write() as db:
        with pytest.raises(accounts.AccountError, match="last admin"):
            manage.change_person(db, ACTOR, admin.id, "viewer", Scope(None))
        with pytest.raises(accounts.AccountError, match="last admin"):
            manage.set_disabled(db, ACTOR, admin.id, True)
        with pytest.raises(LookupError, match="no site named 'South'"):
            manage.change_person(db, ACTOR, user.id, "manager", Scope(frozenset({"South"})))
        with pytest.raises(accounts.AccountError, match="already exists"):
            manage.add_person(db, ACTOR, "north-viewer", "viewer", Scope(None))
        manage.change_person(db, ACTOR, user.id, "manager", Scope(frozenset({"North"})))
    with central_store.write() as db:
        with pytest.raises(accounts.AccountError, match="common and breached"):
            manage.redeem_password_link(db, token, "password1234", "127.0.0.1")
        manage.redeem_password_link(db, token, "steady rivers of tea", "127.0.0.1")
        with pytest.raises(accounts.AccountError, match="used or has expired"):
            manage.redeem_password_link(db, token, "another good phrase", "127.0.0.1")
    found = accounts.verify_password(central_store.db, "north-viewer", "steady rivers of tea")
    assert found.role == "manager" and found.scope == Scope(frozenset({"North"}))
    with central_store.write() as db:
        manage.set_disabled(db, ACTOR, user.id, True)
    assert accounts.verify_password(central_store.db, "north-viewer", "steady rivers of tea") \
        is None
    rows = list(central_store.db.query("SELECT action, before_json, after_json FROM audit"))
    assert [r["action"] for r in rows] == ["user.add", "user.change", "user.password_set",
                                           "user.disable"]
    assert '"role": "viewer"' in rows[1]["before_json"]
    assert '"role": "manager"' in rows[1]["after_json"]
    assert "steady rivers" not in str(rows) and token not in str(rows)


def test_an_admin_without_a_password_yet_does_not_count_as_another_admin(central_store):
    with central_store.write() as db:
        admin = accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
        manage.add_person(db, ACTOR, "second-admin", "admin", Scope(None))  # link not used
        with pytest.raises(accounts.AccountError, match="last admin"):
            manage.change_person(db, ACTOR, admin.id, "viewer", Scope(None))
        with pytest.raises(accounts.AccountError, match="last admin"):
            manage.set_disabled(db, ACTOR, admin.id, True)
    assert accounts.verify_password(central_store.db, "admin", ADMIN_PASSWORD).role == "admin"


# --- over HTTP ---------------------------------------------------------------------------------


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _log_in(central, name: str, password: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    csrf = _csrf(browser.get(central.url("/login"), timeout=10).text)
    answer = browser.post(central.url("/login"), timeout=10, allow_redirects=False,
                          data={"username": name, "password": password, "csrf": csrf})
    return browser, answer


def test_a_login_with_totp_asks_for_the_code_with_the_clock_pinned(central_server):
    with central_server.embedded.store.write() as db:
        user = accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
        secret = totp.new_secret()
        manage.enable_totp(db, ACTOR, user, secret, pyotp.TOTP(secret).at(NOON), NOON)
    later = NOON + timedelta(minutes=5)
    with time_machine.travel(later, tick=True):
        browser, answer = _log_in(central_server, "admin", ADMIN_PASSWORD)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login/totp")
        # The password alone opens nothing.
        locked = browser.get(central_server.url("/"), timeout=10, allow_redirects=False,
                             headers={"Accept": "text/html"})
        assert locked.status_code == 303 and locked.headers["location"].startswith("/login")
        form = browser.get(central_server.url("/login/totp"), timeout=10).text
        wrong = browser.post(central_server.url("/login/totp"), timeout=10,
                             allow_redirects=False, data={"code": "12345", "csrf": _csrf(form)})
        assert wrong.status_code == 401 and "That code is not right" in wrong.text
        code = pyotp.TOTP(secret).at(later)
        right = browser.post(central_server.url("/login/totp"), timeout=10,
                             allow_redirects=False, data={"code": code, "csrf": _csrf(wrong.text)})
        assert right.status_code == 303 and right.headers["location"] == "/"
        assert browser.get(central_server.url("/"), timeout=10).status_code == 200
    methods = central_server.rows("SELECT action, after_json FROM audit WHERE action LIKE "
                                  "'login%' ORDER BY id")
    assert [m["action"] for m in methods] == ["login.failed", "login"]
    assert "password+totp" in methods[1]["after_json"]


def test_an_admin_must_set_up_totp_when_a_site_requires_it(central_server):
    with central_server.embedded.store.write() as db:
        update_site(db, "North")
        set_admin_totp(db, "North", "required")
        accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
        accounts.add_user(db, "north-viewer", "steady rivers of tea", role="viewer",
                          scope=Scope(frozenset({"North"})))
    browser, _ = _log_in(central_server, "admin", ADMIN_PASSWORD)
    today = browser.get(central_server.url("/"), timeout=10, allow_redirects=False)
    assert today.status_code == 303 and today.headers["location"] == "/account/totp"
    refused = browser.get(central_server.url("/dashboard/queue.json"), timeout=10,
                          allow_redirects=False)
    assert refused.status_code == 303
    setup = browser.get(central_server.url("/account/totp"), timeout=10)
    assert setup.status_code == 200 and "must use a second factor" in setup.text
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', setup.text).group(1)
    assert "<svg" in setup.text
    now = datetime.now(UTC)
    on = browser.post(central_server.url("/account/totp"), timeout=10, data={
        "csrf": _csrf(setup.text), "secret": secret, "code": pyotp.TOTP(secret).at(now)})
    assert on.status_code == 200 and 'id="recovery-codes"' in on.text
    assert browser.get(central_server.url("/"), timeout=10).status_code == 200
    # A viewer is not an admin: the requirement does not apply.
    viewer, _ = _log_in(central_server, "north-viewer", "steady rivers of tea")
    assert viewer.get(central_server.url("/"), timeout=10).status_code == 200


def test_own_password_change_and_its_refusals(central_server):
    with central_server.embedded.store.write() as db:
        accounts.add_user(db, "north-viewer", "steady rivers of tea", role="viewer")
    browser, _ = _log_in(central_server, "north-viewer", "steady rivers of tea")
    page = browser.get(central_server.url("/account"), timeout=10).text
    for fields, sentence in (
        ({"current": "wrong one entirely", "new": "calm new phrase 1", "again":
          "calm new phrase 1"}, "current password is not right"),
        ({"current": "steady rivers of tea", "new": "calm new phrase 1", "again": "x"},
         "two new passwords differ"),
        ({"current": "steady rivers of tea", "new": "short", "again": "short"},
         "at least 12 characters"),
    ):
        answer = browser.post(central_server.url("/account/password"), timeout=10,
                              data={"csrf": _csrf(page), **fields})
        assert answer.status_code == 422 and sentence in answer.text
    done = browser.post(central_server.url("/account/password"), timeout=10,
                        allow_redirects=False, data={
                            "csrf": _csrf(page), "current": "steady rivers of tea",
                            "new": "calm new phrase 1", "again": "calm new phrase 1"})
    assert done.status_code == 303
    assert _log_in(central_server, "north-viewer", "calm new phrase 1")[1].status_code == 303


def test_the_people_and_set_password_forms_refuse_bad_input_with_a_sentence(central_server):
    with central_server.embedded.store.write() as db:
        update_site(db, "North")
        accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
    browser, _ = _log_in(central_server, "admin", ADMIN_PASSWORD)
    page = browser.get(central_server.url("/people"), timeout=10).text
    csrf = _csrf(page)
    url = central_server.url("/people")
    for form, sentence in (
        ({"name": "admin", "role": "viewer", "all_sites": "1"}, "already exists"),
        ({"name": "north-viewer", "role": "viewer"}, "choose at least one site"),
        ({"name": "north-viewer", "role": "viewer", "sites": "Nowhere"}, "no site named"),
        ({"name": "north-viewer", "role": "owner", "all_sites": "1"}, "must be one of"),
        ({"name": "", "role": "viewer", "all_sites": "1"}, "user name must be"),
    ):
        answer = browser.post(url, data={"csrf": csrf, **form}, timeout=10)
        assert answer.status_code == 422 and sentence in answer.text.lower(), form
    assert browser.post(central_server.url("/people/nobody"), timeout=10,
                        data={"csrf": csrf, "role": "viewer"}).status_code == 404
    admin_id = central_server.rows("SELECT id FROM users WHERE name = 'admin'")[0]["id"]
    yourself = browser.post(central_server.url(f"/people/{admin_id}/disable"),
                            data={"csrf": csrf}, timeout=10)
    assert "cannot disable or reset your own login" in yourself.text
    added = browser.post(url, timeout=10, data={"csrf": csrf, "name": "north-viewer",
                                                "role": "viewer", "sites": "North"})
    link = re.search(r'id="password-link-url">([^<]+)<', added.text).group(1)
    token = link.split("#", 1)[1]

    visitor = requests.Session()
    form = visitor.get(central_server.url("/password/set"), timeout=10).text
    for fields, sentence in (
        ({"token": token, "password": "steady rivers of tea", "again": "steady rivers"},
         "two passwords differ"),
        ({"token": "not-a-link", "password": "steady rivers of tea",
          "again": "steady rivers of tea"}, "used or has expired"),
        ({"token": token, "password": "short", "again": "short"}, "at least 12 characters"),
    ):
        answer = visitor.post(central_server.url("/password/set"), timeout=10,
                              data={"csrf": _csrf(form), **fields})
        assert answer.status_code == 422 and sentence in answer.text
        form = answer.text
    done = visitor.post(central_server.url("/password/set"), timeout=10, data={
        "csrf": _csrf(form), "token": token, "password": "steady rivers of tea",
        "again": "steady rivers of tea"})
    assert done.status_code == 200 and "Your password is set" in done.text


def test_a_setup_key_not_made_by_the_store_is_refused_with_a_sentence(central_server):
    with central_server.embedded.store.write() as db:
        accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
    browser, _ = _log_in(central_server, "admin", ADMIN_PASSWORD)
    for secret in ("0000000000000000", "ABCDEFGHABCDEFGH", "ABCDEFGHABCDEFGHABCDEFGH",
                   "abcdefghabcdefghabcdefghabcdefgh", ""):
        page = browser.get(central_server.url("/account/totp"), timeout=10).text
        answer = browser.post(central_server.url("/account/totp"), timeout=10, data={
            "csrf": _csrf(page), "secret": secret, "code": "123456"})
        assert answer.status_code == 422, secret
        assert "The setup has expired; open the page again." in answer.text
    assert central_server.rows("SELECT totp_secret FROM users")[0]["totp_secret"] is None


def test_a_second_factor_cannot_be_replaced_without_the_password(central_server):
    with central_server.embedded.store.write() as db:
        user = accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
        first = totp.new_secret()
        manage.enable_totp(db, ACTOR, user, first, pyotp.TOTP(first).at(NOON), NOON)
    later = NOON + timedelta(minutes=5)
    with time_machine.travel(later, tick=True):
        browser, _ = _log_in(central_server, "admin", ADMIN_PASSWORD)
        form = browser.get(central_server.url("/login/totp"), timeout=10).text
        browser.post(central_server.url("/login/totp"), timeout=10, data={
            "csrf": _csrf(form), "code": pyotp.TOTP(first).at(later)})
        page = browser.get(central_server.url("/account"), timeout=10).text
        other = totp.new_secret()
        answer = browser.post(central_server.url("/account/totp"), timeout=10, data={
            "csrf": _csrf(page), "secret": other, "code": pyotp.TOTP(other).at(later)})
    assert answer.status_code == 409
    assert "already on; turn it off first with your password" in answer.text
    assert central_server.rows("SELECT totp_secret FROM users")[0]["totp_secret"] == first
    # The one enable recorded says what was there before it.
    rows = central_server.rows("SELECT before_json FROM audit WHERE action = 'user.totp_enable'")
    assert [row["before_json"] for row in rows] == ['{"totp": false}']


def test_made_up_login_links_are_rate_limited_before_they_are_recorded(central_server):
    browser = requests.Session()
    cap = central_server.embedded.app.state.login_limiter.address_limit
    answers = [browser.get(central_server.url("/login/once"), params={"token": f"x{n}"},
                           timeout=10) for n in range(cap + 30)]
    assert [a.status_code for a in answers[:cap]] == [401] * cap
    assert {a.status_code for a in answers[cap:]} == {429}
    assert "Too many failed logins" in answers[-1].text
    assert int(answers[-1].headers["Retry-After"]) > 0
    # The audit trail holds the counted failures only: a flood cannot fill it.
    failed = central_server.rows("SELECT COUNT(*) AS n FROM audit WHERE action = 'login.failed'")
    assert failed[0]["n"] == cap


def test_the_code_step_honours_the_address_cap(central_server):
    with central_server.embedded.store.write() as db:
        user = accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
        secret = totp.new_secret()
        manage.enable_totp(db, ACTOR, user, secret, pyotp.TOTP(secret).at(NOON), NOON)
    browser, _ = _log_in(central_server, "admin", ADMIN_PASSWORD)
    limiter = central_server.embedded.app.state.login_limiter
    address = "127.0.0.1"
    for index in range(limiter.address_limit):
        limiter.failed(f"name-{index}", address)  # other names' failures from this address
    form = browser.get(central_server.url("/login/totp"), timeout=10).text
    answer = browser.post(central_server.url("/login/totp"), timeout=10, allow_redirects=False,
                          data={"csrf": _csrf(form), "code": pyotp.TOTP(secret).now()})
    assert answer.status_code == 429 and "Too many wrong codes" in answer.text


def test_recovery_codes_are_stored_under_a_salt_of_the_logins_own(central_store):
    stored_forms = []
    for _ in range(2):
        codes, stored = totp.new_recovery_codes()
        stored_forms.append(stored)
        kept = json.loads(stored)
        assert len(kept["salt"]) == 32 and len(kept["digests"]) == totp.RECOVERY_CODES
        assert not any(hashlib.sha256(c.replace("-", "").encode()).hexdigest() in stored
                       for c in codes)
        left = totp.spend_recovery_code(stored, codes[3].upper())
        assert json.loads(left)["salt"] == kept["salt"]
        assert len(json.loads(left)["digests"]) == totp.RECOVERY_CODES - 1
        assert totp.spend_recovery_code(left, codes[3]) is None
    # Two logins' salts differ, so the same code would not share a digest.
    assert json.loads(stored_forms[0])["salt"] != json.loads(stored_forms[1])["salt"]
    # Codes stored before salts (a JSON list of SHA-256 digests) still work, once.
    legacy = json.dumps([hashlib.sha256(b"abcde12345").hexdigest()])
    assert totp.spend_recovery_code(legacy, "abcde-12345") == "[]"


def test_a_password_change_ends_the_logins_other_sessions(central_server):
    with central_server.embedded.store.write() as db:
        accounts.add_user(db, "north-viewer", "steady rivers of tea", role="viewer")
    elsewhere, _ = _log_in(central_server, "north-viewer", "steady rivers of tea")
    here, _ = _log_in(central_server, "north-viewer", "steady rivers of tea")
    page = here.get(central_server.url("/account"), timeout=10).text
    done = here.post(central_server.url("/account/password"), timeout=10, data={
        "csrf": _csrf(page), "current": "steady rivers of tea", "new": "calm new phrase 1",
        "again": "calm new phrase 1"})
    assert done.status_code == 200 and "your other sessions have ended" in done.text
    assert here.get(central_server.url("/account"), timeout=10).status_code == 200
    gone = elsewhere.get(central_server.url("/account"), timeout=10, allow_redirects=False,
                         headers={"Accept": "text/html"})
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


@pytest.mark.parametrize("path", ["/account/password", "/account/totp/disable"])
def test_the_account_pages_password_check_is_rate_limited(central_server, path):
    with central_server.embedded.store.write() as db:
        user = accounts.add_user(db, "admin", ADMIN_PASSWORD, role="admin")
        secret = totp.new_secret()
        manage.enable_totp(db, ACTOR, user, secret, pyotp.TOTP(secret).at(NOON), NOON)
        session_id = accounts.open_session(db, user)
        csrf = accounts.find_session(db, session_id).csrf_token
    browser = requests.Session()
    browser.cookies.set("dashboard_session", session_id)
    limit = central_server.embedded.app.state.login_limiter.limit

    def attempt(password: str) -> requests.Response:
        return browser.post(central_server.url(path), timeout=10, allow_redirects=False, data={
            "csrf": csrf, "password": password, "current": password,
            "new": "calm new phrase 1", "again": "calm new phrase 1"})

    assert [attempt(f"guess number {n}").status_code for n in range(limit)] == [422] * limit
    # Past the cap, even the right password is not checked.
    refused = attempt(ADMIN_PASSWORD)
    assert refused.status_code == 429 and "Too many wrong passwords" in refused.text
    assert int(refused.headers["Retry-After"]) > 0
    row = central_server.rows("SELECT totp_secret IS NOT NULL AS on_ FROM users")[0]
    assert row["on_"] == 1
    assert accounts.verify_password(central_server.embedded.store.db, "admin", ADMIN_PASSWORD)
