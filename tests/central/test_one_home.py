"""Each rule lives once: the SQL is generated from the Python definitions, the API and the
dashboard answer one range with one function, and a second copy fails here."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.config import ConfigError, load_settings
from kiosk.shared import metrics, site_rules
from kiosk.shared.timeutil import to_rfc3339
from sync.central import auth, figures
from sync.central.dashboard import panels
from sync.central.dashboard.windows import today_windows
from sync.central.ingest import ingest_batch
from sync.central.metrics_query import MetricsQuery, compute_metrics
from sync.central.migrations import migrate
from sync.central.sites import InvalidSetting, SiteConfig, get_site, update_site
from sync.central.storage import CentralStore, connect, database_path
from tests.support.wire_events import wire_event

CENTRAL = Path(__file__).resolve().parents[2] / "sync" / "central"
NOW = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
SHARED_FIELDS = (
    "visits",
    "checked_out",
    "ratings",
    "happy_index",
    "pct_positive",
    "pct_negative",
    "csat",
    "response_rate",
    "waits",
    "wait_median_min",
    "wait_p90_min",
    "pct_within_target",
)


def _central_sources() -> dict[Path, str]:
    return {path: path.read_text() for path in CENTRAL.rglob("*.py")}


def test_no_rule_is_typed_into_the_central_stores_sql():
    """Bucket edges and the negative rule reach SQL only through ``metrics.bucket_sql`` and
    ``metrics.negative_sql``: a literal comparison of a score or a wait is a second copy."""
    copies = [
        f"{path.relative_to(CENTRAL)}: {match.group(0)}"
        for path, text in _central_sources().items()
        for match in re.finditer(r"(score\s*<=?\s*[1-9]|wait_min\s*<=?\s*[1-9])", text)
    ]
    assert copies == []


def test_the_rollup_triggers_hold_exactly_the_defined_bucket_edges_and_negative_rule(tmp_path):
    store = CentralStore(tmp_path)
    try:
        triggers = " ".join(
            row[0]
            for row in store.db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'ratings_%'"
            )
        )
    finally:
        store.close()
    edges = {float(edge) for edge in re.findall(r"wait_min < ([0-9.]+)", triggers)}
    assert edges == {high for _, _, high in metrics.WAIT_BUCKETS[:-1]}
    names = set(re.findall(r"THEN '([^']+)'|ELSE '([^']+)'", triggers))
    assert {a or b for a, b in names} == {name for name, _, _ in metrics.WAIT_BUCKETS}
    negatives = set(re.findall(r"score <= (\d+)", triggers))
    assert negatives == {str(metrics.NEGATIVE_MAX_SCORE)}


def test_bucket_sql_agrees_with_bucket_of(tmp_path):
    store = CentralStore(tmp_path)
    try:
        for wait in (-3.0, 0.0, 9.99, 10.0, 19.5, 20.0, 29.999, 30.0, 600.0):
            (name,) = store.db.execute(
                f"SELECT {metrics.bucket_sql('w')} FROM (SELECT ? AS w)", [wait]
            ).fetchone()
            assert name == metrics.bucket_of(wait), wait
    finally:
        store.close()


def test_site_ranges_are_the_shared_ones_on_both_sides(tmp_path):
    """The central store's ``site set`` and the kiosk's config accept the same bounds and
    refuse one past them, with a sentence each."""
    store = CentralStore(tmp_path)
    try:
        for key, bounds in (
            ("target_wait_min", site_rules.TARGET_WAIT_MIN),
            ("idle_timeout_s", site_rules.IDLE_TIMEOUT_S),
        ):
            for good in bounds:
                with store.write() as db:
                    assert getattr(update_site(db, "North", **{key: good}), key) == good
                assert getattr(load_settings(environ={}, **{key: good}), key) == good
            for bad in (bounds.low - 1, bounds.high + 1):
                refused = pytest.raises(InvalidSetting, match=f"{bounds.low}.*{bounds.high}")
                with refused, store.write() as db:
                    update_site(db, "North", **{key: bad})
                with pytest.raises(ConfigError, match=f"{bounds.low} to {bounds.high}"):
                    load_settings(environ={}, **{key: bad})
        for scale in site_rules.RATING_SCALES:
            with store.write() as db:
                assert update_site(db, "North", rating_scale=scale).rating_scale == scale
            assert load_settings(environ={}, rating_scale=scale).rating_scale == scale
    finally:
        store.close()


def test_no_site_range_is_typed_into_the_central_store():
    sites = (CENTRAL / "sites.py").read_text()
    assert re.findall(r"\b(240|600)\b", sites) == []


# --- one read path --------------------------------------------------------------------------


def _a_day_of_visits(store: CentralStore, zone: str) -> str:
    """A few visits of NOW's local day at one desk: rated, unrated, still waiting, cancelled."""
    with store.write() as db:
        device, _ = auth.add_device(db, "Same Clinic", "Desk 1")
        update_site(db, "Same Clinic", timezone=zone, target_wait_min=12)
    first = NOW - timedelta(hours=5, minutes=7)
    events, seq = [], 0

    def add(kind, when, visit_id, data):
        nonlocal seq
        seq += 1
        events.append(wire_event(seq, kind, when, visit_id, data))

    for index, (wait, score) in enumerate([(3, 5), (11, 4), (12, 2), (25, 1), (40, None), (7, 3)]):
        visit_id = str(uuid.uuid4())
        start = first + timedelta(minutes=23 * index)
        add("visit.checked_in", start, visit_id, {"ticket": f"A-{index:03d}"})
        add("visit.called", start + timedelta(minutes=wait), visit_id, {})
        add("visit.checked_out", start + timedelta(minutes=wait + 9), visit_id, {})
        if score is not None:
            rating = {"score": score, "scale": 5, "tags": ["waiting_time"], "misuse": False}
            add("rating.submitted", start + timedelta(minutes=wait + 10), visit_id, rating)
    waiting, cancelled = str(uuid.uuid4()), str(uuid.uuid4())
    add("visit.checked_in", NOW - timedelta(minutes=17), waiting, {"ticket": "A-100"})
    add("visit.checked_in", NOW - timedelta(minutes=50), cancelled, {"ticket": "A-101"})
    add("visit.cancelled", NOW - timedelta(minutes=40), cancelled, {"reason": "no_show"})
    add(
        "rating.submitted",
        NOW - timedelta(minutes=3),
        None,
        {"score": 4, "scale": 5, "tags": [], "misuse": False},
    )
    results = ingest_batch(store, device, events, NOW)
    assert {result["status"] for result in results} == {"stored"}
    return device.id


@pytest.mark.parametrize("zone", ["Europe/London", "Asia/Kolkata"])
def test_the_api_and_the_dashboard_answer_one_range_with_one_function(tmp_path, monkeypatch, zone):
    """For the site's local day: the metrics API, the Today panel and the Trends day agree
    on every figure, and the API and Today are both made by ``figures.range_figures``."""
    store = CentralStore(tmp_path)
    try:
        _a_day_of_visits(store, zone)
        db = store.db
        sites = [get_site(db, "Same Clinic")]
        (window,) = today_windows(sites, NOW)
        calls = []
        original = figures.range_figures

        def spy(*args, **kwargs):
            calls.append(args[1])
            return original(*args, **kwargs)

        monkeypatch.setattr(figures, "range_figures", spy)
        api = compute_metrics(
            db, MetricsQuery(window.start_dt, window.end_dt, site="Same Clinic"), NOW
        )
        today = panels.today(db, sites, None, NOW)
        assert len(calls) == 2 and calls[0] == calls[1]  # one function, the same spans
        (day,) = [
            row
            for row in panels.trends(db, sites, window.start_dt.date(), NOW.date(), None)["days"]
            if row["day"] == today["day"]
        ]
        assert api["visits"] == 7 and api["ratings"] == 6 and api["waits"] == 6
        for field in SHARED_FIELDS:
            assert api[field] == today[field] == day[field], field
        assert api["longest_current_wait_min"] == today["longest_current_wait_min"] == 17.0
        assert api["target_wait_min"] == today["target_wait_min"] == 12
        by_wait = panels.rating_by_wait(db, sites, NOW.date(), NOW.date(), None)["buckets"]
        assert api["by_wait_bucket"] == by_wait
    finally:
        store.close()


def test_the_api_over_http_gives_the_same_figures(central_server):
    """The same figures through the real server's ``/api/v1/metrics``."""
    device = central_server.add_device(site="Same Clinic")
    store = central_server.embedded.store
    with store.write() as db:
        update_site(db, "Same Clinic", timezone="Europe/London")
    token = central_server.add_reporting_token()
    events = []
    start = NOW - timedelta(hours=3)
    for index, (wait, score) in enumerate([(4, 5), (14, 2), (31, 1)]):
        visit_id = str(uuid.uuid4())
        at = start + timedelta(minutes=30 * index)
        events += [
            wire_event(3 * index + 1, "visit.checked_in", at, visit_id, {"ticket": f"B-{index}"}),
            wire_event(3 * index + 2, "visit.called", at + timedelta(minutes=wait), visit_id, {}),
            wire_event(
                3 * index + 3,
                "rating.submitted",
                at + timedelta(minutes=wait + 1),
                visit_id,
                {"score": score, "scale": 5, "tags": [], "misuse": False},
            ),
        ]
    assert central_server.post_events(device, events).status_code == 200
    sites = [get_site(store.db, "Same Clinic")]
    (window,) = today_windows(sites, NOW)
    answer = central_server.metrics(
        token, site="Same Clinic", **{"from": window.start, "to": window.end}
    ).json()
    today = panels.today(store.db, sites, None, NOW)
    for field in SHARED_FIELDS:
        assert answer[field] == today[field], field
    assert answer["from"] == to_rfc3339(window.start_dt)


def test_connection_pragmas_are_set_in_one_place(tmp_path):
    store = CentralStore(tmp_path)
    try:
        db = store.db
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.quick_reader.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    finally:
        store.close()
    setters = [
        f"{path.relative_to(CENTRAL)}: {match.group(0)}"
        for path, text in _central_sources().items()
        for match in re.finditer(r"(PRAGMA |\")(journal_mode|synchronous|foreign_keys) =", text)
    ]
    assert setters == [
        'storage.py: "journal_mode =',
        'storage.py: "synchronous =',
        'storage.py: "foreign_keys =',
        'storage.py: "journal_mode =',  # BACKUP_FILE_PRAGMA: a backup is one file, not WAL
    ]


def test_an_old_store_gets_the_rollups_from_the_central_migrations(tmp_path):
    """A schema-1 store with rows in it: opening it runs migrations 2-4 (sync.central.rollups),
    which count the rows already there with the shared bucket and negative rules."""
    db = connect(database_path(tmp_path))
    migrate(db, target=1)
    ratings = [  # (wait_min, score, tags)
        (None, 5, []),
        (0.0, 1, ["billing"]),
        (9.99, 2, ["waiting_time"]),
        (10.0, 4, []),
        (20.0, 3, ["billing"]),
        (30.0, 1, ["waiting_time", "billing"]),
        (95.5, 5, []),
    ]
    db.conn.executemany(
        "INSERT INTO ratings (id, device_id, site, score, scale, tags, misuse, occurred_at, "
        "wait_min) VALUES (?, 'd1', 'Old Clinic', ?, 5, ?, 0, '2026-03-10T09:15:00.000Z', ?)",
        [(str(uuid.uuid4()), score, json.dumps(tags), wait) for wait, score, tags in ratings],
    )
    db.close()
    store = CentralStore(tmp_path)
    try:
        rows = store.db.execute("SELECT bucket, score, n FROM rating_hours").fetchall()
        tags = dict(store.db.execute("SELECT tag, n FROM negative_tag_hours").fetchall())
    finally:
        store.close()
    expected = [
        ("" if wait is None else metrics.bucket_of(wait), score, 1) for wait, score, _ in ratings
    ]
    assert sorted(rows) == sorted(expected)
    negative_tags = [
        tag for _, score, names in ratings if metrics.is_negative(score, 5) for tag in names
    ]
    assert tags == {tag: negative_tags.count(tag) for tag in set(negative_tags)}


def test_a_new_sites_values_are_the_shared_defaults(tmp_path):
    """The schema's column defaults (migration 1, which never changes) and the shared
    constants agree: a site made by enrolling a desk has exactly the defaults in code."""
    store = CentralStore(tmp_path)
    try:
        with store.write() as db:
            auth.add_device(db, "Fresh Clinic", "Desk 1")
        site = get_site(store.db, "Fresh Clinic")
    finally:
        store.close()
    assert site == SiteConfig("Fresh Clinic")
    assert (site.target_wait_min, site.rating_scale, site.idle_timeout_s) == (
        metrics.DEFAULT_TARGET_MIN,
        site_rules.DEFAULT_RATING_SCALE,
        site_rules.DEFAULT_IDLE_TIMEOUT_S,
    )
