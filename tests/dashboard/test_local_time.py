"""Days and hours are the site's local time on the dashboard, across a daylight-saving change
(London's 25-hour 25 October 2026, New York's 1 November), in zones far from UTC either way
(Auckland +13, Kiritimati +14, Pago Pago -11: a local day made of parts of two UTC days, which
the database groups, ``windows.local_group_sql``) and in a zone whose offset is not whole hours
(India, where the hourly rollups cannot be cut and the rows are read): each day's and each
hour's figures are kiosk.shared.metrics' figures over the rows that fall in it, by the site's
clock, on both engines."""

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
from sync.central.dashboard import local_sums, panels, readers
from sync.central.dashboard.windows import Window, windows
from sync.central.ingest import ingest_batch
from sync.central.sites import get_site, update_site
from sync.central.storage import CentralStore
from tests.support.filled_stores import FilledStores
from tests.support.wire_events import wire_event

START = datetime(2026, 10, 22, 20, 0, tzinfo=UTC)
FIRST, LAST = date(2026, 10, 24), date(2026, 11, 2)
ZONES = {"London": "Europe/London", "Delhi": "Asia/Kolkata", "New York": "America/New_York",
         "Auckland": "Pacific/Auckland", "Kiritimati": "Pacific/Kiritimati",
         "Pago Pago": "Pacific/Pago_Pago"}
KEYS = ("visits", "checked_out", "waits", "wait_median_min", "wait_p90_min", "ratings",
        "happy_index", "pct_positive", "response_rate")


def _fill(store: CentralStore) -> None:
    """Six sites, one desk each, in ZONES' zones; a visit every 10-50 minutes for 12 days and 8
    hours from START, each called, checked out and rated."""
    rng = random.Random(25)
    with store.write() as db:
        for site, zone in ZONES.items():
            update_site(db, site, timezone=zone)
        devices = [auth.add_device(db, site, "Desk 1")[0] for site in ZONES]
    for device in devices:
        events, seq = [], 0
        at = START
        while at < START + timedelta(days=12, hours=8):
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
            ingest_batch(store, device, events[start:start + 1000], START + timedelta(days=13))


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    stores = FilledStores(_fill, tmp_path_factory)
    yield stores
    stores.close()


@pytest.fixture
def store(filled, central_engine, tmp_path, request):
    """The filled store, a copy for this test alone (filled once per engine)."""
    with filled.copy(central_engine, tmp_path, request) as store:
        yield store


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


def _check_trends(db, site: str) -> None:
    trends = panels.trends(db, [get_site(db, site)], FIRST, LAST, None)
    by_day = _expected(db, site, lambda local: local.date().isoformat())
    by_hour = _expected(db, site, lambda local: f"{local.hour:02d}:00")
    assert [d["day"] for d in trends["days"]] == [
        (FIRST + timedelta(days=n)).isoformat() for n in range((LAST - FIRST).days + 1)]
    for day in trends["days"]:
        expected = by_day[day["day"]]
        assert {k: day[k] for k in KEYS} == {k: expected[k] for k in KEYS}, day["day"]
    assert {h["hour"] for h in trends["hours"]} == set(by_hour)
    for hour in trends["hours"]:
        expected = by_hour[hour["hour"]]
        assert {k: hour[k] for k in KEYS} == {k: expected[k] for k in KEYS}, hour["hour"]


def test_days_and_hours_are_the_sites_local_time(store):
    for site in ZONES:
        _check_trends(store.db, site)
    # Again with every group's waits cached (``wait_cache.LOCAL_WAITS``): the same figures.
    for site in ZONES:
        _check_trends(store.db, site)


def test_a_group_changed_after_it_was_cached_is_read_again(store):
    """Two visits called ten hours later than they were after Trends cached their days and
    hours (as a correction would): the next Trends shows the new waits (the groups' sums
    changed, so their cached waits are not used)."""
    db = store.db
    _check_trends(db, "Auckland")
    later = timedelta(hours=10)
    with store.write() as writing:
        for visit_id, called, out, wait in writing.execute(
                "SELECT id, called_at, checked_out_at, wait_min FROM visits "
                "WHERE site = 'Auckland' AND ticket IN ('T-0004', 'T-0400')").fetchall():
            writing.execute(
                "UPDATE visits SET called_at = ?, checked_out_at = ?, wait_min = ? WHERE id = ?",
                [to_rfc3339(parse_rfc3339(called) + later), to_rfc3339(parse_rfc3339(out) + later),
                 wait + 600, visit_id])
    assert db.execute("SELECT COUNT(*) FROM visits WHERE site = 'Auckland' "
                      "AND wait_min > 600").fetchone()[0] == 2
    _check_trends(db, "Auckland")


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


def test_a_day_cut_by_a_windows_ends_is_not_shared_with_the_whole_day(store):
    """A window that starts or ends inside a local day keeps that day's waits for itself: the
    whole day's cached waits are not its, and its are not the whole day's."""
    db = store.db
    site = get_site(db, "London")
    (whole,) = windows([site], date(2026, 10, 27), date(2026, 10, 27))
    cut = Window(site, whole.start, whole.start[:11] + "12:00:00.000Z")
    full = readers.wait_lists_by(db, [whole], ("day",))["day"]["2026-10-27"]
    part = readers.wait_lists_by(db, [cut], ("day",))["day"]["2026-10-27"]
    assert 0 < len(part) < len(full)
    assert readers.wait_lists_by(db, [whole], ("day",))["day"]["2026-10-27"] == full


CUTS = ("2026-10-22T00", "2026-10-25T01", "2026-11-01T06", "2026-11-02T11", "2026-12-01T00")


def test_the_settled_part_kept_and_the_recent_part_read_add_up_to_the_days(store, monkeypatch):
    """The per-site rollups' hours before the cut are kept between requests
    (``local_sums.SETTLED``), those after it read every time: wherever the cut falls (before
    the window, in London's repeated hour, at New York's change, in the last local day of a
    zone 14 hours ahead, after the window), the days and hours are still the rows' own, cold
    and warm; and a visit a kiosk sends late into a kept hour is counted on the next read.
    One store for every cut (building it is most of the test's time, and the calendar sweep
    runs it at every instant; the filled store is copied, not filled again, for each test)."""
    cuts = [CUTS[0]]
    monkeypatch.setattr(local_sums, "settled_from", lambda: cuts[-1])
    for cut in CUTS:
        cuts.append(cut)
        local_sums.SETTLED.clear()
        for _ in range(2):
            for site in ZONES:
                _check_trends(store.db, site)
    with store.write() as db:
        device = auth.add_device(db, "Kiritimati", "Late desk")[0]
    at = datetime(2026, 10, 26, 21, 5, tzinfo=UTC)  # 27 October, 11:05 in Kiritimati
    visit_id = str(uuid.uuid4())
    ingest_batch(store, device, [
        wire_event(1, "visit.checked_in", at, visit_id, {"ticket": "L-0001"}),
        wire_event(2, "visit.called", at + timedelta(minutes=95), visit_id, {}),
        wire_event(3, "rating.submitted", at + timedelta(minutes=99), visit_id,
                   {"score": 1, "scale": 4, "tags": [], "misuse": False}),
    ], START + timedelta(days=14))
    # The last cut's parts are still kept from above, holding 26 October: their signature
    # changed. Then every cut again, read afresh.
    _check_trends(store.db, "Kiritimati")
    for cut in CUTS:
        cuts.append(cut)
        local_sums.SETTLED.clear()
        _check_trends(store.db, "Kiritimati")
    local_sums.SETTLED.clear()
