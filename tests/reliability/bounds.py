"""What the hostile-clock and impossible-visit scenarios share: a manager's dashboard session
on the live store, every page a manager reads, and the bounds every figure must keep."""

from __future__ import annotations

from datetime import datetime

import requests

from kiosk.shared.timeutil import parse_rfc3339
from sync.central.dashboard import accounts
from sync.central.dashboard.web import SESSION_COOKIE
from tests.support.central_server import LiveCentral

# Every page and JSON answer a manager reads, on their default range.
DASHBOARD_PATHS = ("/", "/dashboard/queue.json", "/trends", "/rating-by-wait", "/reasons",
                   "/compare", "/devices", "/export", "/export/visits.csv",
                   "/export/ratings.csv")
PERCENTAGES = ("happy_index", "pct_positive", "pct_negative", "response_rate",
               "pct_within_target")
WAITS = ("wait_median_min", "wait_p90_min")


def manager_session(server: LiveCentral) -> requests.Session:
    """A logged-in dashboard session (opened in the store, as a login would)."""
    with server.embedded.store.write() as db:
        user = accounts.add_user(db, "manager", "calm waters 2026")
        session_id = accounts.open_session(db, user)
    session = requests.Session()
    session.cookies.set(SESSION_COOKIE, session_id)
    return session


def dashboard_statuses(server: LiveCentral, session: requests.Session) -> dict[str, int]:
    return {path: session.get(server.url(path), timeout=30).status_code
            for path in DASHBOARD_PATHS}


def out_of_bounds(figures: dict, longest_allowed_min: float | None) -> list[str]:
    """Each figure of ``/api/v1/metrics`` outside its bounds, named (empty when all hold):
    percentages 0-100, waits >= 0, the longest current wait no longer than the wall clock
    allows (``longest_allowed_min``; None: nobody may be waiting)."""
    wrong = []
    for name in PERCENTAGES:
        value = figures[name]
        if value is not None and not 0 <= value <= 100:
            wrong.append(f"{name} = {value}")
    for name in WAITS:
        value = figures[name]
        if value is not None and value < 0:
            wrong.append(f"{name} = {value}")
    longest = figures["longest_current_wait_min"]
    if longest is not None and (
        longest < 0 or longest_allowed_min is None or longest > longest_allowed_min + 0.1
    ):
        wrong.append(f"longest_current_wait_min = {longest} (allowed {longest_allowed_min})")
    for bucket in figures["by_wait_bucket"]:
        for name in ("pct_positive", "happy_index"):
            value = bucket[name]
            if value is not None and not 0 <= value <= 100:
                wrong.append(f"{bucket['bucket']} {name} = {value}")
    return wrong


def minutes_since(instant: str, now: datetime) -> float:
    return (now - parse_rfc3339(instant)).total_seconds() / 60
