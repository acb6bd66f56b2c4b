"""Who may do what, attacked from outside: no, wrong and revoked tokens on every API route;
a device writing into another site's visits; a kiosk token knocking on dashboard and admin
routes; token guessing at speed (rate limited with 429)."""

from __future__ import annotations

import secrets
import uuid

import pytest
import requests
from fastapi.routing import APIRoute
from starlette.routing import Route

from sync.central import auth
from sync.central.security import AuthFailures
from tests.reliability import figures
from tests.support.wire_events import WireEvents, at

DEVICE_ROUTES = [("POST", "/api/v1/events"), ("GET", "/api/v1/config")]
REPORTING_ROUTES = [("GET", "/api/v1/metrics"), ("GET", "/api/v1/export/visits.csv"),
                    ("GET", "/api/v1/export/ratings.csv")]
# Open to anyone by design: the login form, its one-time link, static files, the spec, and
# enrolment by code (a kiosk with no token asks for a code; a manager's approval is what
# gives it a token).
PUBLIC_PATHS = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
                "/login", "/login/once", "/login/totp", "/password/set",
                "/static/dashboard/plotly.min.js",
                "/static/dashboard/fonts/{name}", "/static/dashboard/{name}",
                "/api/v1/enrol", "/api/v1/enrol/token"}


def _call(server, method: str, path: str, token: str | None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {"events": [WireEvents().heartbeat(at(0))]} if method == "POST" else None
    return requests.request(method, server.url(path), headers=headers, json=body,
                            allow_redirects=False, timeout=10, **kwargs)


def test_no_wrong_or_revoked_token_gets_401_on_every_api_route(central_server):
    central_server.embedded.app.state.auth_failures.limit = 1000  # refusals, not rate limits
    device = central_server.add_device()
    central_server.revoke_device(device.device_id)
    with central_server.embedded.store.write() as db:
        reporting_id, reporting = auth.add_reporting_token(db, "revoked")
        auth.revoke_reporting_token(db, reporting_id)
    refused = 0
    for routes, revoked in ((DEVICE_ROUTES, device.token), (REPORTING_ROUTES, reporting)):
        for method, path in routes:
            for token in (None, "dev_" + secrets.token_urlsafe(32), "rep_wrong", "", revoked):
                response = _call(central_server, method, path, token)
                assert response.status_code == 401, (method, path, token, response.text)
                assert response.headers["WWW-Authenticate"] == "Bearer"
                refused += 1
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]
    figures.record("auth_refusals", title="No, wrong and revoked tokens on every API route",
                   figures={"requests_refused_401": refused,
                            "routes": len(DEVICE_ROUTES) + len(REPORTING_ROUTES)})


def test_a_kiosk_token_never_opens_a_dashboard_or_admin_route(central_server):
    device = central_server.add_device()
    tried = 0
    for template, methods in _all_routes(central_server.embedded.app.routes):
        if template in PUBLIC_PATHS or any((m, template) in DEVICE_ROUTES for m in methods):
            continue
        path = template.replace("{name}", "x")
        for method in methods - {"HEAD"}:
            for accept in ("text/html", "application/json"):
                response = requests.request(
                    method, central_server.url(path), allow_redirects=False, timeout=10,
                    headers={**device.headers, "Accept": accept},
                    # The token tried as a session cookie too: it must not log anybody in.
                    cookies={"dashboard_session": device.token},
                )
                tried += 1
                assert response.status_code in (303, 401, 403), (method, path, response.status_code)
                if response.status_code == 303:
                    assert response.headers["location"].startswith("/login")
    assert tried >= 10  # the metrics API, the exports and the dashboard's pages


def _all_routes(routes, prefix: str = ""):
    """(path, methods) of every route, through FastAPI's included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _all_routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute | Route):
            yield prefix + route.path, set(route.methods or ())


def test_a_device_cannot_change_another_sites_visits(central_server):
    home = central_server.add_device(site="Home Clinic", name="Desk 1")
    intruder = central_server.add_device(site="Other Clinic", name="Desk 9")
    theirs, ours = WireEvents(), WireEvents()
    visit_id = str(uuid.uuid4())
    early = ours.cancelled(visit_id, at(1))  # arrives before the visit it targets exists
    assert _statuses(central_server.post_events(intruder, [early])) in (["stored"], ["rejected"])
    central_server.post_events(home, [theirs.checked_in(visit_id, at(0)),
                                      theirs.called(visit_id, at(10))])

    attacks = [ours.undone(visit_id, at(11), "visit.checked_in"),
               ours.cancelled(visit_id, at(12)),
               ours.corrected(visit_id, at(13), "checked_in_at", at(9)),
               ours.checked_out(visit_id, at(14)),
               ours.rating(1, at(15), visit_id=visit_id)]
    response = central_server.post_events(intruder, attacks)

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 5
    assert all("another site" in r["reason"] for r in results)
    (visit,) = central_server.rows(
        "SELECT status, voided, cancel_reason, checked_in_at, wait_min FROM visits WHERE id = ?",
        [visit_id])
    assert visit == {"status": "in_chair", "voided": 0, "cancel_reason": None,
                     "checked_in_at": at(0), "wait_min": 10.0}
    assert central_server.rows("SELECT COUNT(*) AS n FROM ratings") == [{"n": 0}]


def _statuses(response: requests.Response) -> list[str]:
    return [result["status"] for result in response.json()["results"]]


def test_token_guessing_is_rate_limited_per_address(central_server):
    device = central_server.add_device()
    limit = central_server.embedded.app.state.auth_failures.limit
    answers = []
    for n in range(limit + 30):
        path = "/api/v1/events" if n % 2 else "/api/v1/metrics"
        method = "POST" if n % 2 else "GET"
        response = _call(central_server, method, path, "dev_" + secrets.token_urlsafe(32))
        answers.append(response.status_code)
    assert answers == [401] * limit + [429] * 30
    blocked = _call(central_server, "POST", "/api/v1/events", "dev_guess")
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert "Too many refused tokens" in blocked.json()["detail"]
    # A valid token is looked up first: the kiosk behind the same address still syncs.
    assert _call(central_server, "POST", "/api/v1/events", device.token).status_code == 200
    figures.record("token_brute_force", title="Token guessing from one address",
                   figures={"guesses": limit + 30, "answered_401": limit,
                            "answered_429": 30, "limit_per_minute": limit})


def test_the_failure_window_slides():
    now = [0.0]
    failures = AuthFailures(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        failures.failed("10.0.0.1")
    assert failures.retry_after("10.0.0.1") == 60
    assert failures.retry_after("10.0.0.2") == 0
    now[0] = 59.5
    assert failures.retry_after("10.0.0.1") == 1
    now[0] = 60.0
    assert failures.retry_after("10.0.0.1") == 0


@pytest.mark.parametrize("refusal", ["403 for the wrong kind of token"])
def test_a_valid_token_of_the_wrong_kind_does_not_count_as_a_guess(central_server, refusal):
    device = central_server.add_device()
    limit = central_server.embedded.app.state.auth_failures.limit
    for _ in range(limit + 5):
        assert _call(central_server, "GET", "/api/v1/metrics", device.token).status_code == 403
    assert _call(central_server, "POST", "/api/v1/events", device.token).status_code == 200
