"""Trends' appointment counts per local day, across London's 25-hour 25 October 2026 and in
Kolkata (+05:30, where the rows' own local time is computed in SQL): each day's counts are
kiosk.shared.metrics.appointment_report's over the visits checked in on that day, by the
site's clock."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_optional, parse_rfc3339, to_rfc3339
from sync.central import auth
from sync.central.dashboard import panels
from sync.central.ingest import ingest_batch
from sync.central.sites import get_site, update_site
from sync.central.storage import CentralStore
from tests.support.wire_events import wire_event

START = datetime(2026, 10, 23, 20, 0, tzinfo=UTC)
FIRST, LAST = date(2026, 10, 24), date(2026, 10, 26)
COUNT_KEYS = ("appointments", "arrivals_early", "arrivals_on_time", "arrivals_late",
              "adjusted_waits", "pct_seen_within_15_min")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = CentralStore(tmp_path_factory.mktemp("appointment-days"))
    rng = random.Random(17)
    with store.write() as db:
        update_site(db, "London", timezone="Europe/London")
        update_site(db, "Delhi", timezone="Asia/Kolkata")
        devices = [auth.add_device(db, site, "Desk 1")[0] for site in ("London", "Delhi")]
    for device in devices:
        events, seq, at = [], 0, START
        while at < START + timedelta(days=3, hours=8):
            visit_id = str(uuid.uuid4())
            booked = None if rng.random() < 0.25 else at + timedelta(minutes=rng.uniform(-25, 25))
            called = at + timedelta(minutes=rng.uniform(0, 35))
            steps = [("visit.checked_in", at, {"ticket": f"T-{seq % 9999:04d}",
                                               "appointment_at": booked and to_rfc3339(booked)})]
            if rng.random() < 0.9:
                steps += [("visit.called", called, {}),
                          ("visit.checked_out", called + timedelta(minutes=12), {})]
            for kind, when, data in steps:
                seq += 1
                events.append(wire_event(seq, kind, when, visit_id, data))
            at += timedelta(minutes=rng.uniform(10, 50))
        ingest_batch(store, device, events, START + timedelta(days=4))
    yield store
    store.close()


def _expected(store, site: str) -> dict[str, dict]:
    zone = ZoneInfo(get_site(store.db, site).timezone)
    per_day = defaultdict(list)
    for row in store.db.query("SELECT * FROM visits WHERE site = ? AND voided = 0", [site]):
        checked_in = parse_rfc3339(row["checked_in_at"])
        per_day[checked_in.astimezone(zone).date().isoformat()].append(metrics.VisitTimes(
            checked_in_at=checked_in, called_at=parse_optional(row["called_at"]),
            checked_out_at=parse_optional(row["checked_out_at"]),
            appointment_at=parse_optional(row["appointment_at"]),
            cancelled=row["cancel_reason"] is not None))
    return {day: metrics.appointment_report(visits) for day, visits in per_day.items()}


@pytest.mark.parametrize("site", ["London", "Delhi"])
def test_each_local_day_counts_its_own_booked_visits(store, site):
    expected = _expected(store, site)
    data = panels.trends(store.db, [get_site(store.db, site)], FIRST, LAST, None)
    for day in data["days"]:
        want = expected[day["day"]]
        assert {key: day[key] for key in COUNT_KEYS} == {key: want[key] for key in COUNT_KEYS}
        assert day["appointments"] > 5
    assert [day["day"] for day in data["days"]] == ["2026-10-24", "2026-10-25", "2026-10-26"]
