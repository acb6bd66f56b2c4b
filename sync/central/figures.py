"""The one read path for figures: the API, the dashboard and the exports all count and
summarise here, so a manager never sees two numbers for one thing.

SQL selects and counts; ``kiosk.shared.metrics`` computes. Counts of whole UTC hours come from
the hourly rollups (``sync.central.rollups``, kept by triggers), the partial hours at a range's
ends from the rows; waits are the projection's ``wait_min`` from a covering index. A range is
a list of :class:`Span` (a site and its [start, end) in UTC): the API asks for one range over
some sites, the dashboard's Today for each site's own local day; both get :func:`range_figures`.
The dashboard's groupings by local day, hour, desk or site (``dashboard.readers``) feed the
same :func:`headline` and :func:`bucket_rows`, with the same :func:`target_of` and
:func:`device_clause`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from kiosk.shared.wire import MAX_AHEAD
from sync.central.batched import each, union_all
from sync.central.hour_runs import (
    ADJUSTED_RUNS,
    CHAIR_RUNS,
    COUNTED_VISIT,
    WAIT_RUNS,
    HourRuns,
    next_hour,
)
from sync.central.permissions import Scope
from sync.central.rollups import as_count, count_sum
from sync.central.sites import SiteConfig

# A heartbeat's received_at - occurred_at smaller than this is transit, not a wrong clock.
CLOCK_SKEW_TOLERANCE_S = 120.0
HOUR = timedelta(hours=1)
# COUNTED_VISIT (not voided: it never happened; not cancelled) and next_hour live in hour_runs,
# which this module imports and which cannot import it back.

Counts = dict[tuple[int, int], int]


@dataclass
class RatingGroup:
    """Misuse-free counts per (scale, score) of one group, and how many were linked."""

    counts: Counts = field(default_factory=dict)
    linked: int = 0

    def add(self, scale: int, score: int, n: int, linked: bool) -> None:
        self.counts[(scale, score)] = self.counts.get((scale, score), 0) + n
        if linked:
            self.linked += n

    def summary(self) -> dict:
        return metrics.rating_summary(self.counts)


@dataclass(frozen=True)
class Span:
    """One site's share of a range: [start, end) as UTC instants."""

    site: str
    start: datetime
    end: datetime


def device_clause(device: str | None, column: str = "device_id") -> tuple[str, list]:
    """The SQL (and its parameter) that narrows a read to one desk, or nothing."""
    return (f"AND {column} = ?", [device]) if device is not None else ("", [])


def target_of(sites: Iterable[SiteConfig]) -> float:
    """The target wait the sites share, else the default (one site: its own target)."""
    targets = {site.target_wait_min for site in sites}
    return targets.pop() if len(targets) == 1 else metrics.DEFAULT_TARGET_MIN


def headline(
    ratings: RatingGroup | None,
    waits: list[float] | None,
    counts: tuple[int, int] | None,
    target: float,
    current: Iterable[float] = (),
) -> dict:
    """One group's headline figures, with the public API's field names."""
    ratings = ratings or RatingGroup()
    visits, checked_out = counts or (0, 0)
    result = {"visits": visits, "checked_out": checked_out}
    result.update(ratings.summary())
    result["response_rate"] = metrics.response_rate(ratings.linked, checked_out)
    result.update(metrics.wait_summary(waits or [], target, current))
    return result


def bucket_rows(per_bucket: Mapping[str, RatingGroup]) -> list[dict]:
    """% positive and Happy Index per wait bucket, every bucket of ``WAIT_BUCKETS`` listed."""
    return [
        metrics.bucket_row(name, (per_bucket.get(name) or RatingGroup()).counts)
        for name, _, _ in metrics.WAIT_BUCKETS
    ]


def merged(groups: Iterable[RatingGroup]) -> RatingGroup:
    total = RatingGroup()
    for group in groups:
        total.linked += group.linked
        for key, n in group.counts.items():
            total.counts[key] = total.counts.get(key, 0) + n
    return total


# --- the store's clock ---------------------------------------------------------------------


def on_server_clock(device_instant: datetime, clock_skew_s: float | None) -> datetime:
    """A kiosk's timestamp moved onto the store's clock, for comparing it with *now*.

    Waits are differences of one kiosk's own timestamps and need no correction; only a wait
    still running (now - checked_in_at) mixes two clocks. ``clock_skew_s`` is the device's
    latest heartbeat's received_at - occurred_at; below CLOCK_SKEW_TOLERANCE_S it is network
    and queueing time, not a wrong clock, and is left alone.
    """
    if clock_skew_s is None or abs(clock_skew_s) < CLOCK_SKEW_TOLERANCE_S:
        return device_instant
    if clock_skew_s < -MAX_AHEAD.total_seconds():
        # Only a heartbeat from before the plausible window (migration 4 repairs those) can
        # say a kiosk runs more than a day ahead; trusting it would invent a wait of years.
        return device_instant
    return device_instant + timedelta(seconds=clock_skew_s)


def current_wait_min(checked_in_at: datetime, clock_skew_s: float | None, now: datetime) -> float:
    """How long a visit still waiting has waited by now, on the store's clock; never below 0
    (a check-in stamped a little ahead of the store's clock has not started waiting yet)."""
    return max(0.0, metrics.minutes_between(on_server_clock(checked_in_at, clock_skew_s), now))


# --- ranges of UTC instants: whole hours from the rollups, the ends from the rows ------------


def split_at_hours(
    start: datetime, end: datetime
) -> tuple[tuple[str, str] | None, list[tuple[datetime, datetime]]]:
    """[start, end) as its whole UTC hours, as the rollups' hour keys [first, last), and the
    partial hours at either end, which are read from the rows."""
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += HOUR
    last = end.replace(minute=0, second=0, microsecond=0)
    if first >= last:
        return None, [(start, end)]
    edges = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return (to_rfc3339(first)[:13], to_rfc3339(last)[:13]), edges


@dataclass
class VisitTotals:
    visits: int = 0
    checked_out: int = 0
    waits: list[float] = field(default_factory=list)
    # (site, start, end) ranges that may hold visits not yet called
    waiting_ranges: list[tuple[str, str, str]] = field(default_factory=list)


def read_visits(db: Database, spans: list[Span], device: str | None) -> VisitTotals:
    """Visits checked in within the spans, not cancelled (voided ones never happened), and the
    waits of those that were called. Ranges that may hold a visit still waiting are noted:
    whole hours whose rollup says some were not called, and the partial hours at the ends."""
    extra, params = device_clause(device)
    totals = VisitTotals()
    # Each kind of read for every span in one statement (union_all), not one per site.
    hours, edge_counts, waits, wholes = [], [], [], []
    for span in spans:
        whole, edges = split_at_hours(span.start, span.end)
        if whole is not None:
            hours.append((
                f"SELECT site, hour, {count_sum('visits')}, {count_sum('checked_out')}, "
                f"{count_sum('visits')} - {count_sum('waits')}, {WAIT_RUNS.signature_sql()} "
                f"FROM visit_hours WHERE site = ? AND hour >= ? AND hour < ? {extra} "
                # Every hour, those emptied of visits too: their changes are the waits runs'
                # check (``ranges_many``), and an emptied hour's undone visit is a change.
                "GROUP BY site, hour",
                [span.site, *whole, *params],
            ))
        for a, b in edges:
            edge_counts.append((
                f"SELECT COUNT(*), COUNT(checked_out_at) FROM visits WHERE site = ? "
                f"AND checked_in_at >= ? AND checked_in_at < ? AND {COUNTED_VISIT} {extra}",
                [span.site, to_rfc3339(a), to_rfc3339(b), *params],
            ))
            totals.waiting_ranges.append((span.site, to_rfc3339(a), to_rfc3339(b)))
        # The waits of whole hours from the sorted runs kept per range; the ends' from rows.
        if whole is not None:
            wholes.append((span.site, *whole, extra, params))
        waits += [WAIT_RUNS.rows_select(span.site, to_rfc3339(a), to_rfc3339(b), extra, params)
                  for a, b in edges]
    # The waits' runs are kept against each span's sums of the same hours (``ranges_many``).
    signatures = []
    for rows in each(db, hours):
        signature = [0, 0]
        for site, hour, n, out, not_called, waits_n, changes in rows:
            signature[0] += waits_n
            signature[1] += changes
            totals.visits += n
            totals.checked_out += out
            if not_called:
                totals.waiting_ranges.append(
                    (site, f"{hour}:00:00.000Z", f"{next_hour(hour)}:00:00.000Z")
                )
        signatures.append(tuple(signature))
    for n, out in union_all(db, edge_counts):
        totals.visits += n
        totals.checked_out += out
    found = WAIT_RUNS.ranges_many(db, wholes, signatures)
    for (site, first, last, _, _), run in zip(wholes, found, strict=True):
        if run is None:  # the rows disagree with the rollup: read them
            waits.append(WAIT_RUNS.rows_select(site, f"{first}:00:00.000Z",
                                               f"{last}:00:00.000Z", extra, params))
        else:
            totals.waits += run
    totals.waits += (row[0] for row in union_all(db, waits))
    return totals


def current_waits(
    db: Database,
    ranges: list[tuple[str, str, str]],
    device: str | None,
    now: datetime,
    waiting_since: datetime | None = None,
) -> tuple[list[float], int]:
    """The running waits (on the store's clock) of the visits not yet called, not cancelled,
    checked in within the (site, start, end) ranges, and not before ``waiting_since`` if
    given (a visit left open for longer was abandoned, not queued); and how many of them have
    an appointment and are already past being seen within 15 minutes of it
    (``metrics.overdue_for_appointment``), which count as misses."""
    extra, params = device_clause(device)
    since = to_rfc3339(waiting_since) if waiting_since is not None else None
    # "+checked_out_at": not a key for an index. The visits not checked out are few per hour
    # but many per site (every one abandoned over the years), so the (site, checked_out_at)
    # index the planner would otherwise pick reads them all; (site, checked_in_at) reads the hour.
    # All the ranges in one statement (union_all): a 20-site group has dozens.
    wanted = []
    for site, a, b in ranges:
        if since is not None:
            a = max(a, since)
            if a >= b:
                continue
        wanted.append((site, a, b))
    select = (
        "SELECT checked_in_at, appointment_at, "
        "(SELECT clock_skew_s FROM devices WHERE devices.id = visits.device_id) "
        "FROM visits WHERE site = ? AND checked_in_at >= ? AND checked_in_at < ? "
        f"AND {COUNTED_VISIT} AND called_at IS NULL AND +checked_out_at IS NULL {extra}"
    )
    found = union_all(db, [(select, [site, a, b, *params]) for site, a, b in wanted])
    waits, overdue = [], 0
    for at, appointment, skew in found:
        checked_in = parse_rfc3339(at)
        waits.append(current_wait_min(checked_in, skew, now))
        if appointment is not None and metrics.overdue_for_appointment(
            on_server_clock(checked_in, skew),
            on_server_clock(parse_rfc3339(appointment), skew),
            now,
        ):
            overdue += 1
    return waits, overdue


def read_ratings(
    db: Database, spans: list[Span], device: str | None, lang: str | None = None
) -> tuple[RatingGroup, dict[str, RatingGroup]]:
    """The spans' ratings, misuse left out: in all, and per wait bucket (those linked to a
    called visit). Whole hours from ``rating_hours``, the partial hours from the rows. With
    ``lang``, only the ratings given in that language, all from the rows (the hourly rollups
    do not keep the language)."""
    extra, params = device_clause(device)
    if lang is not None:
        extra, params = f"{extra} AND lang = ?", [*params, lang]
    overall: RatingGroup = RatingGroup()
    per_bucket: dict[str, RatingGroup] = {}
    selects: list[tuple[str, list]] = []
    for span in spans:
        whole, edges = split_at_hours(span.start, span.end)
        if lang is not None and whole is not None:
            whole, edges = None, [(span.start, span.end)]
        if whole is not None:
            selects.append((
                f"SELECT scale, score, linked, bucket, {count_sum('n')} FROM rating_hours "
                f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY 1, 2, 3, 4 "
                "HAVING SUM(n) > 0",
                [span.site, *whole, *params],
            ))
        for a, b in edges:
            selects.append((
                # CAST: the same column type as the rollup's ``linked`` in the UNION
                f"SELECT scale, score, {as_count('visit_id IS NOT NULL')}, "
                f"{metrics.bucket_sql('wait_min')}, COUNT(*) FROM ratings WHERE site = ? "
                f"AND occurred_at >= ? AND occurred_at < ? AND misuse = 0 {extra} "
                "GROUP BY 1, 2, 3, 4",
                [span.site, to_rfc3339(a), to_rfc3339(b), *params],
            ))
    for scale, score, linked, bucket, n in union_all(db, selects):
        overall.add(scale, score, n, bool(linked))
        if bucket:  # '' (rollups) or NULL (rows): no wait to put it in a bucket
            per_bucket.setdefault(bucket, RatingGroup()).add(scale, score, n, bool(linked))
    return overall, per_bucket


def in_scope(spans: list[Span], scope: Scope | None) -> list[Span]:
    """The spans of the sites ``scope`` sees (every span when there is no scope): a login or
    token of some sites counts nothing of the others, in any total."""
    if scope is None or scope.everything:
        return spans
    return [span for span in spans if scope.allows(span.site)]


def sites_in_scope(sites: Iterable[SiteConfig], scope: Scope | None) -> list[SiteConfig]:
    return [site for site in sites if scope is None or scope.allows(site.name)]


@dataclass
class AppointmentGroup:
    """One group's inputs to the appointment-aware figures (``metrics.appointment_summary``)."""

    adjusted_waits: list[float] = field(default_factory=list)
    arrivals: dict[str, int] = field(default_factory=dict)
    chair_times: list[float] = field(default_factory=list)

    overdue_waiting: int = 0

    def summary(self) -> dict:
        return metrics.appointment_summary(
            self.adjusted_waits, self.arrivals, self.chair_times, self.overdue_waiting
        )


# The visits a range selects (by check-in time), counted as everywhere: not voided or cancelled.
IN_RANGE = f"site = ? AND checked_in_at >= ? AND checked_in_at < ? AND {COUNTED_VISIT}"


ARRIVAL_COUNTS = (("early", "appt_early"), ("on_time", "appt_on_time"), ("late", "appt_late"))


def appointment_group(
    db: Database,
    ranges: Iterable[tuple[str, datetime, datetime]],
    device: str | None = None,
) -> AppointmentGroup:
    """The lateness-adjusted waits and arrival classes of the visits with an appointment, and
    the chair times of the checked-out visits, checked in within the (site, start, end)
    ranges (one desk's, with ``device``). Whole UTC hours come from the hourly rollup's
    counts and the sorted runs ``hour_runs`` keeps per hour (reading only the hours that
    changed); the partial hours at the ends from the rows, off covering partial indexes
    (``rollups.APPOINTMENT_INDEXES``)."""
    extra, params = device_clause(device)
    group = AppointmentGroup()
    # Every range's reads of one kind in one statement (batched.each), not one per site and
    # partial hour: the wholes' counts and sorted runs, the ends' arrivals and values.
    wholes: list[tuple[str, tuple[str, str]]] = []
    ends: list[tuple[str, str, str]] = []
    for site, start, end in ranges:
        whole, edges = split_at_hours(start, end)
        if whole is not None:
            wholes.append((site, whole))
        ends += [(site, to_rfc3339(a), to_rfc3339(b)) for a, b in edges]
    # The arrival counts, and the sums the two runs are kept against (``ranges_many``).
    counts = each(db, [(
        f"SELECT {', '.join(count_sum(column) for _, column in ARRIVAL_COUNTS)}, "
        f"{ADJUSTED_RUNS.signature_sql()}, {CHAIR_RUNS.signature_sql()} "
        f"FROM visit_hours WHERE site = ? AND hour >= ? AND hour < ? {extra}",
        [site, *whole, *params],
    ) for site, whole in wholes])
    signatures: dict[HourRuns, list[tuple]] = {ADJUSTED_RUNS: [], CHAIR_RUNS: []}
    for (row,) in counts:  # one row each: sums without a GROUP BY
        arrivals, (adjusted, chair) = row[:len(ARRIVAL_COUNTS)], (row[-4:-2], row[-2:])
        signatures[ADJUSTED_RUNS].append(adjusted)
        signatures[CHAIR_RUNS].append(chair)
        for (arrival, _), n in zip(ARRIVAL_COUNTS, arrivals, strict=True):
            if n:
                group.arrivals[arrival] = group.arrivals.get(arrival, 0) + n
    for runs, values in ((ADJUSTED_RUNS, group.adjusted_waits), (CHAIR_RUNS, group.chair_times)):
        found = runs.ranges_many(db, [(site, *whole, extra, params) for site, whole in wholes],
                                 signatures[runs])
        # Where the rows disagree with the rollup: read those ranges' rows instead.
        disagree = [(site, whole) for (site, whole), hours in zip(wholes, found, strict=True)
                    if hours is None]
        rows = iter(each(db, [runs.rows_select(site, f"{whole[0]}:00:00.000Z",
                                               f"{whole[1]}:00:00.000Z", extra, params)
                              for site, whole in disagree]))
        for hours in found:
            values += hours if hours is not None else [value for (value,) in next(rows)]
    arrivals = each(db, [(
        f"SELECT arrival, COUNT(*) FROM visits WHERE {IN_RANGE} "
        f"AND arrival IS NOT NULL {extra} GROUP BY 1", [site, a, b, *params],
    ) for site, a, b in ends])
    for rows in arrivals:
        for arrival, n in rows:
            group.arrivals[arrival] = group.arrivals.get(arrival, 0) + n
    for runs, values in ((ADJUSTED_RUNS, group.adjusted_waits), (CHAIR_RUNS, group.chair_times)):
        for rows in each(db, [runs.rows_select(site, a, b, extra, params)
                              for site, a, b in ends]):
            values += (value for (value,) in rows)
    return group


def ratings_by_language(
    db: Database, spans: list[Span], device: str | None = None
) -> list[dict]:
    """The spans' ratings (misuse left out) per language they were given in, most first:
    ``{"lang", "ratings", "happy_index", "pct_positive", "pct_negative"}``, with ``lang`` None
    for ratings from kiosks that record none. Read from the rows (the hourly rollups do not
    keep the language): a comparison asked for on one page, not a headline figure."""
    extra, params = device_clause(device)
    groups: dict[str | None, RatingGroup] = {}
    # Every span in one statement (batched.each), not one per site.
    for rows in each(db, [(
        "SELECT lang, scale, score, visit_id IS NOT NULL, COUNT(*) FROM ratings "
        f"WHERE site = ? AND occurred_at >= ? AND occurred_at < ? AND misuse = 0 {extra} "
        "GROUP BY 1, 2, 3, 4",
        [span.site, to_rfc3339(span.start), to_rfc3339(span.end), *params],
    ) for span in spans]):
        for lang, scale, score, linked, n in rows:
            groups.setdefault(lang, RatingGroup()).add(scale, score, n, bool(linked))
    rows = []
    for lang, group in groups.items():
        summary = group.summary()
        rows.append({"lang": lang, "ratings": summary["ratings"],
                     "happy_index": summary["happy_index"],
                     "pct_positive": summary["pct_positive"],
                     "pct_negative": summary["pct_negative"]})
    return sorted(rows, key=lambda row: (-row["ratings"], row["lang"] or "~"))


def range_figures(
    db: Database,
    spans: list[Span],
    target: float,
    now: datetime,
    device: str | None = None,
    waiting_since: datetime | None = None,
    scope: Scope | None = None,
    lang: str | None = None,
) -> dict:
    """Every headline figure of the spans (those in ``scope``), and the figures per wait
    bucket: what ``kiosk.shared.metrics.report`` gives for the same visits and ratings."""
    spans = in_scope(spans, scope)
    visits = read_visits(db, spans, device)
    current, overdue = current_waits(db, visits.waiting_ranges, device, now, waiting_since)
    overall, per_bucket = read_ratings(db, spans, device, lang)
    result = headline(overall, visits.waits, (visits.visits, visits.checked_out), target, current)
    result["by_wait_bucket"] = bucket_rows(per_bucket)
    ranges = [(span.site, span.start, span.end) for span in spans]
    appointments = appointment_group(db, ranges, device)
    appointments.overdue_waiting = overdue
    result.update(appointments.summary())
    return result
