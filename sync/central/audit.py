"""The audit trail: who changed what, when, from where, and what it was before and after.

Every change is recorded by :func:`record` on the connection of the change's own transaction,
so the record and the change are committed, or rolled back, together. The table is
append-only: triggers refuse every UPDATE and DELETE, so not even ``purge`` can rewrite the
past. Secrets never enter it: values under a key that names one (password, secret, token,
hash, recovery codes) are replaced by ``"(set)"`` before anything is written.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339, utc_now

# Key fragments whose values are never written (compared in lower case).
SECRET_KEYS = ("password", "secret", "token", "hash", "recovery", "smtp_password", "code")
APPEND_ONLY = "the audit trail is append-only"
CSV_COLUMNS = ("id", "at", "actor", "actor_kind", "origin", "action", "target", "site",
               "before", "after")
MAX_ROWS = 5000


@dataclass(frozen=True)
class Actor:
    """Who acts: a dashboard login, a reporting token, a command at the server, or the store
    itself; ``origin`` is the client's address, or ``local`` for a command."""

    kind: str  # "user", "token", "command", "anonymous"
    name: str
    origin: str


def command_actor() -> Actor:
    """An admin command run at the server: the operating-system account that ran it."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor("command", f"command:{who}", "local")


def create_audit_table(db: Database) -> None:
    db.execute(
        "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, "
        "actor TEXT NOT NULL, actor_kind TEXT NOT NULL, origin TEXT, action TEXT NOT NULL, "
        "target TEXT, site TEXT, before_json TEXT, after_json TEXT)"
    )
    db.execute("CREATE INDEX audit_at ON audit (at)")
    db.execute("CREATE INDEX audit_action_at ON audit (action, at)")
    db.execute("CREATE INDEX audit_actor_at ON audit (actor, at)")
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
        )


def scrub(value):
    """``value`` with every secret replaced by "(set)" (or left None when there was none)."""
    if isinstance(value, dict):
        return {
            key: ("(set)" if item not in (None, "") else None)
            if any(part in str(key).lower() for part in SECRET_KEYS)
            else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


def _as_json(value) -> str | None:
    return None if value is None else json.dumps(scrub(value), sort_keys=True, default=str)


def record(
    db: Database,
    actor: Actor,
    action: str,
    target: str | None = None,
    site: str | None = None,
    before=None,
    after=None,
    now: datetime | None = None,
) -> None:
    """Append one entry, on the caller's connection (inside the change's transaction)."""
    db.execute(
        "INSERT INTO audit (at, actor, actor_kind, origin, action, target, site, before_json, "
        "after_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [to_rfc3339(now or utc_now()), actor.name, actor.kind, actor.origin, action, target,
         site, _as_json(before), _as_json(after)],
    )


@dataclass(frozen=True)
class AuditFilter:
    start: str | None = None  # RFC 3339, inclusive
    end: str | None = None  # RFC 3339, exclusive
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." ("user." = every user change)
    site: str | None = None


def _where(flt: AuditFilter) -> tuple[str, list]:
    clauses, params = [], []
    if flt.start:
        clauses.append("at >= ?")
        params.append(flt.start)
    if flt.end:
        clauses.append("at < ?")
        params.append(flt.end)
    if flt.actor:
        clauses.append("actor = ?")
        params.append(flt.actor)
    if flt.action:
        if flt.action.endswith("."):
            clauses.append("substr(action, 1, ?) = ?")
            params += [len(flt.action), flt.action]
        else:
            clauses.append("action = ?")
            params.append(flt.action)
    if flt.site:
        clauses.append("site = ?")
        params.append(flt.site)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _shaped(row: dict) -> dict:
    row = dict(row)
    row["before"] = json.loads(row.pop("before_json")) if row["before_json"] else None
    row["after"] = json.loads(row.pop("after_json")) if row["after_json"] else None
    return row


def entries(db: Database, flt: AuditFilter, limit: int = MAX_ROWS) -> list[dict]:
    """Newest first, at most ``limit``."""
    where, params = _where(flt)
    rows = db.query(f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?", [*params, limit])
    return [_shaped(row) for row in rows]


def actions(db: Database) -> list[str]:
    return [row[0] for row in db.execute("SELECT DISTINCT action FROM audit ORDER BY 1")]


def csv_chunks(db: Database, flt: AuditFilter) -> Iterator[str]:
    """The filtered trail as CSV, oldest first, streamed (spreadsheet formulas neutralised,
    as in the data exports)."""
    from sync.central.dashboard.export import csv_chunks as formula_safe_csv

    where, params = _where(flt)

    def rows():
        for row in db.query(f"SELECT * FROM audit{where} ORDER BY id", params):
            shaped = _shaped(row)
            yield tuple(
                json.dumps(shaped[c], sort_keys=True) if c in ("before", "after")
                and shaped[c] is not None else shaped[c]
                for c in CSV_COLUMNS
            )

    return formula_safe_csv(CSV_COLUMNS, rows())
