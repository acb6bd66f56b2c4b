"""A real central store with two sites (North, South), their kiosks' visits, ratings and an
alert each, and one login or reporting token of every role and scope, for the access tests.

Logins get their sessions straight from ``accounts.open_session`` (the table the login form
writes), so each request can start from a fresh session without paying for Argon2 each time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from kiosk.shared.timeutil import utc_now
from sync.central import auth
from sync.central.alerts import lifecycle
from sync.central.alerts.engine import Finding
from sync.central.dashboard import accounts
from sync.central.ingest import ingest_batch
from sync.central.permissions import EVERY_SITE, Scope
from sync.central.sites import update_site
from tests.support.central_server import LiveCentral
from tests.support.wire_events import wire_event

NORTH, SOUTH, NOWHERE = "North", "South", "Nowhere"
PASSWORD = "quiet harbour lanterns"
# name -> (role, scope): one of each role, with one site or every site.
LOGINS = {
    "admin": ("admin", EVERY_SITE),
    "north-manager": ("manager", Scope(frozenset({NORTH}))),
    "north-viewer": ("viewer", Scope(frozenset({NORTH}))),
    "group-viewer": ("viewer", EVERY_SITE),
}
# name -> (admin token?, scope)
TOKENS = {
    "admin-token": (True, EVERY_SITE),
    "group-token": (False, EVERY_SITE),
    "north-token": (False, Scope(frozenset({NORTH}))),
}


@dataclass
class AccessWorld:
    central: LiveCentral
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, accounts.User] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    # When each site's one waiting visit checked in: a queue test pins the clock there, so
    # the visit is in "today's" queue whatever the hour the suite runs.
    waiting_since: datetime | None = None

    def session(self, login: str) -> tuple[requests.Session, str]:
        """A browser-like session logged in as ``login``, and its CSRF token."""
        with self.central.embedded.store.write() as db:
            session_id = accounts.open_session(db, self.users[login])
            csrf = accounts.find_session(db, session_id).csrf_token
        browser = requests.Session()
        browser.cookies.set("dashboard_session", session_id)
        return browser, csrf

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[token]}"}


def _visits(store, device: auth.Device, count: int, prefix: str) -> None:
    """``count`` visits in the last hour, each called, checked out and rated."""
    now = utc_now()
    start = now - timedelta(minutes=60)
    events, seq = [], 0
    for i in range(count):
        visit = str(uuid.uuid4())
        for kind, minute, data in (
            ("visit.checked_in", i, {"ticket": f"{prefix}-{i + 1:03d}"}),
            ("visit.called", i + 5, {}),
            ("visit.checked_out", i + 15, {}),
            ("rating.submitted", i + 16,
             {"score": 1 + i % 5, "scale": 5, "tags": [], "misuse": False}),
        ):
            seq += 1
            events.append(wire_event(seq, kind, start + timedelta(minutes=minute), visit, data))
    ingest_batch(store, device, events, now)


def _waiting(store, device: auth.Device, at: datetime, ticket: str) -> None:
    """One visit checked in at ``at`` and still waiting: the live queue's content."""
    event = wire_event(1000, "visit.checked_in", at, str(uuid.uuid4()), {"ticket": ticket})
    ingest_batch(store, device, [event], at)


def build_world(central: LiveCentral) -> AccessWorld:
    world = AccessWorld(central)
    store = central.embedded.store
    with store.write() as db:
        for site in (NORTH, SOUTH):
            update_site(db, site, timezone="Europe/London")
            device, _ = auth.add_device(db, site, f"desk-{site.lower()}")
            world.devices[site] = device.id
        for name, (role, scope) in LOGINS.items():
            world.users[name] = accounts.add_user(db, name, PASSWORD, role=role, scope=scope)
        for name, (admin, scope) in TOKENS.items():
            world.tokens[name] = auth.add_reporting_token(db, name, scope, admin=admin)[1]
        for site in (NORTH, SOUTH):
            finding = Finding("negative_burst", "", f"A test alert at {site}", {"n": 4})
            world.alerts[site] = lifecycle._open(db, site, "negative_burst", finding, "{}",
                                                 utc_now())
    for site, count in ((NORTH, 6), (SOUTH, 9)):
        _visits(store, auth.Device(world.devices[site], site, f"desk-{site.lower()}"), count,
                site[0])
    world.waiting_since = utc_now()
    for site in (NORTH, SOUTH):
        _waiting(store, auth.Device(world.devices[site], site, f"desk-{site.lower()}"),
                 world.waiting_since, f"{site[0]}-100")
    return world
