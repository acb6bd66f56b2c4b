"""The dashboard attacked over plain HTTP: stored markup on every page, forged form posts, and
password guessing. (tests/dashboard checks the compare page's escaping, one missing CSRF token
and one rate-limited name in a browser; this sweeps every page and every form.)"""

from __future__ import annotations

import re

import requests

from sync.central.dashboard import accounts
from tests.reliability.test_auth import _all_routes
from tests.support.wire_events import WireEvents, at

PASSWORD = "a long enough password"
MARKUP_DESK = "<img src=x onerror=alert(1)><b>Desk</b>"
AMPERSAND_SITE = "O'Brien & Sons (Dental)"
PAGES = ["/", "/trends", "/rating-by-wait", "/reasons", "/compare", "/devices", "/export"]


def _login(server) -> tuple[requests.Session, str]:
    session = requests.Session()
    form = session.get(server.url("/login"), timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    done = session.post(server.url("/login"), allow_redirects=False, timeout=10,
                        data={"username": "manager", "password": PASSWORD, "csrf": csrf})
    assert done.status_code == 303
    page = session.get(server.url("/"), timeout=10).text
    session_csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return session, session_csrf


def test_stored_markup_is_shown_as_text_on_every_page(central_server):
    device = central_server.add_device(site=AMPERSAND_SITE, name=MARKUP_DESK)
    with central_server.embedded.store.write() as db:
        accounts.add_user(db, "manager", PASSWORD)
    kiosk = WireEvents()
    _, visit = kiosk.visit(0, 10, 20)
    central_server.post_events(device, [*visit, kiosk.rating(1, at(21), tags=("waiting_time",)),
                                        kiosk.heartbeat(at(22))])
    session, _ = _login(central_server)
    for path in PAGES:
        html = session.get(central_server.url(path), timeout=30).text
        assert "<img src=x" not in html and "<b>Desk</b>" not in html, path
    devices = session.get(central_server.url("/devices"), timeout=30).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in devices
    assert "O&#39;Brien &amp; Sons (Dental)" in devices or "O&#x27;Brien &amp;" in devices


def test_every_dashboard_form_needs_its_csrf_token(central_server):
    with central_server.embedded.store.write() as db:
        accounts.add_user(db, "manager", PASSWORD)
    session, csrf = _login(central_server)
    forms = sorted(path for path, methods in _all_routes(central_server.embedded.app.routes)
                   if "POST" in methods and not path.startswith("/api/"))
    assert forms, "no dashboard form found"
    for path in forms:
        for forged in ({}, {"csrf": ""}, {"csrf": "x" * len(csrf)}, {"csrf": csrf[:-1]}):
            answer = session.post(central_server.url(path), data=forged, allow_redirects=False,
                                  headers={"Origin": "https://evil.example"}, timeout=10)
            assert answer.status_code == 403, (path, forged, answer.status_code)
    # A page that needs a session still opens: none of that logged the manager out.
    assert session.get(central_server.url("/devices"), timeout=10).status_code == 200
    logout = session.post(central_server.url("/logout"), data={"csrf": csrf},
                          allow_redirects=False, timeout=10)
    assert logout.status_code == 303


def test_password_guessing_for_a_name_is_rate_limited(central_server):
    with central_server.embedded.store.write() as db:
        accounts.add_user(db, "manager", PASSWORD)
    session = requests.Session()
    statuses = []
    for n in range(12):
        form = session.get(central_server.url("/login"), timeout=10).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        statuses.append(session.post(
            central_server.url("/login"), allow_redirects=False, timeout=10,
            data={"username": "manager", "password": f"guess {n}", "csrf": csrf}).status_code)
    assert statuses[0] == 401 and statuses[-1] == 429
    assert statuses.index(429) <= 6
