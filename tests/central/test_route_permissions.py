"""Every route of the app, from its route table, against every role and scope.

A route must declare the action it does (``Depends(require(...))``, which the People page's
permission table and ``sync.central.permissions`` describe) or be listed here as open to all
or as a kiosk's: a new route that declares nothing fails the first test. Then each route is
requested over HTTP from a real server by a login (or a reporting token) of each role and
scope, and must answer 403 exactly when the role lacks the action. A site outside a login's or
token's scope answers as a site that does not exist, byte for byte (the name aside), and
counts in no total.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
import requests
import time_machine
from fastapi.routing import APIRoute

from sync.central.access import declared_permission
from sync.central.dashboard import accounts
from sync.central.permissions import ACTIONS, PERMISSIONS
from sync.central.security import current_device
from tests.central.access_world import LOGINS, NORTH, NOWHERE, SOUTH, TOKENS, build_world
from tests.support.central_server import running_central
from tests.support.hashing import fast_hasher

# Routes anyone may reach: logging in, setting a password from a link, files, liveness, docs.
OPEN_TO_ALL = {
    "/login", "/login/totp", "/login/once", "/password/set", "/healthz",
    "/static/dashboard/plotly.min.js", "/static/dashboard/fonts/{name}",
    "/static/dashboard/{name}", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
    # A kiosk with no token yet asks for its enrolment code and polls for its token.
    "/api/v1/enrol", "/api/v1/enrol/token",
}
# Path parameters: ids that exist nowhere, so an allowed request changes nothing.
PATH_VALUES = {"{user_id}": "nobody", "{alert_id}": "999999", "{channel_id}": "999999",
               "{delivery_id}": "999999"}


def _uses_device_token(route: APIRoute) -> bool:
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if dependant.call is current_device:
            return True
        pending.extend(dependant.dependencies)
    return False


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    accounts.set_hasher(fast_hasher())
    with running_central(tmp_path_factory.mktemp("access")) as central:
        yield build_world(central)


def _routes(routes, prefix: str = ""):
    """(full path, route) of every route of the app, through FastAPI's included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, route


def _guarded_routes(app) -> list[tuple[str, str, str]]:
    """(method, path, action) of every route that declares an action."""
    found = []
    for path, route in _routes(app.routes):
        if not isinstance(route, APIRoute):
            continue
        action = declared_permission(route)
        if action is None:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, path, action))
    return found


def test_every_route_declares_a_permission_or_is_listed_as_open(world):
    app = world.central.embedded.app
    undeclared = []
    for path, route in _routes(app.routes):
        if path in OPEN_TO_ALL:
            continue
        if isinstance(route, APIRoute) and (declared_permission(route) or
                                            _uses_device_token(route)):
            continue
        undeclared.append(path)
    assert undeclared == [], f"routes with no declared permission: {undeclared}"
    assert {action for _, _, action in _guarded_routes(app)} == set(ACTIONS)


def _request(world, method: str, path: str, who: str, csrf: str | None,
             browser: requests.Session | None) -> requests.Response:
    for key, value in PATH_VALUES.items():
        path = path.replace(key, value)
    url = world.central.url(path)
    if path.startswith("/api/"):
        return requests.request(method, url, headers=world.bearer(who), timeout=10,
                                allow_redirects=False)
    data = {"csrf": csrf} if method == "POST" else None
    return browser.request(method, url, data=data, timeout=10, allow_redirects=False)


def _cases():
    cases = []
    for who in LOGINS:
        cases.append(pytest.param(who, "user", id=who))
    for who in TOKENS:
        cases.append(pytest.param(who, "token", id=who))
    return cases


@pytest.mark.parametrize(("who", "kind"), _cases())
def test_each_route_answers_each_role_as_the_permission_table_says(world, who, kind):
    app = world.central.embedded.app
    role = LOGINS[who][0] if kind == "user" else ("admin" if TOKENS[who][0] else "viewer")
    checked = 0
    for method, path, action in _guarded_routes(app):
        is_api = path.startswith("/api/")
        if is_api != (kind == "token"):
            continue
        browser, csrf = world.session(who) if kind == "user" else (None, None)
        answer = _request(world, method, path, who, csrf, browser)
        allowed = action in PERMISSIONS[role]
        if allowed:
            assert answer.status_code not in (401, 403), (who, method, path, answer.text[:300])
        else:
            assert answer.status_code == 403, (who, method, path, answer.status_code)
            assert "may not do this" in answer.json()["detail"], (who, path)
        checked += 1
    assert checked >= (5 if kind == "token" else 20)


def test_a_token_on_a_page_and_a_login_on_the_api_are_refused(world):
    page = requests.get(world.central.url("/people"), headers=world.bearer("admin-token"),
                        timeout=10, allow_redirects=False)
    assert page.status_code == 401  # a token is no login: the page wants a session
    browser, _ = world.session("admin")
    api = browser.get(world.central.url("/api/v1/audit"), timeout=10)
    assert api.status_code == 401


# --- scope -----------------------------------------------------------------------------------

SITE_ROUTES_PAGES = ["/", "/trends", "/rating-by-wait", "/reasons", "/compare", "/devices",
                     "/alerts", "/export", "/dashboard/queue.json", "/export/visits.csv",
                     "/export/ratings.csv"]
SITE_ROUTES_API = ["/api/v1/metrics", "/api/v1/alerts", "/api/v1/export/visits.csv",
                   "/api/v1/export/ratings.csv"]


def _same_but_name(a: requests.Response, b: requests.Response, name_a: str, name_b: str):
    assert a.status_code == b.status_code == 404
    assert a.headers["content-type"] == b.headers["content-type"]
    assert a.text.replace(name_a, "X") == b.text.replace(name_b, "X")


@pytest.mark.parametrize("path", SITE_ROUTES_PAGES)
@pytest.mark.parametrize("who", ["north-manager", "north-viewer"])
def test_a_site_outside_a_logins_scope_answers_as_a_missing_site(world, who, path):
    browser, _ = world.session(who)
    for accept in ("application/json", "text/html"):
        outside = browser.get(world.central.url(path), params={"site": SOUTH},
                              headers={"Accept": accept}, timeout=10)
        missing = browser.get(world.central.url(path), params={"site": NOWHERE},
                              headers={"Accept": accept}, timeout=10)
        _same_but_name(outside, missing, SOUTH, NOWHERE)
    inside = browser.get(world.central.url(path), params={"site": NORTH}, timeout=10)
    assert inside.status_code == 200


@pytest.mark.parametrize("path", SITE_ROUTES_API)
def test_a_site_outside_a_tokens_scope_answers_as_a_missing_site(world, path):
    headers = world.bearer("north-token")
    outside = requests.get(world.central.url(path), params={"site": SOUTH}, headers=headers,
                           timeout=10)
    missing = requests.get(world.central.url(path), params={"site": NOWHERE}, headers=headers,
                           timeout=10)
    _same_but_name(outside, missing, SOUTH, NOWHERE)
    assert requests.get(world.central.url(path), params={"site": NORTH}, headers=headers,
                        timeout=10).status_code == 200


def test_a_kiosk_of_another_site_is_as_unknown_as_one_never_enrolled(world):
    headers = world.bearer("north-token")
    url = world.central.url("/api/v1/metrics")
    outside = requests.get(url, params={"device": world.devices[SOUTH]}, headers=headers,
                           timeout=10)
    missing = requests.get(url, params={"device": "no-such-kiosk"}, headers=headers, timeout=10)
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["detail"].replace(world.devices[SOUTH], "X") == \
        missing.json()["detail"].replace("no-such-kiosk", "X")


def test_all_sites_totals_count_only_the_sites_in_scope(world):
    url = world.central.url("/api/v1/metrics")
    north_total = requests.get(url, headers=world.bearer("north-token"), timeout=10).json()
    north_site = requests.get(url, params={"site": NORTH}, headers=world.bearer("group-token"),
                              timeout=10).json()
    group_total = requests.get(url, headers=world.bearer("group-token"), timeout=10).json()
    figures = ("visits", "ratings", "happy_index", "pct_positive", "wait_median_min")
    assert {k: north_total[k] for k in figures} == {k: north_site[k] for k in figures}
    # Each site's completed visits and its one still waiting.
    assert north_total["visits"] == 6 + 1 and group_total["visits"] == 6 + 1 + 9 + 1

    exported = requests.get(world.central.url("/api/v1/export/visits.csv"),
                            headers=world.bearer("north-token"), timeout=10)
    sites = {row["site"] for row in csv.DictReader(io.StringIO(exported.text))}
    assert sites == {NORTH}

    alerts = requests.get(world.central.url("/api/v1/alerts"),
                          headers=world.bearer("north-token"), timeout=10).json()["alerts"]
    assert {a["site"] for a in alerts} == {NORTH}


def test_a_logins_pickers_and_pages_hold_only_its_sites(world):
    browser, _ = world.session("north-manager")
    today = browser.get(world.central.url("/"), timeout=10).text
    options = re.findall(r'<option value="([^"]*)"', today)
    assert options == ["", NORTH]
    assert SOUTH not in today
    # The clock pinned at the waiting visits' check-in: each site has one in today's queue.
    with time_machine.travel(world.waiting_since, tick=False):
        queue = browser.get(world.central.url("/dashboard/queue.json"), timeout=10).json()
        admin, _ = world.session("admin")
        every = admin.get(world.central.url("/dashboard/queue.json"), timeout=10).json()
    assert [desk["desk"] for desk in queue["desks"]] == [f"{NORTH} · desk-north"]
    assert [desk["desk"] for desk in every["desks"]] == [f"{NORTH} · desk-north",
                                                         f"{SOUTH} · desk-south"]
    assert [v["ticket"] for desk in every["desks"] for v in desk["visits"]] == ["N-100", "S-100"]
    alerts_page = browser.get(world.central.url("/alerts"), timeout=10).text
    assert f"alert-{world.alerts[NORTH]}" in alerts_page
    assert f"alert-{world.alerts[SOUTH]}" not in alerts_page
    assert 'action="/alerts/channels"' not in alerts_page  # an admin's form, not shown
    assert "ack-button" in alerts_page  # a manager acknowledges
    viewer, _ = world.session("north-viewer")
    viewer_alerts = viewer.get(world.central.url("/alerts"), timeout=10).text
    assert "ack-button" not in viewer_alerts and 'action="/alerts/rules"' not in viewer_alerts
    # A People or Audit link is not shown (and the routes refuse it anyway, above).
    assert 'href="/people' not in today and 'href="/audit' not in today


def test_a_manager_cannot_act_on_another_sites_alert(world):
    browser, csrf = world.session("north-manager")
    url = world.central.url(f"/alerts/{world.alerts[SOUTH]}/ack")
    outside = browser.post(url, data={"csrf": csrf}, timeout=10, allow_redirects=False)
    missing = browser.post(world.central.url("/alerts/999999/ack"), data={"csrf": csrf},
                           timeout=10, allow_redirects=False)
    assert outside.status_code == missing.status_code == 422
    assert outside.json()["detail"].replace(str(world.alerts[SOUTH]), "X") == \
        missing.json()["detail"].replace("999999", "X")
    mine = browser.post(world.central.url(f"/alerts/{world.alerts[NORTH]}/ack"),
                        data={"csrf": csrf}, timeout=10, allow_redirects=False)
    assert mine.status_code == 303
    rows = world.central.rows("SELECT actor, action, site FROM audit WHERE action = "
                              "'alert.acknowledge'")
    assert rows == [{"actor": "user:north-manager", "action": "alert.acknowledge",
                     "site": NORTH}]
