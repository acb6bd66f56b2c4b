"""Days and hours are the site's local time on the dashboard, across a daylight-saving change
(London's 25-hour 25 October 2026) and in a zone whose offset is not whole hours (India, where
the hourly rollups cannot be cut and the rows are read): each day's and each hour's figures are
kiosk.shared.metrics' figures over the rows that fall in it, by the site's clock."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_optional, parse_rfc3339
from sync.central import auth
from sync.central.dashboard import panels
from sync.central.ingest import ingest_batch
from sync.central.sites import get_site, update_site
from sync.central.storage import CentralStore
from tests.support.wire_events import wire_event

START = datetime(2026, 10, 23, 20, 0, tzinfo=UTC)
FIRST, LAST = date(2026, 10, 24), date(2026, 10, 26)
KEYS = ("visits", "checked_out", "waits", "wait_median_min", "wait_p90_min", "ratings",
        "happy_index", "pct_positive", "response_rate")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = CentralStore(tmp_path_factory.mktemp("local-time"))
    rng = random.Random(25)
    with store.write() as db:
        update_site(db, "London", timezone="Europe/London")
        update_site(db, "Delhi", timezone="Asia/Kolkata")
        devices = [auth.add_device(db, site, "Desk 1")[0] for site in ("London", "Delhi")]
    for device in devices:
        events, seq = [], 0
        at = START
        while at < START + timedelta(days=3, hours=8):
            visit_id = str(uuid.uuid4())
            called = at + timedelta(minutes=rng.uniform(1, 40))
            out = called + timedelta(minutes=rng.uniform(5, 20))
            rating = {"score": rng.randint(1, 5), "scale": 5, "tags": [], "misuse": False}
            for kind, when, data in (
                ("visit.checked_in", at, {"ticket": f"T-{seq:04d}"}),
                ("visit.called", called, {}),
                ("visit.checked_out", out, {}),
                ("rating.submitted", out + timedelta(minutes=1), rating),
            ):
                seq += 1
                events.append(wire_event(seq, kind, when, visit_id, data))
            at += timedelta(minutes=rng.uniform(10, 50))
        for start in range(0, len(events), 1000):
            ingest_batch(store, device, events[start:start + 1000], START + timedelta(days=4))
    yield store
    store.close()


def _expected(db, site: str, key_of) -> dict[str, dict]:
    """kiosk.shared.metrics.report per local day (or hour) over the site's own rows."""
    zone = ZoneInfo(get_site(db, site).timezone)
    first, last = FIRST.isoformat(), LAST.isoformat()
    visits, ratings = defaultdict(list), defaultdict(list)
    for row in db.query("SELECT * FROM visits WHERE site = ?", [site]):
        local = parse_rfc3339(row["checked_in_at"]).astimezone(zone)
        if first <= local.date().isoformat() <= last:
            visits[key_of(local)].append(metrics.VisitTimes(
                checked_in_at=parse_rfc3339(row["checked_in_at"]),
                called_at=parse_optional(row["called_at"]),
                checked_out_at=parse_optional(row["checked_out_at"]),
                cancelled=row["cancel_reason"] is not None))
    for row in db.query("SELECT * FROM ratings WHERE site = ?", [site]):
        local = parse_rfc3339(row["occurred_at"]).astimezone(zone)
        if first <= local.date().isoformat() <= last:
            ratings[key_of(local)].append(metrics.RatingRow(
                score=row["score"], scale=row["scale"], misuse=bool(row["misuse"]),
                linked=row["visit_id"] is not None, wait_min=row["wait_min"]))
    return {
        key: metrics.report(visits.get(key, []), ratings.get(key, []), 15.0)
        for key in set(visits) | set(ratings)
    }


@pytest.mark.parametrize("site", ["London", "Delhi"])
def test_days_and_hours_are_the_sites_local_time(store, site):
    db = store.db
    trends = panels.trends(db, [get_site(db, site)], FIRST, LAST, None)
    by_day = _expected(db, site, lambda local: local.date().isoformat())
    by_hour = _expected(db, site, lambda local: f"{local.hour:02d}:00")
    assert [d["day"] for d in trends["days"]] == ["2026-10-24", "2026-10-25", "2026-10-26"]
    for day in trends["days"]:
        expected = by_day[day["day"]]
        assert {k: day[k] for k in KEYS} == {k: expected[k] for k in KEYS}, day["day"]
    assert {h["hour"] for h in trends["hours"]} == set(by_hour)
    for hour in trends["hours"]:
        expected = by_hour[hour["hour"]]
        assert {k: hour[k] for k in KEYS} == {k: expected[k] for k in KEYS}, hour["hour"]


def test_londons_clock_change_day_has_25_hours_of_visits(store):
    """1:00-2:00 happens twice on 25 October: both hours' visits count on that day."""
    db = store.db
    start, end = metrics.local_day_bounds(date(2026, 10, 25), "Europe/London")
    assert end - start == timedelta(hours=25)
    trends = panels.trends(db, [get_site(db, "London")], date(2026, 10, 25),
                            date(2026, 10, 25), None)
    rows = db.execute(
        "SELECT COUNT(*) FROM visits WHERE site = 'London' AND checked_in_at >= ? "
        "AND checked_in_at < ?",
        [start.strftime("%Y-%m-%dT%H:%M:%S.000Z"), end.strftime("%Y-%m-%dT%H:%M:%S.000Z")],
    ).fetchone()[0]
    assert trends["days"][0]["visits"] == rows > 0
