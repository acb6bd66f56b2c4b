"""CSV export of visits and ratings for a range: the dashboard's download and the API's.

Only ticket codes and timestamps exist (no personal data). A cell that starts with = + - @
(or a tab / carriage return) would run as a formula when opened in a spreadsheet, so such text
cells get a leading apostrophe; numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from sqlite_utils import Database

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
VISIT_COLUMNS = (
    "visit_id",
    "site",
    "desk",
    "ticket",
    "status",
    "checked_in_at",
    "called_at",
    "checked_out_at",
    "cancelled_at",
    "wait_min",
    # Added after the first release, so at the end: readers of the first columns keep working.
    "cancel_reason",
    "appointment_at",
)
RATING_COLUMNS = (
    "rating_id",
    "site",
    "desk",
    "occurred_at",
    "scale",
    "score",
    "tags",
    "misuse",
    "visit_id",
    "link",
    "wait_min",
    "lang",  # the language the patient answered in (empty from kiosks that record none)
)
CHUNK_ROWS = 2000


def neutralise(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_chunks(columns: tuple[str, ...], rows: Iterable[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        writer.writerow([neutralise(value) for value in row])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def streamed(db: Database, sql: str, params: list) -> Iterable[tuple]:
    """A long read's rows as they come: SQLite's cursor steps through them already; on
    PostgreSQL the adapter's ``stream`` reads them from a server-side cursor (its ``execute``
    would fetch the whole result before the first row)."""
    stream = getattr(db, "stream", None)
    return stream(sql, params) if stream is not None else db.execute(sql, params)


def visit_rows(db: Database, ranges: list[tuple[str | None, str, str]]) -> Iterator[tuple]:
    """Visits checked in within each (site or None for all, start, end), voided ones left out."""
    # round(CAST(... AS NUMERIC), 2): PostgreSQL rounds to digits only numerics (SQLite's
    # round gives the same float either way).
    for site, start, end in ranges:
        site_clause = "AND v.site = ?" if site else ""
        params = [start, end, *([site] if site else [])]
        yield from streamed(
            db,
            "SELECT v.id, v.site, d.name, v.ticket, v.status, v.checked_in_at, v.called_at, "
            "v.checked_out_at, v.cancelled_at, round(CAST(v.wait_min AS NUMERIC), 2), "
            "v.cancel_reason, v.appointment_at FROM visits v "
            "LEFT JOIN devices d ON d.id = v.device_id WHERE v.checked_in_at >= ? "
            f"AND v.checked_in_at < ? AND v.voided = 0 {site_clause} ORDER BY v.checked_in_at",
            params,
        )


def rating_rows(db: Database, ranges: list[tuple[str | None, str, str]]) -> Iterator[tuple]:
    """Ratings that occurred within each range, misuse included and flagged (it is data)."""
    for site, start, end in ranges:
        site_clause = "AND r.site = ?" if site else ""
        params = [start, end, *([site] if site else [])]
        cursor = streamed(
            db,
            "SELECT r.id, r.site, d.name, r.occurred_at, r.scale, r.score, r.tags, r.misuse, "
            "r.visit_id, r.link, round(CAST(r.wait_min AS NUMERIC), 2), r.lang FROM ratings r "
            "LEFT JOIN devices d ON d.id = r.device_id WHERE r.occurred_at >= ? "
            f"AND r.occurred_at < ? {site_clause} ORDER BY r.occurred_at",
            params,
        )
        for row in cursor:
            row = list(row)
            row[6] = ";".join(json.loads(row[6] or "[]"))
            yield tuple(row)


def visits_csv(db: Database, ranges) -> Iterator[str]:
    return csv_chunks(VISIT_COLUMNS, visit_rows(db, ranges))


def ratings_csv(db: Database, ranges) -> Iterator[str]:
    return csv_chunks(RATING_COLUMNS, rating_rows(db, ranges))
