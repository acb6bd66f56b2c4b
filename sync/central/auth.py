"""Device tokens (write events, read the site config) and reporting tokens (read metrics).

A token is random (``secrets.token_urlsafe``), carries a prefix saying what it is for (``dev_``
or ``rep_``, so a person pasting one in the wrong place gets a helpful answer), is shown once
and stored only as its SHA-256. A SHA-256 without salt is enough here: the tokens are 256 random
bits, not passwords, so there is nothing to brute-force from the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central.permissions import EVERY_SITE, Principal, Scope
from sync.central.sites import ensure_site

DEVICE_PREFIX = "dev_"
REPORTING_PREFIX = "rep_"
TOKEN_BYTES = 32
MAX_NAME_LENGTH = 64


class TokenRefused(Exception):
    """A request's token cannot be used for what it asks; ``status`` is 401 or 403."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class UnknownDevice(LookupError):
    """No device with that id is enrolled in this data directory."""


class UnknownReportingToken(LookupError):
    """No reporting token with that id exists in this data directory."""


@dataclass(frozen=True)
class Device:
    id: str
    site: str
    name: str


@dataclass(frozen=True)
class Reporter:
    id: str
    name: str
    role: str = "viewer"  # "admin" (also reads the audit trail) or "viewer"
    scope: Scope = EVERY_SITE

    @property
    def principal(self) -> Principal:
        return Principal("token", self.id, self.name, self.role, self.scope)


TOKEN_ROLES = ("viewer", "admin")


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


NAME_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _check_name(name: str, what: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} name must be 1-{MAX_NAME_LENGTH} characters")
    if NAME_CONTROL_CHARACTERS.search(name):
        # A line break or a terminal escape has no place in a name shown on pages and in
        # the CLI's JSON, and PostgreSQL cannot store a NUL at all.
        raise ValueError(f"{what} name must not contain control characters (line breaks, "
                         "tabs, escapes)")
    return name


def add_device(db: Database, site: str, name: str) -> tuple[Device, str]:
    """Enrol a device at a site (created with defaults if new); returns it and its only token."""
    name = _check_name(name, "device")
    site_name = ensure_site(db, site).name
    token = new_token(DEVICE_PREFIX)
    device = Device(id=str(uuid.uuid4()), site=site_name, name=name)
    db["devices"].insert(
        {
            "id": device.id,
            "site": device.site,
            "name": device.name,
            "token_sha256": token_digest(token),
            "revoked": 0,
            "created_at": to_rfc3339(utc_now()),
        }
    )
    return device, token


def revoke_device(db: Database, device_id: str) -> None:
    if db.execute("UPDATE devices SET revoked = 1 WHERE id = ?", [device_id]).rowcount == 0:
        raise UnknownDevice(f"there is no device with id {device_id!r}; see `device list`")


def list_devices(db: Database) -> list[dict]:
    """Every device with its health (never its token hash).

    ``seq_missing``: sequence numbers below the highest stored that were never stored (events
    the store rejected keep their number, or events not sent yet); ``seq_late``: events that
    arrived after one with a higher number had (a resend, or a kiosk's outbox rebuilt);
    ``seq_reused``: events stored under a number the device had already used (a kiosk that
    started a new database while keeping its token).
    """
    return list(
        db.query(
            "SELECT id, site, name, revoked, created_at, last_seen_at, last_heartbeat_at, "
            "backlog, rejected, version, clock_skew_s, seq_max, "
            # CASE, not SQLite's two-argument max(): PostgreSQL's max() takes one.
            "CASE WHEN seq_max - seq_stored + coalesce(seq_reused, 0) < 0 THEN 0 "
            "ELSE seq_max - seq_stored + coalesce(seq_reused, 0) END AS seq_missing, "
            "seq_reversals AS seq_late, seq_reused "
            "FROM devices ORDER BY site, name"
        )
    )


def add_reporting_token(
    db: Database, name: str, scope: Scope = EVERY_SITE, admin: bool = False
) -> tuple[str, str]:
    """A read-only token for BI tools and scripts; returns its id and the token (shown once).

    ``scope``: the sites it reads (every site by default). ``admin``: it also reads the audit
    trail; an admin token reads every site, so it cannot be given a narrower scope."""
    name = _check_name(name, "token")
    if admin and not scope.everything:
        raise ValueError(
            "an admin token reads every site (and the audit trail); leave out --sites, or "
            "leave out --admin for a token of those sites"
        )
    token = new_token(REPORTING_PREFIX)
    token_id = str(uuid.uuid4())
    db["reporting_tokens"].insert(
        {
            "id": token_id,
            "name": name,
            "token_sha256": token_digest(token),
            "revoked": 0,
            "created_at": to_rfc3339(utc_now()),
            "role": "admin" if admin else "viewer",
            "sites": scope.to_column(),
        }
    )
    return token_id, token


def revoke_reporting_token(db: Database, token_id: str) -> None:
    sql = "UPDATE reporting_tokens SET revoked = 1 WHERE id = ?"
    if db.execute(sql, [token_id]).rowcount == 0:
        raise UnknownReportingToken(f"there is no reporting token with id {token_id!r}")


def _find(db: Database, table: str, token: str) -> dict | None:
    digest = token_digest(token)
    rows = list(db.query(f"SELECT * FROM {table} WHERE token_sha256 = ?", [digest]))
    # The index lookup finds the row; the constant-time compare is what decides.
    if rows and hmac.compare_digest(rows[0]["token_sha256"], digest):
        return rows[0]
    return None


def _missing(token: str | None, kind: str) -> None:
    if not token:
        raise TokenRefused(
            401, f"This needs a {kind} token: send the header 'Authorization: Bearer <token>'."
        )


def authenticate_device(db: Database, token: str | None) -> Device:
    """The device a token belongs to; TokenRefused (401/403) with a sentence otherwise."""
    _missing(token, "device")
    row = _find(db, "devices", token)
    if row is None:
        if token.startswith(REPORTING_PREFIX) and _find(db, "reporting_tokens", token):
            raise TokenRefused(
                403,
                "This route is for kiosks and needs a device token; a reporting token only "
                "reads metrics and exports.",
            )
        raise TokenRefused(
            401, "This device token is not known here; enrol the device with `device add`."
        )
    if row["revoked"]:
        raise TokenRefused(
            401, "This device token has been revoked; enrol the device again with `device add`."
        )
    return Device(id=row["id"], site=row["site"], name=row["name"])


def authenticate_reporter(db: Database, token: str | None) -> Reporter:
    """The reporting token's owner; TokenRefused (401/403) with a sentence otherwise."""
    _missing(token, "reporting")
    row = _find(db, "reporting_tokens", token)
    if row is None:
        if token.startswith(DEVICE_PREFIX) and _find(db, "devices", token):
            raise TokenRefused(
                403,
                "A device token cannot read metrics or exports; create a reporting token with "
                "`token add`.",
            )
        raise TokenRefused(
            401, "This reporting token is not known here; create one with `token add`."
        )
    if row["revoked"]:
        raise TokenRefused(
            401, "This reporting token has been revoked; create a new one with `token add`."
        )
    return Reporter(
        id=row["id"], name=row["name"], role=row["role"], scope=Scope.from_column(row["sites"])
    )
