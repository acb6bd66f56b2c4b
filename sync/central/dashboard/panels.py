"""The dashboard's panels: each page's figures, from the shared read path.

Today is ``figures.range_figures`` over each site's own local day, as the metrics API computes
any range; the other panels group by local time, desk or site (``readers``) and turn each
group into figures with the same ``figures.headline`` and ``figures.bucket_rows``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlite_utils import Database

from kiosk.shared import metrics
from kiosk.shared.languages import LANGUAGES
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from sync.central import figures
from sync.central.auth import list_devices
from sync.central.batched import each
from sync.central.dashboard.language import N_
from sync.central.dashboard.readers import (
    NO_WAIT,
    appointment_counts_in,
    appointment_counts_of_desks_and_sites,
    rating_groups,
    rating_groups_by,
    rating_groups_of_desks_and_sites,
    split,
    visit_counts_by,
    visit_counts_of_desks_and_sites,
    visit_local_sums,
    wait_lists_by,
)
from sync.central.dashboard.windows import (
    Window,
    local_hour_sql,
    today_windows,
    windows,
)
from sync.central.figures import (
    Span,
    bucket_rows,
    current_wait_min,
    device_clause,
    headline,
    merged,
    target_of,
)
from sync.central.rollups import count_sum
from sync.central.sites import SiteConfig

SILENT_AFTER = timedelta(minutes=5)


THRESHOLD = metrics.SMALL_NUMBER_THRESHOLD


def today(db: Database, sites: list[SiteConfig], device: str | None, now: datetime,
          lang: str | None = None) -> dict:
    """Today's figures (each site's own local today) and its longest current wait: the
    metrics API's figures for those ranges, less visits left waiting past ``metrics.QUEUE_HORIZON``;
    with ``lang``, the rating figures of the ratings given in that language only."""
    spans = [Span(w.site.name, w.start_dt, w.end_dt) for w in today_windows(sites, now)]
    target = target_of(sites)
    result = figures.range_figures(
        db, spans, target, now, device, waiting_since=now - metrics.QUEUE_HORIZON, lang=lang
    )
    del result["by_wait_bucket"]
    result["target_wait_min"] = target
    result["day"] = metrics.local_today(now, sites[0].timezone).isoformat() if sites else None
    return result


QUEUE_COLUMNS = ("ticket", "status", "checked_in_at", "called_at", "site", "desk", "skew")


def queue_rows(db: Database, wins: list[Window], device: str | None, now: datetime) -> list[dict]:
    """Visits waiting or in the chair right now, oldest check-in first: those checked in
    within ``metrics.QUEUE_HORIZON``, also before the site's local midnight (``wins`` name
    the sites)."""
    extra, extra_params = device_clause(device)
    horizon = to_rfc3339(now - metrics.QUEUE_HORIZON)
    # Every window in one statement (batched.each), not one per site.
    found = each(db, [(
        "SELECT v.ticket, v.status, v.checked_in_at, v.called_at, v.site, d.name AS desk, "
        "d.clock_skew_s AS skew FROM visits v LEFT JOIN devices d ON d.id = v.device_id "
        "WHERE v.site = ? AND v.checked_in_at >= ? AND v.status IN ('waiting', 'in_chair') "
        f"{extra.replace('device_id', 'v.device_id')}",
        [win.site.name, horizon, *extra_params],
    ) for win in wins])
    rows = [dict(zip(QUEUE_COLUMNS, row, strict=True)) for part in found for row in part]
    return sorted(rows, key=lambda row: row["checked_in_at"])


def live_queue(db: Database, sites: list[SiteConfig], device: str | None, now: datetime) -> dict:
    """The queue per desk, with each visit's wait so far (or its wait, once called)."""
    day_windows = today_windows(sites, now)
    desks: dict[str, list[dict]] = defaultdict(list)
    target = target_of(sites)
    site_targets = {site.name: site.target_wait_min for site in sites}
    for row in queue_rows(db, day_windows, device, now):
        waiting = row["status"] == "waiting"
        if waiting:
            wait = current_wait_min(parse_rfc3339(row["checked_in_at"]), row["skew"], now)
        else:
            wait = metrics.minutes_between(
                parse_rfc3339(row["checked_in_at"]), parse_rfc3339(row["called_at"])
            )
        desks[f"{row['site']} · {row['desk'] or 'unknown desk'}"].append(
            {
                "ticket": row["ticket"],
                "status": N_("waiting") if waiting else N_("in the chair"),
                "wait_min": round(wait, 1),
                "over_target": wait > site_targets.get(row["site"], target),
            }
        )
    return {
        "as_of": to_rfc3339(now),
        "target_wait_min": target,
        "desks": [{"desk": name, "visits": visits} for name, visits in sorted(desks.items())],
    }


def trends(
    db: Database, sites: list[SiteConfig], first: date, last: date, device: str | None
) -> dict:
    wins = windows(sites, first, last)
    target = target_of(sites)
    days = []
    ratings = rating_groups_by(db, wins, ("day", "hour"), device)
    # The visit rollup read once for the waits, visit counts and appointments below.
    sums = visit_local_sums(db, wins, device)
    waits = wait_lists_by(db, wins, ("day", "hour"), device, sums)
    counts = visit_counts_by(db, wins, ("day", "hour"), device, sums)
    day_ratings, day_waits, day_counts = ratings["day"], waits["day"], counts["day"]
    day_appointments = appointment_counts_in(db, wins, "day", device, sums)
    no_appointments = metrics.appointment_counts({}, 0, 0)
    day = first
    while day <= last:
        key = day.isoformat()
        days.append(
            {
                "day": key,
                **headline(day_ratings.get(key), day_waits.get(key), day_counts.get(key), target),
                **day_appointments.get(key, no_appointments),
            }
        )
        day += timedelta(days=1)
    hour_ratings, hour_waits, hour_counts = ratings["hour"], waits["hour"], counts["hour"]
    keys = sorted(set(hour_ratings) | set(hour_waits) | set(hour_counts))
    hours = [
        {
            "hour": f"{key}:00",
            **headline(hour_ratings.get(key), hour_waits.get(key), hour_counts.get(key), target),
        }
        for key in keys
    ]
    return {"days": days, "hours": hours, "target_wait_min": target}


def rating_by_wait(
    db: Database, sites: list[SiteConfig], first: date, last: date, device: str | None
) -> dict:
    groups = rating_groups(db, windows(sites, first, last), "bucket", device)
    no_wait = groups.get(NO_WAIT)
    return {
        "buckets": bucket_rows(groups),
        "without_wait": no_wait.summary()["ratings"] if no_wait else 0,
    }


def followup_reasons(
    db: Database, sites: list[SiteConfig], first: date, last: date, device: str | None
) -> dict:
    """Tags chosen with negative ratings (the bottom two faces), per local day and in all."""
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    extra, extra_params = device_clause(device)
    wins = windows(sites, first, last)
    all_ratings = merged(rating_groups(db, wins, "all", device).values())
    negatives = sum(
        n for (scale, score), n in all_ratings.counts.items() if metrics.is_negative(score, scale)
    )

    def rollup(win: Window) -> tuple[str, list]:
        return (
            f"SELECT hour, tag, {count_sum('n')} FROM negative_tag_hours WHERE site = ? "
            "AND hour >= ? "
            f"AND hour < ? {extra} GROUP BY 1, 2 HAVING SUM(n) > 0",
            [win.site.name, win.start[:13], win.end[:13], *extra_params],
        )

    def from_rows(win: Window) -> tuple[str, list]:
        local = local_hour_sql("occurred_at", win)
        return (
            f"SELECT substr({local}, 1, 10), tag.value, COUNT(DISTINCT ratings.rowid) "
            "FROM ratings, json_each(ratings.tags) tag WHERE site = ? AND occurred_at >= ? "
            f"AND occurred_at < ? AND misuse = 0 AND {metrics.negative_sql('score')} {extra} "
            "GROUP BY 1, 2",
            [win.site.name, win.start, win.end, *extra_params],
        )

    for hours, rows in split(db, wins, rollup, from_rows):
        if hours is not None:
            rows = [(hours[hour][:10], tag, n) for hour, tag, n in rows]
        for day, tag, n in rows:
            per_day[day][tag] += n
            totals[tag] += n
    tags = sorted(totals, key=lambda tag: (-totals[tag], tag))
    return {
        "negatives": negatives,
        "tags": [
            {
                "tag": tag,
                "n": totals[tag],
                "pct_of_negative": metrics.round_figure(metrics.pct(totals[tag], negatives)),
            }
            for tag in tags
        ],
        "days": [{"day": day, "tags": dict(per_day[day])} for day in sorted(per_day)],
    }


def compare(
    db: Database, sites: list[SiteConfig], first: date, last: date, device_names: dict[str, str]
) -> dict:
    """Sites and desks side by side; a group under the threshold has its figures hidden."""
    wins = windows(sites, first, last)
    target = target_of(sites)
    # Each site, and each desk, is measured against its own site's target.
    site_targets = {site.name: site.target_wait_min for site in sites}
    device_sites = dict(db.execute("SELECT id, site FROM devices").fetchall())

    def target_for(group: str, key: str) -> float:
        site = key if group == "site" else device_sites.get(key)
        return site_targets.get(site, target)

    all_waits = wait_lists_by(db, wins, ("site", "device"))
    no_appointments = metrics.appointment_counts({}, 0, 0)

    # Each figure read once per desk: a window's desks add up to its site.
    desk_ratings, site_ratings = rating_groups_of_desks_and_sites(db, wins)
    desk_counts, site_counts = visit_counts_of_desks_and_sites(db, wins)
    desk_appointments, site_appointments = appointment_counts_of_desks_and_sites(db, wins)
    read = {"site": (site_ratings, site_counts, site_appointments),
            "device": (desk_ratings, desk_counts, desk_appointments)}

    def rows_for(group: str, label) -> list[dict]:
        ratings, counts, appointments = read[group]
        waits = all_waits[group]
        rows = []
        for key in sorted(set(ratings) | set(waits) | set(counts), key=lambda k: label(k)):
            row = {
                "name": label(key),
                **headline(
                    ratings.get(key), waits.get(key), counts.get(key), target_for(group, key)
                ),
                **appointments.get(key, no_appointments),
                "target_wait_min": target_for(group, key),
            }
            row["ratings_hidden"] = row["ratings"] < THRESHOLD
            row["waits_hidden"] = row["waits"] < THRESHOLD
            # The same small-number rule for the appointment figures, on their own n.
            row["appointments_hidden"] = row["adjusted_waits"] < THRESHOLD
            rows.append(row)
        return rows

    return {
        "sites": rows_for("site", lambda key: key),
        "desks": rows_for("device", lambda key: device_names.get(key, "unknown desk")),
        "languages": language_rows(db, wins),
        "threshold": THRESHOLD,
        "target_wait_min": target,
    }


def language_rows(db: Database, wins: list[Window]) -> list[dict]:
    """Ratings per language the patients answered in (the kiosk's language row), through
    ``figures.ratings_by_language``; a language under the threshold has its figures hidden."""
    spans = [Span(w.site.name, w.start_dt, w.end_dt) for w in wins]
    rows = figures.ratings_by_language(db, spans)
    for row in rows:
        language = LANGUAGES.get(row["lang"] or "")
        if row["lang"] is None:
            row["name"] = "not recorded (older kiosks)"
        elif language is None:
            row["name"] = row["lang"]
        else:
            row["name"] = f"{language.english_name} ({language.native_name})"
        row["ratings_hidden"] = row["ratings"] < THRESHOLD
    return rows


def devices(db: Database, sites: list[SiteConfig], now: datetime) -> list[dict]:
    names = {site.name for site in sites}
    silent_before = to_rfc3339(now - SILENT_AFTER)
    rows = []
    for row in list_devices(db):
        if row["site"] not in names:
            continue
        row["silent"] = not row["revoked"] and (
            row["last_seen_at"] is None or row["last_seen_at"] < silent_before
        )
        row["silent_for_min"] = (
            round(metrics.minutes_between(parse_rfc3339(row["last_seen_at"]), now), 1)
            if row["last_seen_at"]
            else None
        )
        rows.append(row)
    return rows
