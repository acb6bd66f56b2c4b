"""Sites in zones whose offset is not whole hours (India +5:30; St John's -2:30, then -3:30 after
its clock change on 1 November 2026): the hourly rollups cannot be cut at their local hours, so
the dashboard reads the rows and computes each row's local hour in SQL. Trends, Compare and the
follow-up reasons must give, on either engine, the figures computed the slow way: every row's
local time in Python, then kiosk.shared.metrics over the rows that fall in each day or hour."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_optional, parse_rfc3339
from kiosk.shared.wire import DEFAULT_TAGS
from sync.central import auth
from sync.central.dashboard import panels
from sync.central.dashboard.windows import hour_map, windows
from sync.central.ingest import ingest_batch
from sync.central.sites import SiteConfig, get_site, update_site
from tests.support.wire_events import wire_event

ZONES = {"Delhi": "Asia/Kolkata", "St John's": "America/St_Johns"}
START = datetime(2026, 10, 30, 16, 0, tzinfo=UTC)
FIRST, LAST = date(2026, 10, 31), date(2026, 11, 2)
KEYS = ("visits", "checked_out", "waits", "wait_median_min", "wait_p90_min", "ratings",
        "happy_index", "pct_positive", "response_rate")


@pytest.fixture
def store(central_store):
    """Two desks a site, a visit every 20-70 minutes around the clock for four days, each
    rated (negative ratings with follow-up tags, some flagged misuse)."""
    rng = random.Random(14)
    with central_store.write() as db:
        for site, zone in ZONES.items():
            update_site(db, site, timezone=zone)
        devices = [auth.add_device(db, site, f"{site} desk {n}")[0]
                   for site in ZONES for n in (1, 2)]
    for device in devices:
        events, seq, at = [], 0, START
        while at < START + timedelta(days=4):
            visit_id = str(uuid.uuid4())
            called = at + timedelta(minutes=rng.uniform(1, 40))
            out = called + timedelta(minutes=rng.uniform(5, 20))
            score = rng.randint(1, 5)
            tags = rng.sample(DEFAULT_TAGS, rng.randint(1, 2)) if score <= 2 else []
            rating = {"score": score, "scale": 5, "tags": tags, "misuse": rng.random() < 0.05}
            for kind, when, data in (
                ("visit.checked_in", at, {"ticket": f"T-{seq:04d}"}),
                ("visit.called", called, {}),
                ("visit.checked_out", out, {}),
                ("rating.submitted", out + timedelta(minutes=1), rating),
            ):
                seq += 1
                events.append(wire_event(seq, kind, when, visit_id, data))
            at += timedelta(minutes=rng.uniform(20, 70))
        for first in range(0, len(events), 1000):
            ingest_batch(central_store, device, events[first:first + 1000],
                         START + timedelta(days=5))
    return central_store


def _local_rows(db, site: str):
    """(local time, row) of the site's visits and ratings in FIRST..LAST by its own clock."""
    zone = ZoneInfo(get_site(db, site).timezone)
    first, last = FIRST.isoformat(), LAST.isoformat()

    def local(rows, column):
        for row in rows:
            moment = parse_rfc3339(row[column]).astimezone(zone)
            if first <= moment.date().isoformat() <= last:
                yield moment, row

    visits = list(local(db.query("SELECT * FROM visits WHERE site = ? AND voided = 0", [site]),
                        "checked_in_at"))
    ratings = list(local(db.query("SELECT * FROM ratings WHERE site = ?", [site]),
                         "occurred_at"))
    return visits, ratings


def _expected(db, sites, key_of) -> dict[str, dict]:
    """kiosk.shared.metrics.report per key (of a row's local time, or of its row)."""
    visits, ratings = defaultdict(list), defaultdict(list)
    for site in sites:
        site_visits, site_ratings = _local_rows(db, site)
        for local, row in site_visits:
            visits[key_of(local, row)].append(metrics.VisitTimes(
                checked_in_at=parse_rfc3339(row["checked_in_at"]),
                called_at=parse_optional(row["called_at"]),
                checked_out_at=parse_optional(row["checked_out_at"]),
                cancelled=row["cancel_reason"] is not None))
        for local, row in site_ratings:
            ratings[key_of(local, row)].append(metrics.RatingRow(
                score=row["score"], scale=row["scale"], misuse=bool(row["misuse"]),
                linked=row["visit_id"] is not None, wait_min=row["wait_min"]))
    return {
        key: metrics.report(visits.get(key, []), ratings.get(key, []), 15.0)
        for key in set(visits) | set(ratings)
    }


def test_these_zones_are_read_from_the_rows_not_the_rollups():
    for zone in ZONES.values():
        window = windows([SiteConfig(name="x", timezone=zone)], FIRST, LAST)[0]
        assert hour_map(zone, window.start, window.end) is None


@pytest.mark.parametrize("site", list(ZONES))
def test_trends_days_and_hours_are_the_sites_local_time(store, site):
    db = store.db
    trends = panels.trends(db, [get_site(db, site)], FIRST, LAST, None)
    by_day = _expected(db, [site], lambda local, row: local.date().isoformat())
    by_hour = _expected(db, [site], lambda local, row: f"{local.hour:02d}:00")
    assert [d["day"] for d in trends["days"]] == ["2026-10-31", "2026-11-01", "2026-11-02"]
    for day in trends["days"]:
        expected = by_day[day["day"]]
        assert {k: day[k] for k in KEYS} == {k: expected[k] for k in KEYS}, day["day"]
    assert {h["hour"] for h in trends["hours"]} == set(by_hour)
    for hour in trends["hours"]:
        expected = by_hour[hour["hour"]]
        assert {k: hour[k] for k in KEYS} == {k: expected[k] for k in KEYS}, hour["hour"]


def test_compare_sites_and_desks(store):
    db = store.db
    sites = [get_site(db, site) for site in ZONES]
    names = {row["id"]: row["name"] for row in db.query("SELECT id, name FROM devices")}
    compared = panels.compare(db, sites, FIRST, LAST, names)
    by_site = _expected(db, list(ZONES), lambda local, row: row["site"])
    by_desk = _expected(db, list(ZONES), lambda local, row: names[row["device_id"]])
    assert {row["name"] for row in compared["sites"]} == set(ZONES)
    for row in compared["sites"]:
        assert {k: row[k] for k in KEYS} == {k: by_site[row["name"]][k] for k in KEYS}
    assert {row["name"] for row in compared["desks"]} == set(by_desk)
    for row in compared["desks"]:
        assert {k: row[k] for k in KEYS} == {k: by_desk[row["name"]][k] for k in KEYS}


def test_follow_up_reasons_per_local_day(store):
    db = store.db
    sites = [get_site(db, site) for site in ZONES]
    reasons = panels.followup_reasons(db, sites, FIRST, LAST, None)
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    negatives = 0
    for site in ZONES:
        for local, row in _local_rows(db, site)[1]:
            if row["misuse"] or not metrics.is_negative(row["score"], row["scale"]):
                continue
            negatives += 1
            for tag in set(json.loads(row["tags"])):
                per_day[local.date().isoformat()][tag] += 1
    assert negatives > 0
    assert reasons["negatives"] == negatives
    assert reasons["days"] == [{"day": day, "tags": dict(per_day[day])} for day in sorted(per_day)]
    totals: dict[str, int] = defaultdict(int)
    for tags in per_day.values():
        for tag, n in tags.items():
            totals[tag] += n
    assert {row["tag"]: row["n"] for row in reasons["tags"]} == dict(totals)
