"""The API's metrics request: its range, checked, and its answer from ``sync.central.figures``.

Visits are selected by check-in time and ratings by ``occurred_at``; the figures are read and
computed by the same code as the dashboard's (``figures.range_figures``), so the two cannot
disagree; this module only turns the query string into a range and names the answer's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from sync.central import figures
from sync.central.figures import Span, target_of
from sync.central.permissions import Scope
from sync.central.sites import get_site, list_sites

DEFAULT_RANGE = timedelta(hours=24)
# A range's ends must leave room for the day of arithmetic done around them (the default
# 24 hours, whole hours, local days) inside Python's years 1-9999.
EARLIEST_BOUND = datetime(1, 1, 2, tzinfo=UTC)
LATEST_BOUND = datetime(9999, 12, 30, tzinfo=UTC)


class InvalidRange(ValueError):
    """A metrics range that cannot be used; the message says why."""


@dataclass(frozen=True)
class MetricsQuery:
    start: datetime
    end: datetime
    site: str | None = None
    device: str | None = None
    scope: Scope | None = None  # the reader's sites; None: every site
    lang: str | None = None  # rating figures of the ratings given in this language only


def parse_range(
    from_text: str | None, to_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """[from, to) as UTC instants; defaults: the 24 hours before ``to``, ``to`` = now."""
    try:
        end = parse_rfc3339(to_text) if to_text else now
    except ValueError as error:
        raise InvalidRange(
            f"'to' must be an RFC 3339 instant like 2026-11-23T09:00:00Z ({error})"
        ) from None
    try:
        start = parse_rfc3339(from_text) if from_text else max(end, EARLIEST_BOUND) - DEFAULT_RANGE
    except ValueError as error:
        raise InvalidRange(
            f"'from' must be an RFC 3339 instant like 2026-11-23T09:00:00Z ({error})"
        ) from None
    for name, moment in (("to", end), ("from", start)):
        if not EARLIEST_BOUND <= moment <= LATEST_BOUND:
            raise InvalidRange(
                f"'{name}' must lie between {EARLIEST_BOUND.date()} and {LATEST_BOUND.date()}"
            )
    if start >= end:
        raise InvalidRange("'from' must be before 'to'")
    return start, end


def _site_names(db: Database, query: MetricsQuery) -> list[str]:
    if query.site is not None:
        return [query.site]
    return [row[0] for row in db.execute("SELECT name FROM sites UNION SELECT site FROM devices")]


def target_for(db: Database, site: str | None, scope: Scope | None = None) -> float:
    """The site's target; across sites, the target they share, else the default."""
    if site is not None:
        return target_of([get_site(db, site)])
    return target_of(figures.sites_in_scope(list_sites(db), scope))


def compute_metrics(db: Database, query: MetricsQuery, now: datetime) -> dict:
    """Every API figure for the query, with the field names of the README's HTTP API."""
    target = target_for(db, query.site, query.scope)
    spans = [Span(site, query.start, query.end) for site in _site_names(db, query)]
    result = figures.range_figures(db, spans, target, now, device=query.device,
                                   scope=query.scope, lang=query.lang)
    result.update(
        {
            "site": query.site,
            "device": query.device,
            "from": to_rfc3339(query.start),
            "to": to_rfc3339(query.end),
            "target_wait_min": target,
            "lang": query.lang,
        }
    )
    return result
