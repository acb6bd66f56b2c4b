"""The metric definitions (README, "Metrics"), in one place, used by the kiosk, the central store,
the dashboard, the export and the tests.

Pure functions over plain values: no database, no Kivy. The central store feeds them rows it
selected with SQL; the kiosk feeds them rows from its local store. Percentages are 0-100 and
every figure that has no data is ``None`` (never 0, which would be a lie).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WAIT_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-10", 0.0, 10.0),
    ("10-20", 10.0, 20.0),
    ("20-30", 20.0, 30.0),
    ("30+", 30.0, math.inf),
)
DEFAULT_TARGET_MIN = 15.0
# A negative rating is one of the bottom two faces, on either scale (5 or 4 faces, 1 = worst);
# is_negative() and negative_sql() are the only places that may say so.
NEGATIVE_MAX_SCORE = 2
# Per-person breakdowns (a desk, a device) are hidden below this many responses.
SMALL_NUMBER_THRESHOLD = 30
# "Seen within 15 minutes of the appointment time" (the CG-CAHPS access item): called in at
# most this long after the appointment time, or after arrival for a patient who came late.
SEEN_WITHIN_MIN = 15.0
# Arrival against the appointment: a check-in more than this before the appointment time is
# "early", more than this after it "late", anything in between (edges included) "on time".
# Five minutes either side, because a desk picks appointment times to the quarter-hour and a
# patient stepping in at 08:58 for 09:00 is on time, not early.
ARRIVAL_GRACE_MIN = 5.0
ARRIVAL_CLASSES = ("early", "on_time", "late")
# The queue (the kiosk's waiting list and the dashboard's live queue) holds the visits still
# waiting or in the chair that were checked in within this long, whatever the local day: a
# patient checked in at 23:50 is still in it at 00:10. A visit open for longer was abandoned
# (nobody closed it), not queued.
QUEUE_HORIZON = timedelta(hours=12)


@dataclass(frozen=True)
class VisitTimes:
    """The timestamps of one visit that the wait figures need (all UTC-aware or None)."""

    checked_in_at: datetime
    called_at: datetime | None = None
    checked_out_at: datetime | None = None
    appointment_at: datetime | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class RatingRow:
    """One rating; ``wait_min`` is the linked visit's waiting time when there is one."""

    score: int
    scale: int
    misuse: bool = False
    linked: bool = False
    wait_min: float | None = None


def minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 60.0


def waiting_minutes(visit: VisitTimes) -> float | None:
    """Waiting time = called_at - checked_in_at."""
    return minutes_between(visit.checked_in_at, visit.called_at)


def lateness_adjusted_wait(visit: VisitTimes) -> float | None:
    """called_at - max(arrival, appointment time); None without an appointment time."""
    if visit.appointment_at is None or visit.called_at is None:
        return None
    start = max(visit.checked_in_at, visit.appointment_at)
    # Negative when the patient was called before the appointment time: kept, as defined.
    return minutes_between(start, visit.called_at)


def chair_minutes(visit: VisitTimes) -> float | None:
    """Chair time = checked_out_at - called_at: how long the patient was being seen; never
    below 0 (a checkout stamped before the call, after a clock fix, was not negative time in
    the chair). The one definition, so the kiosk and the central store agree."""
    seen = minutes_between(visit.called_at, visit.checked_out_at)
    return None if seen is None else max(0.0, seen)


def overdue_for_appointment(
    checked_in_at: datetime, appointment_at: datetime | None, now: datetime
) -> bool:
    """A visit with an appointment, still waiting at ``now``, that can no longer be seen within
    SEEN_WITHIN_MIN: more than that has passed since the later of arrival and appointment.

    Such a visit is already a miss; leaving it out until it is called would make a clinic
    running late look best while the queue is longest."""
    if appointment_at is None:
        return False
    return minutes_between(max(checked_in_at, appointment_at), now) > SEEN_WITHIN_MIN


def arrival_class(visit: VisitTimes) -> str | None:
    """'early', 'on_time' or 'late' against the appointment time (see ARRIVAL_GRACE_MIN);
    None without an appointment time."""
    if visit.appointment_at is None:
        return None
    return arrival_class_of(minutes_between(visit.appointment_at, visit.checked_in_at))


def arrival_class_of(minutes_after_appointment: float) -> str:
    """The class of a check-in this many minutes after the appointment time (negative: before)."""
    if minutes_after_appointment < -ARRIVAL_GRACE_MIN:
        return "early"
    if minutes_after_appointment > ARRIVAL_GRACE_MIN:
        return "late"
    return "on_time"


def median(values: Iterable[float]) -> float | None:
    return percentile(values, 50)


def percentile(values: Iterable[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks (the 'inclusive' method, numpy's default)."""
    return percentile_of_sorted(sorted(values), pct)


def percentile_of_sorted(ordered: Sequence[float], pct: float) -> float | None:
    """``percentile`` of values already in ascending order (no copy, no sort)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * pct / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def pct(part: int | float, whole: int | float) -> float | None:
    return None if not whole else 100.0 * part / whole


def wait_summary(
    waits_min: Iterable[float],
    target_min: float = DEFAULT_TARGET_MIN,
    current_waits_min: Iterable[float] = (),
) -> dict:
    """Median, p90 and % within target of completed waits, with n, plus the longest current wait.

    A wait exactly at the target counts as within it. One sort, read in place by both
    percentiles and bisected for the count within the target, so a group of 25,000 waits (the
    dashboard's; Trends over 90 days sums a hundred such groups) is not copied again.
    """
    waits = sorted(waits_min)
    current = list(current_waits_min)
    within = bisect_right(waits, target_min)
    return {
        "waits": len(waits),
        "wait_median_min": round_figure(percentile_of_sorted(waits, 50)),
        "wait_p90_min": round_figure(percentile_of_sorted(waits, 90)),
        "pct_within_target": round_figure(pct(within, len(waits))),
        "longest_current_wait_min": round_figure(max(current)) if current else None,
    }


def face_weight(score: int, scale: int) -> float:
    """Evenly spaced weights: 5-point 100/75/50/25/0, 4-point 100/66.7/33.3/0 (5 or 4 = best)."""
    if scale not in (4, 5):
        raise ValueError(f"rating scale {scale} is not supported: use 5 or 4")
    if not 1 <= score <= scale:
        raise ValueError(f"score {score} is outside 1..{scale}")
    return 100.0 * (score - 1) / (scale - 1)


def is_positive(score: int, scale: int) -> bool:
    """The top two faces of the scale."""
    return score >= scale - 1


def is_negative(score: int, scale: int) -> bool:
    """The bottom two faces of the scale."""
    return score <= NEGATIVE_MAX_SCORE


def negative_sql(score_column: str = "score") -> str:
    """``is_negative`` as a SQL condition, for queries and triggers that count in the database."""
    return f"{score_column} <= {NEGATIVE_MAX_SCORE}"


def rating_summary(counts: Mapping[tuple[int, int], int]) -> dict:
    """Happy Index, % positive, % negative and CSAT from counts keyed by (scale, score).

    CSAT is % positive over the 5-point ratings alone (README, "Metrics": "the same as % positive on
    the 5-point scale"), None when there are none. Counts come pre-aggregated so the central
    store can group in SQL; misuse must already be left out by the caller (``count_ratings``
    does it for plain rows).
    """
    total = sum(counts.values())
    five_point = sum(n for (scale, _), n in counts.items() if scale == 5)
    five_positive = sum(
        n for (scale, score), n in counts.items() if scale == 5 and is_positive(score, scale)
    )
    weighted = sum(face_weight(score, scale) * n for (scale, score), n in counts.items())
    positive = sum(n for (scale, score), n in counts.items() if is_positive(score, scale))
    negative = sum(n for (scale, score), n in counts.items() if is_negative(score, scale))
    return {
        "ratings": total,
        "happy_index": round_figure(weighted / total) if total else None,
        "pct_positive": round_figure(pct(positive, total)),
        "pct_negative": round_figure(pct(negative, total)),
        "csat": round_figure(pct(five_positive, five_point)),
    }


def count_ratings(ratings: Iterable[RatingRow]) -> dict[tuple[int, int], int]:
    """(scale, score) -> n, misuse left out."""
    counts: dict[tuple[int, int], int] = {}
    for rating in ratings:
        if rating.misuse:
            continue
        key = (rating.scale, rating.score)
        counts[key] = counts.get(key, 0) + 1
    return counts


def bucket_of(wait_min: float) -> str:
    """Lower bound inclusive: exactly 10 minutes is '10-20'. Negative (clock skew) is 0-10."""
    for name, low, high in WAIT_BUCKETS:
        if low <= wait_min < high:
            return name
    return WAIT_BUCKETS[0][0]


def bucket_sql(column: str, when_null: str = "NULL") -> str:
    """SQL naming ``column``'s wait bucket as ``bucket_of`` does, edges from ``WAIT_BUCKETS``.

    The one place the bucket edges become SQL (the queries and the rollup triggers all call
    it), so no query can drift from the definition. ``when_null`` is the SQL for a rating
    without a wait (the rollups key it as '').
    """
    whens = " ".join(
        f"WHEN {column} < {high:g} THEN '{name}'" for name, _, high in WAIT_BUCKETS[:-1]
    )
    return f"CASE WHEN {column} IS NULL THEN {when_null} {whens} ELSE '{WAIT_BUCKETS[-1][0]}' END"


def appointment_summary(
    adjusted_waits_min: Iterable[float],
    arrivals: Mapping[str, int],
    chair_times_min: Iterable[float],
    overdue_waiting: int = 0,
) -> dict:
    """The appointment-aware figures (README, "Metrics"), with the public API's field names.

    ``adjusted_waits_min``: the lateness-adjusted waits of the called visits that had an
    appointment; ``arrivals``: visits with an appointment per ``ARRIVAL_CLASSES`` entry (called
    or not); ``chair_times_min``: called-to-checked-out of every checked-out visit;
    ``overdue_waiting``: visits with an appointment still waiting and already past
    SEEN_WITHIN_MIN (``overdue_for_appointment``), counted as misses. A visit seen exactly
    SEEN_WITHIN_MIN after its appointment counts as seen within it.
    """
    adjusted = sorted(adjusted_waits_min)
    chair = sorted(chair_times_min)
    seen_within = bisect_right(adjusted, SEEN_WITHIN_MIN)
    return {
        "appointments": sum(arrivals.get(name, 0) for name in ARRIVAL_CLASSES),
        "arrivals_early": arrivals.get("early", 0),
        "arrivals_on_time": arrivals.get("on_time", 0),
        "arrivals_late": arrivals.get("late", 0),
        "adjusted_waits": len(adjusted),
        "adjusted_wait_median_min": round_figure(median(adjusted)),
        "adjusted_wait_p90_min": round_figure(percentile(adjusted, 90)),
        "overdue_waiting": overdue_waiting,
        "pct_seen_within_15_min": round_figure(pct(seen_within, len(adjusted) + overdue_waiting)),
        "chair_times": len(chair),
        "chair_median_min": round_figure(median(chair)),
        "chair_p90_min": round_figure(percentile(chair, 90)),
    }


def appointment_report(visits: Iterable[VisitTimes], now: datetime | None = None) -> dict:
    """``appointment_summary`` over plain visits (cancelled ones left out); with ``now``, the
    visits still waiting past their 15 minutes count as misses."""
    adjusted, chair = [], []
    arrivals: dict[str, int] = {}
    overdue = 0
    for visit in visits:
        if visit.cancelled:
            continue
        if (now is not None and visit.called_at is None and visit.checked_out_at is None
                and overdue_for_appointment(visit.checked_in_at, visit.appointment_at, now)):
            overdue += 1
        kind = arrival_class(visit)
        if kind is not None:
            arrivals[kind] = arrivals.get(kind, 0) + 1
        wait = lateness_adjusted_wait(visit)
        if wait is not None:
            adjusted.append(wait)
        seen = chair_minutes(visit)
        if seen is not None:
            chair.append(seen)
    return appointment_summary(adjusted, arrivals, chair, overdue)


def seen_within_sql(column: str) -> str:
    """SQL that is 1 when a lateness-adjusted wait in ``column`` counts as "seen within 15
    minutes" (edge included, as ``appointment_summary`` counts it), for counting in SQL."""
    # CASE, not a bare comparison: PostgreSQL's comparisons are booleans, which it does not
    # add up; NULL stays NULL (no wait, no answer).
    return (f"(CASE WHEN {column} <= {SEEN_WITHIN_MIN:g} THEN 1 "
            f"WHEN {column} IS NOT NULL THEN 0 END)")


def appointment_counts(arrivals: Mapping[str, int], adjusted_waits: int, seen_within: int) -> dict:
    """The count-only part of ``appointment_summary``, for groups read as counts (a day of
    Trends): the same field names, percentiles left out."""
    return {
        "appointments": sum(arrivals.get(name, 0) for name in ARRIVAL_CLASSES),
        "arrivals_early": arrivals.get("early", 0),
        "arrivals_on_time": arrivals.get("on_time", 0),
        "arrivals_late": arrivals.get("late", 0),
        "adjusted_waits": adjusted_waits,
        "pct_seen_within_15_min": round_figure(pct(seen_within, adjusted_waits)),
    }


def by_wait_bucket(ratings: Iterable[RatingRow]) -> list[dict]:
    """% positive and Happy Index per waiting-time bucket, all four buckets always listed."""
    per_bucket: dict[str, dict[tuple[int, int], int]] = {name: {} for name, _, _ in WAIT_BUCKETS}
    for rating in ratings:
        if rating.misuse or rating.wait_min is None:
            continue
        counts = per_bucket[bucket_of(rating.wait_min)]
        key = (rating.scale, rating.score)
        counts[key] = counts.get(key, 0) + 1
    return [bucket_row(name, counts) for name, counts in per_bucket.items()]


def bucket_row(name: str, counts: Mapping[tuple[int, int], int]) -> dict:
    """One wait bucket's row of "rating by wait": its responses, % positive and Happy Index."""
    summary = rating_summary(counts)
    return {
        "bucket": name,
        "ratings": summary["ratings"],
        "pct_positive": summary["pct_positive"],
        "happy_index": summary["happy_index"],
    }


def response_rate(linked_ratings: int, checked_out_visits: int) -> float | None:
    """Ratings linked to a visit / checked-out visits, as a percentage (0-100).

    A visit has at most one linked rating, so over one set of visits the ratio cannot pass
    100%. Over a time range the two counts select by different instants (ratings by when they
    were given, visits by check-in), so a visit checked in just before the range and rated
    inside it could tip it over: at most every checked-out visit responded.
    """
    return round_figure(pct(min(linked_ratings, checked_out_visits), checked_out_visits))


def report(
    visits: Iterable[VisitTimes],
    ratings: Iterable[RatingRow],
    target_min: float = DEFAULT_TARGET_MIN,
    now: datetime | None = None,
) -> dict:
    """Every headline figure with the field names of the public API (README, "HTTP API").

    ``visits`` are those checked in within the range; ``ratings`` those that occurred in it.
    ``visits`` counts checked-in visits that were not cancelled; the wait figures use those
    that were called; the longest current wait is over visits not yet called (needs ``now``).
    """
    visits = [v for v in visits if not v.cancelled]
    ratings = list(ratings)
    waits = [w for w in (waiting_minutes(v) for v in visits) if w is not None]
    current = (
        [minutes_between(v.checked_in_at, now) for v in visits if v.called_at is None]
        if now is not None
        else []
    )
    checked_out = sum(1 for v in visits if v.checked_out_at is not None)
    linked = sum(1 for r in ratings if r.linked and not r.misuse)
    result = {"visits": len(visits), "checked_out": checked_out}
    result.update(rating_summary(count_ratings(ratings)))
    result["response_rate"] = response_rate(linked, checked_out)
    result.update(wait_summary(waits, target_min, current))
    result["by_wait_bucket"] = by_wait_bucket(ratings)
    result.update(appointment_report(visits, now))
    return result


def local_day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """The UTC instants where a site's local day starts and ends (DST days are 23 or 25 h)."""
    zone = ZoneInfo(tz_name)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def local_today(now_utc: datetime, tz_name: str) -> date:
    return now_utc.astimezone(ZoneInfo(tz_name)).date()


def round_figure(value: float | None, digits: int = 2) -> float | None:
    """A figure as shown and answered: two decimals, None (no data) kept as None."""
    return None if value is None else round(value, digits)
