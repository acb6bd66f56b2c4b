"""What each rule finds at a site at an instant: reads only, ``now`` always passed in.

Every figure comes from ``kiosk.shared.metrics`` (``is_negative``, ``rating_summary``) and the
metrics API's own reading of a wait still running (``metrics_query.current_wait_min``), so an
alert never disagrees with the dashboard. Misuse presses are left out of every count. A finding
names no ticket and no face of any one visit: figures only, each with its n.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from sqlite_utils import Database

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from sync.central.alerts.hours import is_open, opened_at, site_hours
from sync.central.alerts.rules import RULES, RuleSetting, site_rules
from sync.central.figures import current_wait_min
from sync.central.sites import get_site

# A visit left "waiting" for longer than this was forgotten at the desk, not waiting: it must
# not hold a long-wait alert open for days (the dashboard's queue reads the same day only).
LONGEST_REAL_WAIT = timedelta(hours=12)


@dataclass(frozen=True)
class Finding:
    """One rule firing at a site (``subject``: '' for the site, a device id for a kiosk)."""

    rule: str
    subject: str
    summary: str
    figures: dict = field(default_factory=dict)


def _rating_counts(db: Database, site: str, since: datetime, now: datetime) -> dict:
    rows = db.execute(
        "SELECT scale, score, COUNT(*) FROM ratings WHERE site = ? AND occurred_at >= ? "
        "AND occurred_at <= ? AND misuse = 0 GROUP BY scale, score",
        [site, to_rfc3339(since), to_rfc3339(now)],
    ).fetchall()
    return {(scale, score): n for scale, score, n in rows}


def _negatives(counts: dict) -> int:
    return sum(n for (scale, score), n in counts.items() if metrics.is_negative(score, scale))


def _window(setting: RuleSetting, now: datetime) -> datetime:
    return now - timedelta(minutes=setting["window_min"])


def negative_burst(db: Database, site: str, setting: RuleSetting, now: datetime) -> list[Finding]:
    counts = _rating_counts(db, site, _window(setting, now), now)
    summary = metrics.rating_summary(counts)
    n, negative = summary["ratings"], _negatives(counts)
    if n < setting["min_ratings"] or summary["pct_negative"] < setting["threshold"]:
        return []
    window = f"{setting['window_min']:g}"
    return [Finding("negative_burst", "", (
        f"Negative burst at {site}: {negative} of {n} ratings negative "
        f"({summary['pct_negative']:g}%) in the last {window} min (n={n})."
    ), {"ratings": n, "negative": negative, "pct_negative": summary["pct_negative"],
        "window_min": setting["window_min"]})]


def low_happy_index(db: Database, site: str, setting: RuleSetting, now: datetime) -> list[Finding]:
    summary = metrics.rating_summary(_rating_counts(db, site, _window(setting, now), now))
    n = summary["ratings"]
    if n < setting["min_ratings"] or summary["happy_index"] >= setting["threshold"]:
        return []
    return [Finding("low_happy_index", "", (
        f"Low Happy Index at {site}: {summary['happy_index']:g} (below "
        f"{setting['threshold']:g}) over the last {setting['window_min']:g} min (n={n})."
    ), {"ratings": n, "happy_index": summary["happy_index"], "window_min": setting["window_min"]})]


def _current_waits(db: Database, site: str, now: datetime) -> list[float]:
    rows = db.execute(
        "SELECT checked_in_at, "
        "(SELECT clock_skew_s FROM devices WHERE devices.id = visits.device_id) "
        "FROM visits WHERE site = ? AND checked_in_at >= ? AND checked_in_at <= ? "
        "AND voided = 0 AND cancel_reason IS NULL AND called_at IS NULL "
        # The unary + keeps SQLite on the (site, checked_in_at) range (see metrics_query).
        "AND +checked_out_at IS NULL",
        [site, to_rfc3339(now - LONGEST_REAL_WAIT), to_rfc3339(now)],
    ).fetchall()
    return [current_wait_min(parse_rfc3339(at), skew, now) for at, skew in rows]


def long_wait(db: Database, site: str, setting: RuleSetting, now: datetime) -> list[Finding]:
    if not is_open(site_hours(db, site), get_site(db, site).timezone, now):
        return []
    target = get_site(db, site).target_wait_min
    waits = _current_waits(db, site, now)
    limit = setting["multiple"] * target
    over = [wait for wait in waits if wait > limit]
    if not over:
        return []
    longest = round(max(over), 1)
    return [Finding("long_wait", "", (
        f"Long wait at {site}: {len(over)} of {len(waits)} visits still waiting are over "
        f"{setting['multiple']:g} x the {target:g}-min target; the longest has waited "
        f"{longest:g} min (n={len(waits)})."
    ), {"waiting": len(waits), "over_limit": len(over), "longest_current_wait_min": longest,
        "limit_min": limit, "target_wait_min": target})]


def waits_and_mood(db: Database, site: str, setting: RuleSetting, now: datetime) -> list[Finding]:
    target = get_site(db, site).target_wait_min
    waits = _current_waits(db, site, now)
    if not waits or max(waits) <= target:
        return []
    counts = _rating_counts(db, site, _window(setting, now), now)
    negative, n = _negatives(counts), sum(counts.values())
    if negative < setting["min_negative"]:
        return []
    longest = round(max(waits), 1)
    return [Finding("waits_and_mood", "", (
        f"Waits and mood at {site}: the longest current wait is {longest:g} min (target "
        f"{target:g}, n={len(waits)} waiting) and {negative} of {n} ratings in the last "
        f"{setting['window_min']:g} min were negative (n={n})."
    ), {"waiting": len(waits), "longest_current_wait_min": longest, "target_wait_min": target,
        "ratings": n, "negative": negative, "window_min": setting["window_min"]})]


def _silence_start(last_seen: str, opened: datetime | None) -> datetime:
    # Silence counts during opening hours only: a kiosk switched off overnight has been
    # silent since opening, not since the evening before.
    seen = parse_rfc3339(last_seen)
    return seen if opened is None else max(seen, opened)


def kiosk_silent(db: Database, site: str, setting: RuleSetting, now: datetime) -> list[Finding]:
    hours, timezone = site_hours(db, site), get_site(db, site).timezone
    if not is_open(hours, timezone, now):
        return []
    opened = opened_at(hours, timezone, now)
    limit = timedelta(minutes=setting["silent_min"])
    # A kiosk never seen is still being set up: it has not gone silent.
    rows = db.execute(
        "SELECT id, name, last_seen_at FROM devices WHERE site = ? AND revoked = 0 "
        "AND last_seen_at IS NOT NULL AND last_seen_at < ? ORDER BY id",
        [site, to_rfc3339(now - limit)],
    ).fetchall()
    found = []
    for device_id, name, last_seen in rows:
        since = _silence_start(last_seen, opened)
        if now - since <= limit:
            continue
        silent = round(metrics.minutes_between(since, now), 1)
        found.append(Finding("kiosk_silent", device_id, (
            f"Kiosk silent at {site}: {name} has not been in contact for {silent:g} min "
            f"of opening hours (limit {setting['silent_min']:g} min)."
        ), {"device_id": device_id, "device_name": name, "silent_min": silent,
            "last_seen_at": last_seen}))
    return found


# How far back a kiosk's own events are searched for its last heartbeats: a bound on the read
# for a client that never sends one (kiosks send one a minute).
HEARTBEAT_SEARCH_EVENTS = 2000


def _last_heartbeats(db: Database, device_id: str, seq_max: int | None, count: int) -> list:
    rows = db.execute(
        "SELECT data FROM events WHERE device_id = ? AND device_seq > ? "
        "AND type = 'device.heartbeat' ORDER BY device_seq DESC LIMIT ?",
        [device_id, (seq_max or 0) - HEARTBEAT_SEARCH_EVENTS, count],
    ).fetchall()
    return [json.loads(row[0]) for row in reversed(rows)]


def _rising(values: list) -> bool:
    return all(isinstance(v, int) for v in values) and all(
        later > earlier for earlier, later in pairwise(values))


def kiosk_backlog(db: Database, site: str, setting: RuleSetting, now: datetime) -> list[Finding]:
    count = setting["heartbeats"]
    found = []
    for device_id, name, seq_max in db.execute(
        "SELECT id, name, seq_max FROM devices WHERE site = ? AND revoked = 0 "
        "AND last_heartbeat_at IS NOT NULL ORDER BY id", [site]
    ).fetchall():
        beats = _last_heartbeats(db, device_id, seq_max, count)
        if len(beats) < count:
            continue
        for counter, what in (("backlog", "events waiting to be sent"),
                              ("rejected", "events refused by the store")):
            values = [beat.get(counter) for beat in beats]
            if _rising(values):
                found.append(Finding("kiosk_backlog", device_id, (
                    f"Kiosk backlog at {site}: {name}'s {what} rose at each of its last "
                    f"{count} heartbeats, from {values[0]} to {values[-1]} (n={count})."
                ), {"device_id": device_id, "device_name": name, "count": counter,
                    "first": values[0], "last": values[-1], "heartbeats": count}))
                break
    return found


EVALUATORS = {
    "negative_burst": negative_burst,
    "low_happy_index": low_happy_index,
    "long_wait": long_wait,
    "waits_and_mood": waits_and_mood,
    "kiosk_silent": kiosk_silent,
    "kiosk_backlog": kiosk_backlog,
}


def evaluate_site(db: Database, site: str, now: datetime,
                  rules: tuple[str, ...] = RULES) -> dict[str, list[Finding]]:
    """rule -> what it finds at ``now`` (an empty list: clear; a disabled rule is clear)."""
    settings = site_rules(db, site)
    return {
        rule: EVALUATORS[rule](db, site, settings[rule], now) if settings[rule].enabled else []
        for rule in rules
    }


def all_sites(db: Database) -> list[str]:
    # Enrolling a kiosk creates its site (auth.add_device), so every kiosk's site is here.
    return [row[0] for row in db.execute("SELECT name FROM sites ORDER BY name")]
