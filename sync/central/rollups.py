"""The hourly rollups and covering indexes every reader of the figures uses.

The central store's own schema (created by ``sync.central.migrations``), not the dashboard's:
the public API, the dashboard and the exports all read them through ``sync.central.figures``.
The rules the triggers apply (the wait buckets, what a negative rating is) are generated from
``kiosk.shared.metrics``, never typed here, so the rollups cannot drift from the definitions.
"""

from __future__ import annotations

from sqlite_utils import Database

from kiosk.shared.metrics import bucket_sql, negative_sql, seen_within_sql
from sync.central.bulk_writes import on_postgres


def create_wait_indexes(db: Database) -> None:
    # Waits are read as a bare list for the percentiles: this partial index holds exactly the
    # visits that have one, with every column the query reads (a covering range scan).
    db.execute(
        "CREATE INDEX idx_visits_waits ON visits (site, checked_in_at, wait_min, device_id, "
        "voided, cancel_reason) WHERE voided = 0 AND cancel_reason IS NULL "
        "AND wait_min IS NOT NULL"
    )
    # The same per desk, so comparing desks reads each desk's range and nothing else.
    db.execute(
        "CREATE INDEX idx_visits_desk_waits ON visits (site, device_id, checked_in_at, wait_min, "
        "voided, cancel_reason) WHERE voided = 0 AND cancel_reason IS NULL "
        "AND wait_min IS NOT NULL"
    )


# Hourly counts kept by triggers, so every writer (ingest, a bulk load, another tool) keeps
# them right inside its own transaction, and a rating re-paired or a visit cancelled later
# moves its count. Keys are UTC hours ('2026-11-23T09'); the dashboard maps them to each site's
# local day and hour. Misuse presses are not counted; voided and cancelled visits neither.
def rollup_bucket(row: str) -> str:
    """The rollups' bucket key of a rating row: its wait bucket, '' without a wait."""
    return bucket_sql(f"{row}.wait_min", when_null="''")


def as_count(condition: str) -> str:
    """A condition as 1 or 0 (NULL stays NULL): SQLite's truth values are integers already,
    PostgreSQL's are booleans, and the rollups add them up; the same SQL serves both."""
    return f"CAST(({condition}) AS INTEGER)"


def count_sum(expression: str, where: str | None = None) -> str:
    """SUM of a rollup's counts (of the rows ``where`` holds, if given) as an integer on both
    engines. PostgreSQL sums a bigint column to ``numeric``, which the store's loader turns into
    an int one value at a time in Python (``postgres._NumericAsNumber``); a 90-day page reads
    tens of thousands of such sums (benchmark figure 16). The same numbers; on SQLite the CAST
    changes nothing."""
    only = f" FILTER (WHERE {where})" if where else ""
    return f"CAST(SUM({expression}){only} AS BIGINT)"


def _rating_key(row: str) -> str:
    return (
        f"{row}.site, {row}.device_id, substr({row}.occurred_at, 1, 13), {row}.scale, "
        f"{row}.score, {as_count(f'{row}.visit_id IS NOT NULL')}, {rollup_bucket(row)}"
    )


def _rating_match(row: str) -> str:
    return (
        f"site = {row}.site AND device_id = {row}.device_id "
        f"AND hour = substr({row}.occurred_at, 1, 13) AND scale = {row}.scale "
        f"AND score = {row}.score AND linked = {as_count(f'{row}.visit_id IS NOT NULL')} "
        f"AND bucket = {rollup_bucket(row)}"
    )


def _rating_add(row: str) -> str:
    return (
        "INSERT INTO rating_hours (site, device_id, hour, scale, score, linked, bucket, n) "
        f"VALUES ({_rating_key(row)}, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
        "INSERT INTO negative_tag_hours (site, device_id, hour, tag, n) "
        f"SELECT {row}.site, {row}.device_id, substr({row}.occurred_at, 1, 13), value, 1 "
        f"FROM (SELECT DISTINCT value FROM json_each({row}.tags)) AS tags "
        f"WHERE {negative_sql(f'{row}.score')} "
        "ON CONFLICT DO UPDATE SET n = n + 1;"
    )


def _rating_remove(row: str) -> str:
    return (
        f"UPDATE rating_hours SET n = n - 1 WHERE {_rating_match(row)};"
        "UPDATE negative_tag_hours SET n = n - 1 WHERE "
        f"{negative_sql(f'{row}.score')} AND site = {row}.site AND device_id = {row}.device_id "
        f"AND hour = substr({row}.occurred_at, 1, 13) "
        f"AND tag IN (SELECT value FROM json_each({row}.tags));"
    )


VISIT_COUNTED = (
    "{row}.voided = 0 AND {row}.cancel_reason IS NULL AND {row}.checked_in_at IS NOT NULL"
)


def appointment_hour_counts(row: str) -> dict[str, str]:
    """The appointment counts ``visit_hours`` keeps per hour (migration
    ``_appointment_figures``), as SQL over one visit row: booked visits per arrival class, those
    called, those seen within 15 minutes (``metrics.seen_within_sql``), and the visits with a
    chair time (how many values ``hour_runs.CHAIR_RUNS`` holds for the hour)."""
    return {
        # coalesce: 0 (never NULL) for a visit without an appointment.
        **{f"appt_{arrival}": f"coalesce({as_count(f'{row}.arrival = {arrival!r}')}, 0)"
           for arrival in ("early", "on_time", "late")},
        "appt_called": as_count(f"{row}.adjusted_wait_min IS NOT NULL"),
        "appt_within": f"coalesce({seen_within_sql(f'{row}.adjusted_wait_min')}, 0)",
        "appt_chair": as_count(f"{row}.chair_min IS NOT NULL"),
    }


def _visit_add(row: str, versioned: bool = False, appointments: bool = False,
               per_desk: bool = True) -> str:
    bump = ", changes = changes + 1" if versioned else ""
    counts = appointment_hour_counts(row) if appointments else {}
    columns = "".join(f", {name}" for name in counts)
    values = "".join(f", {sql}" for sql in counts.values())
    sets = "".join(f", {name} = {name} + excluded.{name}" for name in counts)
    table, desk_column, desk = (("visit_hours", "device_id, ", f"{row}.device_id, ") if per_desk
                                else ("site_visit_hours", "", ""))
    return (
        f"INSERT INTO {table} (site, {desk_column}hour, visits, checked_out, waits{columns}) "
        f"VALUES (coalesce({row}.site, ''), {desk}substr({row}.checked_in_at, 1, 13), "
        f"1, {as_count(f'{row}.checked_out_at IS NOT NULL')}, "
        f"{as_count(f'{row}.wait_min IS NOT NULL')}{values}) "
        "ON CONFLICT DO UPDATE SET visits = visits + 1, "
        f"checked_out = checked_out + excluded.checked_out, waits = waits + excluded.waits"
        f"{sets}{bump};"
    )


def _visit_remove(row: str, versioned: bool = False, appointments: bool = False,
                  per_desk: bool = True) -> str:
    bump = ", changes = changes + 1" if versioned else ""
    counts = appointment_hour_counts(row) if appointments else {}
    sets = "".join(f", {name} = {name} - {sql}" for name, sql in counts.items())
    table, desk = (("visit_hours", f"AND device_id = {row}.device_id ") if per_desk
                   else ("site_visit_hours", ""))
    return (
        f"UPDATE {table} SET visits = visits - 1, "
        f"checked_out = checked_out - {as_count(f'{row}.checked_out_at IS NOT NULL')}, "
        f"waits = waits - {as_count(f'{row}.wait_min IS NOT NULL')}{sets}{bump} "
        f"WHERE site = coalesce({row}.site, '') {desk}"
        f"AND hour = substr({row}.checked_in_at, 1, 13);"
    )


def _visit_triggers(versioned: bool, appointments: bool = False,
                    per_desk: bool = True) -> dict[str, tuple[str, str]]:
    """The four triggers that keep ``visit_hours`` (or, ``per_desk=False``, the per-site
    ``site_visit_hours``, whose triggers are named ``site_...``) counting the counted visits."""
    prefix = "" if per_desk else "site_"
    options = {"versioned": versioned, "appointments": appointments, "per_desk": per_desk}
    return {
        f"{prefix}visits_rollup_insert": (
            f"AFTER INSERT ON visits WHEN {VISIT_COUNTED.format(row='NEW')}",
            _visit_add("NEW", **options),
        ),
        f"{prefix}visits_rollup_delete": (
            f"AFTER DELETE ON visits WHEN {VISIT_COUNTED.format(row='OLD')}",
            _visit_remove("OLD", **options),
        ),
        f"{prefix}visits_rollup_update_old": (
            f"AFTER UPDATE ON visits WHEN {VISIT_COUNTED.format(row='OLD')}",
            _visit_remove("OLD", **options),
        ),
        f"{prefix}visits_rollup_update_new": (
            f"AFTER UPDATE ON visits WHEN {VISIT_COUNTED.format(row='NEW')}",
            _visit_add("NEW", **options),
        ),
    }


def version_visit_hours(db: Database) -> None:
    """Migration 3: ``visit_hours.changes`` counts every change to an hour's counted visits
    (one added, removed or edited: a wait fixed later moves no count but bumps this), so the
    dashboard can keep each hour's sorted waits in memory and know exactly when to read them
    again (``dashboard.wait_cache.WaitRuns``)."""
    db.execute("ALTER TABLE visit_hours ADD COLUMN changes INTEGER NOT NULL DEFAULT 0")
    for name, (when, body) in _visit_triggers(versioned=True).items():
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
        db.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")


def rating_backfill() -> tuple[str, str]:
    """The statements that count the ratings already stored into empty ``rating_hours`` and
    ``negative_tag_hours`` (what the triggers would have added, row by row). Migration 2 runs
    them; so does a bulk load that fills ``ratings`` with the triggers off (benchmark 13)."""
    return (
        "INSERT INTO rating_hours SELECT site, device_id, substr(occurred_at, 1, 13), scale, "
        f"score, {as_count('visit_id IS NOT NULL')}, {rollup_bucket('ratings')}, COUNT(*) "
        "FROM ratings WHERE misuse = 0 GROUP BY 1, 2, 3, 4, 5, 6, 7",
        "INSERT INTO negative_tag_hours SELECT r.site, r.device_id, substr(r.occurred_at, 1, 13), "
        "t.value, COUNT(DISTINCT r.rowid) FROM ratings r, json_each(r.tags) t WHERE r.misuse = 0 "
        f"AND {negative_sql('r.score')} GROUP BY 1, 2, 3, 4",
    )


# The hourly rollups and their keys; on SQLite each is a WITHOUT ROWID table, stored in key
# order, so a site's range of hours is read from adjacent pages.
ROLLUP_PRIMARY_KEYS = {
    "rating_hours": ("site", "hour", "device_id", "scale", "score", "linked", "bucket"),
    "negative_tag_hours": ("site", "hour", "device_id", "tag"),
    "visit_hours": ("site", "hour", "device_id"),
}


def rollup_columns(db: Database, table: str) -> list[str]:
    """The table's columns in order, on PostgreSQL: the table the next statement would name
    (``regclass`` follows the search path as ALTER TABLE does)."""
    columns = [row[0] for row in db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = ?::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum", [table],
    ).fetchall()]
    if not columns:
        raise RuntimeError(f"the table {table} has no columns to read")
    return columns


def cover_rollup_keys(db: Database, keys_of: dict[str, tuple[str, ...]] = ROLLUP_PRIMARY_KEYS
                      ) -> None:
    """On PostgreSQL, each rollup's primary key INCLUDEs the table's other columns, so a read of
    a site's hours is an index-only scan in key order, as on SQLite's WITHOUT ROWID tables.

    A PostgreSQL table is a heap in the order rows came: the rollup rows of one site's hours
    were written hour after hour among every other site's, so a 90-day read of one site's
    4,322 rating rows touched 3,981 pages (benchmark figure 16: the Trends page over 90 days
    read the two rollups for 1.3 s on 10 million events). The key keeps its name
    (``<table>_pkey``, which ``ON CONFLICT`` names) and its columns. ``keys_of``: the tables
    and their keys (the per-desk rollups by default; the per-site ones are covered when made,
    ``SITE_ROLLUP_KEYS``). A migration that adds a column a page sums must call this again
    for that table. On SQLite nothing changes."""
    if not on_postgres(db):
        return
    for table, keys in keys_of.items():
        included = [column for column in rollup_columns(db, table) if column not in keys]
        db.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, ADD CONSTRAINT {table}_pkey "
            f"PRIMARY KEY ({', '.join(keys)}) INCLUDE ({', '.join(included)})"
        )


def create_rollups(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE rating_hours (
            site TEXT NOT NULL, device_id TEXT NOT NULL, hour TEXT NOT NULL,
            scale INTEGER NOT NULL, score INTEGER NOT NULL, linked INTEGER NOT NULL,
            bucket TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (site, hour, device_id, scale, score, linked, bucket)
        ) WITHOUT ROWID;
        CREATE TABLE negative_tag_hours (
            site TEXT NOT NULL, device_id TEXT NOT NULL, hour TEXT NOT NULL,
            tag TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (site, hour, device_id, tag)
        ) WITHOUT ROWID;
        CREATE TABLE visit_hours (
            site TEXT NOT NULL, device_id TEXT NOT NULL, hour TEXT NOT NULL,
            visits INTEGER NOT NULL, checked_out INTEGER NOT NULL, waits INTEGER NOT NULL,
            PRIMARY KEY (site, hour, device_id)
        ) WITHOUT ROWID;
        """
    )
    triggers = {
        "ratings_rollup_insert": (
            "AFTER INSERT ON ratings WHEN NEW.misuse = 0",
            _rating_add("NEW"),
        ),
        "ratings_rollup_delete": (
            "AFTER DELETE ON ratings WHEN OLD.misuse = 0",
            _rating_remove("OLD"),
        ),
        "ratings_rollup_update_old": (
            "AFTER UPDATE ON ratings WHEN OLD.misuse = 0",
            _rating_remove("OLD"),
        ),
        "ratings_rollup_update_new": (
            "AFTER UPDATE ON ratings WHEN NEW.misuse = 0",
            _rating_add("NEW"),
        ),
        # Migration 2's form; migration 3 (version_visit_hours) replaces these four.
        **_visit_triggers(versioned=False),
    }
    for name, (when, body) in triggers.items():
        db.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")
    # Rows already stored (a data directory upgraded from schema 1) are counted once here.
    for statement in rating_backfill():
        db.execute(statement)
    db.execute(
        "INSERT INTO visit_hours SELECT coalesce(site, ''), device_id, "
        "substr(checked_in_at, 1, 13), COUNT(*), COUNT(checked_out_at), COUNT(wait_min) "
        "FROM visits "
        f"WHERE {VISIT_COUNTED.format(row='visits')} GROUP BY 1, 2, 3"
    )


# The visits that have each appointment-aware figure, with every column its reads need, so
# the figures read a covering index range as the waits do (see create_wait_indexes).
APPOINTMENT_INDEXES = {
    "idx_visits_appointments": ("(site, checked_in_at, arrival, adjusted_wait_min, device_id, "
                                "voided, cancel_reason)", "arrival IS NOT NULL"),
    "idx_visits_chair": ("(site, checked_in_at, chair_min, device_id, voided, cancel_reason)",
                         "chair_min IS NOT NULL"),
}


# Visits read and updated per step of the backfill: a bounded amount in memory whatever the
# store's size (a fetchall of 300k visits held them all at once).
BACKFILL_CHUNK = 5000


def add_appointment_columns(db: Database) -> None:
    """The appointment-aware figures' columns on ``visits`` (kept by the projection), filled in
    for the visits already stored, and their covering indexes."""
    from sync.central.projections import APPOINTMENT_COLUMNS, appointment_columns

    for column, kind in zip(APPOINTMENT_COLUMNS, ("REAL", "REAL", "TEXT"), strict=True):
        db.execute(f"ALTER TABLE visits ADD COLUMN {column} {kind}")
    # The rollup triggers would fire twice per filled-in visit (take it out of its hour, put it
    # back) for no change; they are dropped here, recreated below with the appointment counts,
    # and those counts rebuilt from the rows in one statement.
    for name in _visit_triggers(versioned=True, appointments=True):
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
    update = (f"UPDATE visits SET {', '.join(f'{c} = ?' for c in APPOINTMENT_COLUMNS)} "
              "WHERE id = ?")
    last = ""
    while True:
        # Keyset pages in id order: each step reads the next chunk off the primary key, so
        # rows being updated are never read again and memory stays at one chunk.
        rows = db.execute(
            "SELECT id, checked_in_at, called_at, checked_out_at, appointment_at, voided "
            "FROM visits WHERE id > ? AND voided = 0 AND checked_in_at IS NOT NULL "
            "AND (checked_out_at IS NOT NULL OR appointment_at IS NOT NULL) "
            "ORDER BY id LIMIT ?", [last, BACKFILL_CHUNK],
        ).fetchall()
        if not rows:
            break
        updates = []
        for visit_id, checked_in, called, checked_out, appointment, voided in rows:
            state = {"checked_in_at": checked_in, "called_at": called,
                     "checked_out_at": checked_out, "appointment_at": appointment,
                     "voided": voided}
            derived = appointment_columns(state)
            updates.append([*(derived[c] for c in APPOINTMENT_COLUMNS), visit_id])
        db.conn.executemany(update, updates)
        last = rows[-1][0]
    for name, (columns, where) in APPOINTMENT_INDEXES.items():
        db.execute(
            f"CREATE INDEX {name} ON visits {columns} "
            f"WHERE voided = 0 AND cancel_reason IS NULL AND {where}"
        )
    # The same counts per hour in the rollup, so Trends and Compare count a long range's
    # booked visits from ~24 rows a day instead of every visit (benchmark figure 6).
    counts = appointment_hour_counts("visits")
    for name in counts:
        db.execute(f"ALTER TABLE visit_hours ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0")
    for name, (when, body) in _visit_triggers(versioned=True, appointments=True).items():
        db.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")
    db.execute(visit_backfill())


def visit_backfill() -> str:
    """The statement that counts the visits stored into ``visit_hours`` with the appointment
    counts (migration ``_appointment_figures``, over the counts migration 2 made); into an
    empty ``visit_hours`` it makes every hour's row, as a bulk load with the triggers off
    needs (benchmark 13)."""
    counts = appointment_hour_counts("visits")
    return (
        f"INSERT INTO visit_hours (site, device_id, hour, visits, checked_out, waits, "
        f"{', '.join(counts)}) SELECT coalesce(site, ''), device_id, "
        f"substr(checked_in_at, 1, 13), COUNT(*), COUNT(checked_out_at), COUNT(wait_min), "
        f"{', '.join(f'SUM({sql})' for sql in counts.values())} FROM visits "
        f"WHERE {VISIT_COUNTED.format(row='visits')} GROUP BY 1, 2, 3 "
        # changes + 1: what the triggers would have bumped, so a cache of the hour's values
        # (hour_runs) reads it again.
        "ON CONFLICT DO UPDATE SET changes = changes + 1, "
        + ", ".join(f"{name} = excluded.{name}" for name in counts)
    )


# Per site and hour, every desk added up (migration ``_site_rollups``): a page over a whole
# site (Trends) reads one row per hour instead of one per desk, face, linked and wait bucket.
# On the 10-million-event store 90 days of 20 sites are 116,761 ``rating_hours`` rows and
# 51,721 ``visit_hours`` rows, about 15,000 and 14,000 here; the two reads were most of Trends
# over 90 days (README, figure 16). Kept by their own triggers beside the per-desk ones. Both
# have ``changes``, bumped by every trigger that touches a row (rows are never deleted), so
# a range's (COUNT(*), SUM(changes)) moves with any change in it (``dashboard.local_sums``).
RATING_FACES = tuple((scale, score) for scale in (5, 4) for score in range(scale, 0, -1))
SITE_ROLLUP_KEYS = {"site_rating_hours": ("site", "hour"), "site_visit_hours": ("site", "hour")}


def face_column(scale: int, score: int) -> str:
    """``site_rating_hours``' column counting one face."""
    return f"face_{scale}_{score}"


def _site_rating_counts(row: str) -> dict[str, str]:
    """The counts one rating row adds to its site's hour: itself, linked or not, its face (a
    scale outside ``RATING_FACES`` counts in ``n`` only; the readers then read ``rating_hours``)."""
    return {
        "n": "1",
        "linked": as_count(f"{row}.visit_id IS NOT NULL"),
        **{face_column(scale, score): as_count(f"{row}.scale = {scale} AND {row}.score = {score}")
           for scale, score in RATING_FACES},
    }


def _site_rating_add(row: str) -> str:
    counts = _site_rating_counts(row)
    return (
        f"INSERT INTO site_rating_hours (site, hour, {', '.join(counts)}) "
        f"VALUES ({row}.site, substr({row}.occurred_at, 1, 13), {', '.join(counts.values())}) "
        "ON CONFLICT DO UPDATE SET "
        + ", ".join(f"{name} = {name} + excluded.{name}" for name in counts)
        + ", changes = changes + 1;"
    )


def _site_rating_remove(row: str) -> str:
    return (
        "UPDATE site_rating_hours SET "
        + ", ".join(f"{name} = {name} - {sql}" for name, sql in _site_rating_counts(row).items())
        + f", changes = changes + 1 WHERE site = {row}.site "
        f"AND hour = substr({row}.occurred_at, 1, 13);"
    )


def _site_rating_update() -> str:
    """An update that leaves a counted rating in its site's hour: the counts' differences,
    in one statement (a rating paired with its visit later, or given the visit's wait)."""
    old, new = _site_rating_counts("OLD"), _site_rating_counts("NEW")
    return (
        "UPDATE site_rating_hours SET "
        + ", ".join(f"{name} = {name} + {new[name]} - {old[name]}" for name in new)
        + ", changes = changes + 1 WHERE site = NEW.site "
        "AND hour = substr(NEW.occurred_at, 1, 13);"
    )


SAME_SITE_RATING_HOUR = (
    "OLD.misuse = 0 AND NEW.misuse = 0 AND OLD.site = NEW.site "
    "AND substr(OLD.occurred_at, 1, 13) = substr(NEW.occurred_at, 1, 13)"
)


def _same_visit_hour(per_desk: bool) -> str:
    """An update that leaves a counted visit counted in the same row of the rollup."""
    desk = " AND OLD.device_id = NEW.device_id" if per_desk else ""
    return (f"{VISIT_COUNTED.format(row='OLD')} AND {VISIT_COUNTED.format(row='NEW')} "
            "AND coalesce(OLD.site, '') = coalesce(NEW.site, '') "
            f"AND substr(OLD.checked_in_at, 1, 13) = substr(NEW.checked_in_at, 1, 13){desk}")


def _visit_update(per_desk: bool) -> str:
    """An update that leaves a counted visit in its row of the rollup (called, checked out,
    its appointment figures derived): the differences in one statement, where taking it out
    and putting it back took two; most of ingest's visit updates are these."""
    def counts(row: str) -> dict[str, str]:
        return {"checked_out": as_count(f"{row}.checked_out_at IS NOT NULL"),
                "waits": as_count(f"{row}.wait_min IS NOT NULL"),
                **appointment_hour_counts(row)}

    old, new = counts("OLD"), counts("NEW")
    table, desk = (("visit_hours", "AND device_id = NEW.device_id ") if per_desk
                   else ("site_visit_hours", ""))
    return (
        f"UPDATE {table} SET "
        + ", ".join(f"{name} = {name} + {new[name]} - {old[name]}" for name in new)
        + f", changes = changes + 1 WHERE site = coalesce(NEW.site, '') {desk}"
        "AND hour = substr(NEW.checked_in_at, 1, 13);"
    )


def in_place_visit_triggers(per_desk: bool) -> dict[str, tuple[str, str]]:
    """``_visit_triggers`` (versioned, with the appointment counts) where an update that keeps
    a counted visit in its row moves the counts in place (``..._update_same``) and only any
    other update takes the old row out and puts the new one in."""
    same = _same_visit_hour(per_desk)
    triggers = _visit_triggers(versioned=True, appointments=True, per_desk=per_desk)
    prefix = "" if per_desk else "site_"
    for name in (f"{prefix}visits_rollup_update_old", f"{prefix}visits_rollup_update_new"):
        when, body = triggers[name]
        triggers[name] = (f"{when} AND ({same}) IS NOT TRUE", body)
    triggers[f"{prefix}visits_rollup_update_same"] = (f"AFTER UPDATE ON visits WHEN {same}",
                                                      _visit_update(per_desk))
    return triggers


def site_rollup_triggers() -> dict[str, tuple[str, str]]:
    """The triggers that keep ``site_rating_hours`` and ``site_visit_hours``: the same rows
    counted, by the same rules, as the per-desk rollups' triggers. An update that keeps a
    counted row in the same site and hour moves its counts in place (``..._update_same``);
    any other takes the old row out and puts the new one in, as the per-desk ones do."""
    same_rating = SAME_SITE_RATING_HOUR
    return {
        "site_ratings_rollup_insert": ("AFTER INSERT ON ratings WHEN NEW.misuse = 0",
                                       _site_rating_add("NEW")),
        "site_ratings_rollup_delete": ("AFTER DELETE ON ratings WHEN OLD.misuse = 0",
                                       _site_rating_remove("OLD")),
        "site_ratings_rollup_update_old": (
            f"AFTER UPDATE ON ratings WHEN OLD.misuse = 0 AND ({same_rating}) IS NOT TRUE",
            _site_rating_remove("OLD")),
        "site_ratings_rollup_update_new": (
            f"AFTER UPDATE ON ratings WHEN NEW.misuse = 0 AND ({same_rating}) IS NOT TRUE",
            _site_rating_add("NEW")),
        "site_ratings_rollup_update_same": (f"AFTER UPDATE ON ratings WHEN {same_rating}",
                                            _site_rating_update()),
        **in_place_visit_triggers(per_desk=False),
    }


# The per-site tables' sums of a visit hour, in the order ``visit_hours`` has them.
SITE_VISIT_SUMS = ("visits", "checked_out", "waits", "changes",
                   *appointment_hour_counts("visits"))


def site_backfill() -> tuple[str, str]:
    """The statements that add the per-desk rollups up into empty per-site ones: migration
    ``_site_rollups`` runs them, and so does a bulk load after ``rating_backfill`` and
    ``visit_backfill`` (figure 16's fill)."""
    counts = _site_rating_counts("r")
    rating_sums = ["SUM(n)", "SUM(CASE WHEN linked = 1 THEN n ELSE 0 END)",
                   *(f"SUM(CASE WHEN scale = {scale} AND score = {score} THEN n ELSE 0 END)"
                     for scale, score in RATING_FACES)]
    return (
        f"INSERT INTO site_rating_hours (site, hour, {', '.join(counts)}) "
        f"SELECT site, hour, {', '.join(rating_sums)} FROM rating_hours GROUP BY site, hour",
        f"INSERT INTO site_visit_hours (site, hour, {', '.join(SITE_VISIT_SUMS)}) "
        f"SELECT site, hour, {', '.join(f'SUM({name})' for name in SITE_VISIT_SUMS)} "
        "FROM visit_hours GROUP BY site, hour",
    )


def create_site_rollups(db: Database) -> None:
    """Migration ``_site_rollups``: the per-site hourly rollups, their triggers, and the hours
    already counted per desk added up into them (one grouped read of each rollup, not of the
    rows: seconds on the 10-million-event store)."""
    faces = "".join(f"{face_column(scale, score)} INTEGER NOT NULL DEFAULT 0, "
                    for scale, score in RATING_FACES)
    appointments = "".join(f"{name} INTEGER NOT NULL DEFAULT 0, "
                           for name in appointment_hour_counts("visits"))
    db.execute(
        "CREATE TABLE site_rating_hours (site TEXT NOT NULL, hour TEXT NOT NULL, "
        f"n INTEGER NOT NULL, linked INTEGER NOT NULL, {faces}"
        "changes INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (site, hour)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE site_visit_hours (site TEXT NOT NULL, hour TEXT NOT NULL, "
        "visits INTEGER NOT NULL, checked_out INTEGER NOT NULL, waits INTEGER NOT NULL, "
        f"changes INTEGER NOT NULL DEFAULT 0, {appointments}"
        "PRIMARY KEY (site, hour)) WITHOUT ROWID"
    )
    cover_rollup_keys(db, SITE_ROLLUP_KEYS)
    # Filled before any trigger changes: the migration holds the store's write lock, so no
    # row arrives meanwhile, and on PostgreSQL changing a trigger locks ``visits`` against
    # reads too (on a replica as well, while it replays), now only until the commit.
    for statement in site_backfill():
        db.execute(statement)
    # The per-desk visit triggers move a visit's counts in place too: with the per-site ones
    # added, ingest's visit updates would otherwise cost four statements instead of two.
    for name, (when, body) in in_place_visit_triggers(per_desk=True).items():
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
        db.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")
    for name, (when, body) in site_rollup_triggers().items():
        db.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")
    if on_postgres(db):
        for table in SITE_ROLLUP_KEYS:
            db.execute(f"ANALYZE {table}")
