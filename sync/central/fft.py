"""The NHS Friends and Family Test monthly return, per site and the site's local calendar month.

What a practice submits each month: the count of each of the six answers, the total, % positive
and % negative (``kiosk.shared.fft.fft_figures``, NHS England's definitions) and the collection
mode, "tablet/kiosk" for everything a kiosk collects. A month with no responses is a row of
zeros, never left out.

Which responses count: answers asked as the FFT question (the kiosk's FFT screen sends
``"survey": "fft"``; the five graded answers are its five faces) and "Don't know" answers
(only the FFT asks it), misuse left out, that occurred in the site's local month (a month with
a DST change is simply the instants between its two local midnights). The faces of a site
asking its own smiley question are not FFT answers, even on 5 points, and are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from kiosk.shared.fft import ANSWERS, COLLECTION_MODE, FFT_SCALE, KEY_OF_SCORE, fft_figures
from kiosk.shared.timeutil import to_rfc3339
from kiosk.shared.wire import SURVEY_FFT
from sync.central.sites import SiteConfig

MONTH_PATTERN = re.compile(r"([0-9]{4})-([0-9]{2})")
MAX_MONTHS = 36
# The month parameter's shape for the OpenAPI description (a year from 2000 to 9998, a month
# 01-12, optionally '..' and another; or empty for the default), so clients and fuzzers know
# what is valid. The order of a range and its length are checked in code (400).
_YEAR = r"(20[0-9]{2}|2[1-9][0-9]{2}|[3-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
_MONTH = rf"{_YEAR}-(0[1-9]|1[0-2])"
MONTH_SCHEMA = {"anyOf": [{"type": "string", "pattern": rf"^{_MONTH}(\.\.{_MONTH})?$"},
                          {"type": "string", "maxLength": 0}]}
# The CSV's columns: the fields of the monthly submission, in its order.
CSV_COLUMNS = ("Site", "Month", "Collection mode", *(words for _, words, _ in ANSWERS),
               "Total responses", "% positive", "% negative")


class InvalidMonth(ValueError):
    """A month that is not YYYY-MM (or a range of them); the message says what to send."""


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def bounds(self, zone: str) -> tuple[str, str]:
        """[start, end) of this month on the zone's clock, as stored instants (UTC)."""
        tz = ZoneInfo(zone)
        after = self.next()
        start = datetime(self.year, self.month, 1, tzinfo=tz)
        end = datetime(after.year, after.month, 1, tzinfo=tz)
        return to_rfc3339(start), to_rfc3339(end)


def _one_month(text: str) -> Month:
    found = MONTH_PATTERN.fullmatch(text)
    if not found or not 1 <= int(found.group(2)) <= 12 or not 2000 <= int(found.group(1)) <= 9998:
        raise InvalidMonth(
            f"month {text!r} is not a month like 2026-11 (four-digit year from 2000, a hyphen, "
            "two-digit month 01-12), or a range like 2026-09..2026-11"
        )
    return Month(int(found.group(1)), int(found.group(2)))


def parse_months(text: str | None, today: date) -> list[Month]:
    """``YYYY-MM`` or ``YYYY-MM..YYYY-MM`` (at most ``MAX_MONTHS``); by default (left out, or
    empty as a form sends it) the month before ``today``'s, the one a practice submits next.
    Exactly as ``MONTH_SCHEMA`` describes it: a month with spaces or a tab around it, or only
    a tab, is a 400 too, not the default (found by the API fuzzer: ``month=%09``)."""
    if text is None or text == "":
        return [Month(today.year, today.month).previous()]
    first_text, _, last_text = text.partition("..")
    first = _one_month(first_text)
    last = _one_month(last_text) if last_text else first
    if (last.year, last.month) < (first.year, first.month):
        raise InvalidMonth(f"the range {text!r} ends before it starts: put the earlier month first")
    months = [first]
    while months[-1] != last:
        months.append(months[-1].next())
        if len(months) > MAX_MONTHS:
            raise InvalidMonth(f"the range {text!r} is longer than {MAX_MONTHS} months")
    return months


def _counts(db: Database, site: str, start: str, end: str) -> dict[str, int]:
    counts = {key: 0 for key, _, _ in ANSWERS}
    for score, n in db.execute(
        "SELECT score, COUNT(*) FROM ratings WHERE site = ? AND occurred_at >= ? "
        "AND occurred_at < ? AND misuse = 0 AND scale = ? AND survey = ? GROUP BY score",
        [site, start, end, FFT_SCALE, SURVEY_FFT],
    ):
        counts[KEY_OF_SCORE[score]] = n
    counts["dont_know"] = db.execute(
        "SELECT COUNT(*) FROM dont_know_answers WHERE site = ? AND occurred_at >= ? "
        "AND occurred_at < ? AND misuse = 0",
        [site, start, end],
    ).fetchone()[0]
    return counts


def monthly_return(db: Database, sites: list[SiteConfig], months: list[Month]) -> list[dict]:
    """One row per site and month (sites by name, then months in order), zeros included."""
    rows = []
    for site in sorted(sites, key=lambda s: s.name):
        for month in months:
            start, end = month.bounds(site.timezone)
            rows.append({"site": site.name, "month": str(month),
                         "collection_mode": COLLECTION_MODE,
                         **fft_figures(_counts(db, site.name, start, end))})
    return rows


def csv_row(row: dict) -> list:
    """A monthly-return row in ``CSV_COLUMNS`` order; a percentage with no responses is empty."""
    return [row["site"], row["month"], row["collection_mode"],
            *(row[key] for key, _, _ in ANSWERS), row["total"],
            "" if row["pct_positive"] is None else row["pct_positive"],
            "" if row["pct_negative"] is None else row["pct_negative"]]
