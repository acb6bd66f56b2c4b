"""The central schema, versioned: ``PRAGMA user_version`` is the number of migrations applied.

Add a migration by appending a function to ``MIGRATIONS``; never edit one that has shipped,
because data directories out there have already run it.

Timestamps are stored as RFC 3339 UTC strings of one fixed shape ('2026-11-23T09:15:02.000Z'),
so comparing strings compares instants and a time range is an index range scan.
"""

from __future__ import annotations

import json

from sqlite_utils import Database

from kiosk.shared.wire import DEFAULT_TAGS


def _v1_initial(db: Database) -> None:
    db["sites"].create(
        {
            "name": str,
            "timezone": str,
            "target_wait_min": float,
            "rating_scale": int,
            "followup_tags": str,  # JSON list
            "idle_timeout_s": int,
        },
        pk="name",
        defaults={
            "timezone": "UTC",
            "target_wait_min": 15.0,
            "rating_scale": 5,
            "followup_tags": json.dumps(list(DEFAULT_TAGS)),
            "idle_timeout_s": 20,
        },
        not_null={"timezone", "target_wait_min", "rating_scale", "followup_tags"},
    )
    db["devices"].create(
        {
            "id": str,
            "site": str,
            "name": str,
            "token_sha256": str,
            "revoked": int,
            "created_at": str,
            "last_seen_at": str,
            "last_heartbeat_at": str,
            "backlog": int,
            "rejected": int,
            "version": str,
            "clock_skew_s": float,
        },
        pk="id",
        defaults={"revoked": 0},
        not_null={"site", "name", "token_sha256", "revoked", "created_at"},
    )
    db["devices"].create_index(["token_sha256"], unique=True)
    db["devices"].create_index(["site"])
    db["reporting_tokens"].create(
        {
            "id": str,
            "name": str,
            "token_sha256": str,
            "revoked": int,
            "created_at": str,
            "last_used_at": str,
        },
        pk="id",
        defaults={"revoked": 0},
        not_null={"name", "token_sha256", "revoked", "created_at"},
    )
    db["reporting_tokens"].create_index(["token_sha256"], unique=True)
    db["events"].create(
        {
            "device_id": str,
            "id": str,
            "device_seq": int,
            "type": str,
            "occurred_at": str,
            "received_at": str,
            "visit_id": str,
            "data": str,  # JSON object
            "clock_suspect": int,
        },
        pk=("device_id", "id"),
        defaults={"clock_suspect": 0},
        not_null={"device_seq", "type", "occurred_at", "received_at", "data"},
    )
    db["events"].create_index(["visit_id"])
    db["events"].create_index(["device_id", "device_seq"])
    db["visits"].create(
        {
            "id": str,
            "device_id": str,
            "site": str,
            "ticket": str,
            "appointment_at": str,
            "checked_in_at": str,
            "called_at": str,
            "checked_out_at": str,
            "cancelled_at": str,
            "cancel_reason": str,
            "status": str,
            "voided": int,
            "wait_min": float,
            "updated_at": str,
        },
        pk="id",
        defaults={"voided": 0},
        not_null={"voided"},
    )
    db["visits"].create_index(["site", "checked_in_at"])
    db["visits"].create_index(["device_id", "checked_in_at"])
    db["visits"].create_index(["site", "checked_out_at"])
    db["visits"].create_index(["checked_in_at"])
    db["ratings"].create(
        {
            "id": str,
            "device_id": str,
            "site": str,
            "visit_id": str,
            "link": str,  # 'direct' (the kiosk named the visit), 'paired' (see projections)
            "score": int,
            "scale": int,
            "tags": str,  # JSON list
            "misuse": int,
            "occurred_at": str,
            "wait_min": float,
        },
        pk="id",
        defaults={"misuse": 0},
        not_null={"device_id", "site", "score", "scale", "tags", "misuse", "occurred_at"},
    )
    db["ratings"].create_index(["site", "occurred_at"])
    db["ratings"].create_index(["device_id", "occurred_at"])
    db["ratings"].create_index(["occurred_at"])
    db["ratings"].create_index(["visit_id"])


def _v2_dashboard(db: Database) -> None:
    # The dashboard's logins and sessions, then the store's covering indexes and hourly
    # rollups that every reader of the figures uses (the same schema, in the same order, as
    # this migration has always made); imported here to keep the CLI's imports light.
    from sync.central.dashboard.schema import create_dashboard_tables
    from sync.central.rollups import create_rollups, create_wait_indexes

    create_dashboard_tables(db)
    create_wait_indexes(db)
    create_rollups(db)


def _v3_visit_hour_versions(db: Database) -> None:
    # A change counter per hour of visits, so the dashboard can cache each hour's waits.
    from sync.central.rollups import version_visit_hours

    version_visit_hours(db)


def _v4_plausible_time(db: Database) -> None:
    # The sequence's health per device (numbers missing, numbers arriving late); then the
    # store is repaired of what the plausible-time and visit rules now refuse (see
    # sync.central.repair).
    from kiosk.shared.timeutil import utc_now
    from sync.central.repair import repair_store

    for column in ("seq_max", "seq_stored", "seq_reversals", "seq_reused"):
        db.execute(f"ALTER TABLE devices ADD COLUMN {column} INTEGER")
    repair_store(db, utc_now())


def _v5_alerts(db: Database) -> None:
    # Alerts, their history, rules per site, channels and their outbox; opening hours.
    from sync.central.alerts.schema import create_alert_tables

    create_alert_tables(db)


def _fft_and_comments(db: Database) -> None:
    # Issue 17: the survey a site asks (faces or the NHS FFT) and its comment box switch; the
    # FFT's "Don't know" answers, kept apart from ``ratings`` because they have no score and
    # count in no figure but the FFT's; patients' comments (redacted), apart so they have
    # their own retention and are read only with the comments permission; that permission.
    db.execute("ALTER TABLE sites ADD COLUMN survey TEXT NOT NULL DEFAULT 'faces'")
    db.execute("ALTER TABLE sites ADD COLUMN comments INTEGER NOT NULL DEFAULT 0")
    db["dont_know_answers"].create(
        {"id": str, "device_id": str, "site": str, "visit_id": str, "misuse": int,
         "occurred_at": str},
        pk="id",
        defaults={"misuse": 0},
        not_null={"device_id", "site", "misuse", "occurred_at"},
    )
    db["dont_know_answers"].create_index(["site", "occurred_at"])
    db["rating_comments"].create(
        {"rating_id": str, "device_id": str, "site": str, "occurred_at": str, "comment": str},
        pk="rating_id",
        not_null={"device_id", "site", "occurred_at", "comment"},
    )
    db["rating_comments"].create_index(["site", "occurred_at"])
    db.execute("ALTER TABLE users ADD COLUMN can_read_comments INTEGER NOT NULL DEFAULT 0")


def _roles_scopes_and_audit(db: Database) -> None:
    # Roles and site scopes for logins and reporting tokens (existing ones: admin, every
    # site), TOTP, set-password links, a site's admin-TOTP setting and the audit trail.
    from sync.central.people.schema import create_access_tables

    create_access_tables(db)


def _enrolment_codes(db: Database) -> None:
    # Short codes for enrolling a kiosk (RFC 8628's device flow), and each device's role.
    from sync.central.enrolment import create_enrolment_tables

    create_enrolment_tables(db)


def _rating_survey(db: Database) -> None:
    # Issue 17: the survey a rating was asked as ('fft' when the kiosk's FFT screen asked it,
    # sent as "survey": "fft"; NULL for faces), so the FFT return counts only answers to the
    # FFT question and not a faces site's 5-point faces. Ratings stored before this carry no
    # marker; those of a site asking the FFT now are taken as asked as the FFT, the best the
    # store can tell (a site that switched survey earlier may need its past months read
    # with that in mind).
    db.execute("ALTER TABLE ratings ADD COLUMN survey TEXT")
    db.execute(
        "UPDATE ratings SET survey = 'fft' WHERE scale = 5 "
        "AND site IN (SELECT name FROM sites WHERE survey = 'fft')"
    )


def _appointment_figures(db: Database) -> None:
    # Chair time, the lateness-adjusted wait and the arrival class per visit, derived when the
    # visit is projected, for the appointment-aware figures (README, "Metrics").
    from sync.central.rollups import add_appointment_columns

    add_appointment_columns(db)


def _site_languages(db: Database) -> None:
    # The languages a site's kiosks offer patients, its default first (``site set
    # --languages``); every existing site keeps English only, as its kiosks showed until now.
    db.execute("""ALTER TABLE sites ADD COLUMN languages TEXT NOT NULL DEFAULT '["en"]'""")


def _rating_languages(db: Database) -> None:
    # The language each rating was given in (``lang`` in rating.submitted, BCP 47); NULL for
    # ratings from kiosks that send none. Read per language by ``figures.ratings_by_language``.
    db.execute("ALTER TABLE ratings ADD COLUMN lang TEXT")


def _dashboard_language(db: Database) -> None:
    # The language each login reads the dashboard in (Account page: English / Español);
    # every existing login keeps English, as the dashboard showed until now.
    db.execute("ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT 'en'")


def _covered_rollup_keys(db: Database) -> None:
    # On PostgreSQL the rollups' keys carry their counts, so a range of hours is read from the
    # index alone (``rollups.cover_rollup_keys``); nothing changes on SQLite.
    from sync.central.rollups import cover_rollup_keys

    cover_rollup_keys(db)


RATING_RANGE_COLUMNS = "(site, occurred_at, misuse, scale, score, visit_id, lang)"


def _covered_rating_ranges(db: Database) -> None:
    # A site's ratings over a range, with what the per-language and per-face counts read, from
    # the (site, occurred_at) index alone: Compare's ratings by language read every rating of
    # 28 days of 20 sites from the table, 0.5 s on PostgreSQL at 10 million events (README,
    # figure 16). The same name and leading columns, so every read that used it still does.
    db.execute("DROP INDEX IF EXISTS idx_ratings_site_occurred_at")
    db.execute(f"CREATE INDEX idx_ratings_site_occurred_at ON ratings {RATING_RANGE_COLUMNS}")
    from sync.central.bulk_writes import on_postgres

    if not on_postgres(db) and db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        # A store that was ANALYZEd lost the index's statistics with it: without them SQLite
        # would weigh this index against the others' measured ones by guesswork.
        db.execute("ANALYZE ratings")


def _site_rollups(db: Database) -> None:
    # Every desk of a site added up per hour, so Trends over 90 days reads one row per site
    # and hour (``rollups.create_site_rollups``; README, figure 16).
    from sync.central.rollups import create_site_rollups

    create_site_rollups(db)


MIGRATIONS = (_v1_initial, _v2_dashboard, _v3_visit_hour_versions, _v4_plausible_time,
              _v5_alerts, _fft_and_comments, _roles_scopes_and_audit, _enrolment_codes,
              _rating_survey, _appointment_figures, _site_languages, _rating_languages,
              _dashboard_language, _covered_rollup_keys, _covered_rating_ranges,
              _site_rollups)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of this program."""


def schema_version(db: Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: Database, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations this database has not had yet, each in its own transaction, up to
    ``target`` (the latest unless a test builds a store as an older version left it)."""
    while True:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            # Read inside the write lock: another process may have migrated meanwhile.
            current = schema_version(db)
            if current > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"the database has schema version {current} but this program knows only "
                    f"up to {SCHEMA_VERSION}; upgrade the program"
                )
            if current >= target:
                db.conn.execute("COMMIT")
                return current
            MIGRATIONS[current](db)
            db.conn.execute(f"PRAGMA user_version = {current + 1}")
            db.conn.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
