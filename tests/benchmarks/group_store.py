"""A clinic group's central store at scale for figure 16: 20 sites, 80 desks, three years, about
10 million events, written at once into a SQLite store and a PostgreSQL database.

The rows are made by the demo's bulk generator (``sync.central.dashboard.demo.bulk_rows``: wire
events, and the visit and rating rows the projection's own replay makes of them, exactly what
ingest stores), a fortnight at a time, so memory holds one fortnight whatever the size. Each
fortnight goes to both engines before the next is made, so the two stores hold the same rows
(same ids) and the generator runs once:

* SQLite: ``executemany`` in one transaction per fortnight (the WAL stays one fortnight long);
  the rollup triggers count every row as it lands, as they do for ingest and for figure 6.
* PostgreSQL: ``COPY`` per table and fortnight, on a connection with
  ``session_replication_role = replica`` (row triggers off for that session only); the rollups
  are then built by the statements the migrations use to count rows already stored
  (``rollups.rating_backfill`` and ``rollups.visit_backfill``, then ``rollups.site_backfill``
  adds the desks up per site), and ``VACUUM ANALYZE`` runs.

The two stores' rollups are compared at the end (every hour row and count): triggers on one
side, the migrations' backfill on the other, so a disagreement would be a bug in one of them.
Time is measured per part (generating, each engine's writes, the rollups, the analyse).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from kiosk.shared.timeutil import utc_now
from sync.central import auth, sites
from sync.central.dashboard import demo
from sync.central.rollups import (
    RATING_FACES,
    face_column,
    rating_backfill,
    site_backfill,
    visit_backfill,
)
from sync.central.storage import CentralStore

DAYS = 3 * 365
# 20 sites: the names figure 6 asks for one site by ("Northgate Dental") among them.
SITE_NAMES = (
    "Northgate Dental", "Riverside Medical", "Eastfield Surgery", "Westbrook Clinic",
    "Hillside Practice", "Lakeview Health", "Oakwood Dental", "Millbrook Medical",
    "Harbour Clinic", "Kingsway Surgery", "Elmstead Practice", "Castlegate Dental",
    "Fairview Medical", "Greenway Clinic", "Bridgend Surgery", "Ashford Dental",
    "Mayfield Practice", "Parkside Medical", "Southgate Clinic", "Thornbury Dental",
)
ZONES = ("Europe/London", "Europe/Dublin")
# Desks per site, 3 to 5 (80 in all); each desk's lateness (minutes) and rating penalty vary.
DESKS = (4, 3, 5, 4, 4, 3, 5, 4, 4, 4, 3, 5, 4, 4, 4, 3, 5, 4, 4, 4)
# Events a visit makes on average in the demo's model (check-in; call, check-out, 72% rated;
# 3% cancelled; the odd misuse press): the arrival rate is scaled by it to reach the target.
EVENTS_PER_VISIT = 3.69
# Arrivals per desk per day at rate 1 (demo.HOURLY_ARRIVALS over demo.WEEKDAY_FACTOR's week).
PER_DESK_DAY = 203.2 / 7
ROLLUPS = ("rating_hours", "negative_tag_hours", "visit_hours", "site_rating_hours",
           "site_visit_hours")


@dataclass
class FillReport:
    events: int = 0
    visits: int = 0
    ratings: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, part: str, seconds: float) -> None:
        self.seconds[part] = self.seconds.get(part, 0.0) + seconds


def _devices(store: CentralStore) -> list[demo.DemoDevice]:
    """The group's sites and desks, enrolled in ``store`` as `site set` and `device add` do."""
    made = []
    rng = random.Random(13)
    with store.write() as db:
        for index, (site, desks) in enumerate(zip(SITE_NAMES, DESKS, strict=True)):
            zone = ZONES[index % len(ZONES)]
            sites.update_site(db, site, timezone=zone, target_wait_min=15)
            for number in range(1, desks + 1):
                device, _ = auth.add_device(db, site, f"desk-{number}")
                lateness = rng.choice((0.0, 0.0, 1.0, 2.0, 5.0, 9.0))
                penalty = rng.choice((0.0, 0.0, 0.1, 0.2, 0.45))
                made.append(demo.DemoDevice(device.id, site, device.name, ZoneInfo(zone),
                                            lateness, penalty))
    return made


def _copy_enrolment(source: CentralStore, target: CentralStore) -> None:
    """The same sites and devices (same ids and token hashes) in the second store."""
    with target.write() as db:
        for table in ("sites", "devices"):
            for row in source.db.query(f"SELECT * FROM {table}"):
                db[table].insert(dict(row))


def _plan(events: int, now: datetime, desks: int, days: int) -> demo.Plan:
    plan = demo.Plan(now, rng=random.Random(7))
    visits = (events - desks * days) / EVENTS_PER_VISIT  # a heartbeat per desk and day
    plan.rate = max(visits, 0) / (desks * days * PER_DESK_DAY)
    return plan


def _sqlite_write(store: CentralStore, rows: tuple[list, list, list]) -> None:
    with store.write() as db:
        demo._insert_rows(db.conn, *rows)


def _postgres_write(raw, rows: tuple[list, list, list]) -> None:
    with raw.transaction(), raw.cursor() as cursor:
        for (table, columns), table_rows in zip(demo.BULK_COLUMNS.items(), rows, strict=True):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in table_rows:
                    copy.write_row(row)


def fill(sqlite_store: CentralStore, postgres_store: CentralStore, events: int,
         days: int = DAYS, now: datetime | None = None, progress=print) -> FillReport:
    """Fill both (empty) stores with about ``events`` events over ``days`` days ending now."""
    from sync.central import postgres

    report = FillReport()
    now = now or utc_now()
    random.seed(7)  # event ids: the same store on every fill
    devices = _devices(sqlite_store)
    _copy_enrolment(sqlite_store, postgres_store)
    plan = _plan(events, now, len(devices), days)
    raw = postgres.connect(postgres_store.database_url).conn.raw
    raw.autocommit = True
    raw.execute("SET session_replication_role = replica")  # this session's triggers off
    sqlite_store.db.conn.execute("PRAGMA cache_size = -1000000")  # 1 GB: the PK indexes
    contacts: list[list] = []
    rows_iter = demo.bulk_rows(devices, days, plan, contacts)
    began = time.monotonic()
    while True:
        started = time.monotonic()
        rows = next(rows_iter, None)
        report.add("generate", time.monotonic() - started)
        if rows is None:
            break
        started = time.monotonic()
        _sqlite_write(sqlite_store, rows)
        report.add("sqlite", time.monotonic() - started)
        started = time.monotonic()
        _postgres_write(raw, rows)
        report.add("postgres", time.monotonic() - started)
        report.events += len(rows[0])
        report.visits += len(rows[1])
        report.ratings += len(rows[2])
        progress(f"[fill] {report.events:,} events, {time.monotonic() - began:.0f} s")
    for store in (sqlite_store, postgres_store):
        with store.write() as db:
            for params in contacts:
                db.execute(demo.DEVICE_CONTACT_UPDATE, params)
    started = time.monotonic()
    sqlite_store.db.conn.execute("PRAGMA cache_size = -2000")
    sqlite_store.db.execute("ANALYZE")
    report.add("sqlite analyze", time.monotonic() - started)
    started = time.monotonic()
    with postgres_store.write() as db:  # the rollups have no triggers: no need to turn off
        for statement in (*rating_backfill(), visit_backfill(), *site_backfill()):
            db.execute(statement)
    report.add("postgres rollups", time.monotonic() - started)
    started = time.monotonic()
    raw.execute("VACUUM ANALYZE")
    report.add("postgres vacuum analyze", time.monotonic() - started)
    raw.close()
    check_same_rollups(sqlite_store, postgres_store)
    return report


def check_same_rollups(one: CentralStore, other: CentralStore) -> None:
    """Both stores' rollup tables hold the same rows and counts (``changes`` aside: the
    triggers bump it per visit, the backfill leaves it at 0)."""
    for table in ROLLUPS:
        columns = [c for c in _columns(one, table) if c != "changes"]
        totals = ", ".join(f"SUM({c})" for c in columns if c in COUNT_COLUMNS)
        sql = f"SELECT COUNT(*), {totals} FROM {table}"
        mine, theirs = (tuple(store.db.execute(sql).fetchone()) for store in (one, other))
        if mine != theirs:
            raise AssertionError(f"{table} differs between the engines: {mine} != {theirs}")


COUNT_COLUMNS = {"n", "visits", "checked_out", "waits", "appt_early", "appt_on_time",
                 "appt_late", "appt_called", "appt_within", "appt_chair", "linked",
                 *(face_column(scale, score) for scale, score in RATING_FACES)}


def _columns(store: CentralStore, table: str) -> list[str]:
    from sync.central.storage import column_names

    return column_names(store.db, table)
