"""Enrolment of a kiosk by a short code: the device flow of RFC 8628, adapted.

A kiosk with no token asks for a code (``issue``); it shows the short ``user_code`` and polls
with the long ``device_code`` (``poll``). A manager approves (or denies) the short code on the
dashboard or with ``device approve``; the kiosk's next poll then receives its device token.

Both codes are secrets and are stored only as their SHA-256 (the short one is looked up by its
digest, so a copy of the database cannot be used to approve or to collect a token). The token
itself is made when the kiosk collects it, never stored in clear: approving creates the device
with the digest of a throwaway token, and the collecting poll replaces it by the real one's.

Everything takes ``now`` so the tests pin time; every refusal is a named exception whose
message is a sentence for the person at the kiosk or at the dashboard.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.shared.enrolment_codes import CODE_ALPHABET, CODE_LENGTH, format_code, normalise_code
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from sync.central.auth import DEVICE_PREFIX, Device, add_device, new_token, token_digest

CODE_LIFETIME = timedelta(minutes=15)
# An approved code is collected by the kiosk's next poll, seconds later. One approved just
# before the code's 15 minutes end is still handed out this long after them (the kiosk makes
# one last poll when its own count reaches 0, on a clock that may be a little behind); after
# that the approval lapses: the poll answers expired_token and the device made at approval,
# whose token nobody ever held, is revoked.
APPROVAL_GRACE = timedelta(minutes=2)
POLL_INTERVAL_S = 5
SLOW_DOWN_STEP_S = 5  # RFC 8628 3.5: each slow_down adds 5 s to the interval, for good
MAX_INTERVAL_S = 60
# Pending codes at once, over all clients: a flood from many addresses fills no disk.
MAX_PENDING_CODES = 1000
# Rows of used, denied or expired codes are kept this long (the dashboard can say "already
# used" or "expired"), then deleted when a new code is issued.
KEEP_FINISHED = timedelta(days=1)
ROLES = ("desk", "ratings", "staff")  # kiosk/config.py's roles, which a kiosk accepts


class EnrolmentError(ValueError):
    """A code that cannot be used for what was asked; the message says why and what to do."""


class UnknownCode(EnrolmentError):
    """No kiosk is showing that short code (a typo, or a code from another store)."""


class CodeExpired(EnrolmentError):
    """The code's 15 minutes are over."""


class CodeAlreadyUsed(EnrolmentError):
    """The code was approved, denied or collected already: each code works once."""


class TooManyPendingCodes(EnrolmentError):
    """More codes wait for approval than the store keeps at once."""


@dataclass(frozen=True)
class IssuedCode:
    device_code: str = field(repr=False)  # secrets: never in a log line or a traceback
    user_code: str  # as shown: "BCDF-GHJK"
    expires_in: int
    interval: int


@dataclass(frozen=True)
class PollAnswer:
    """``error`` is RFC 8628's name (authorization_pending, slow_down, access_denied,
    expired_token) or invalid_grant; None with ``token`` set when the kiosk is enrolled."""

    error: str | None
    description: str
    interval: int = POLL_INTERVAL_S
    token: str | None = field(default=None, repr=False)
    device: Device | None = None
    role: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_user_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _expired(row: dict, now: datetime) -> bool:
    return now >= parse_rfc3339(row["expires_at"])


def _lapsed(row: dict, now: datetime) -> bool:
    """An approval the kiosk never collected within the code's life and the grace."""
    return row["state"] == "approved" and now >= parse_rfc3339(row["expires_at"]) + \
        APPROVAL_GRACE


def _lapse(db: Database, row: dict, now: datetime) -> None:
    """The approval ends: its device (never given a token) is revoked, the code is spent."""
    if row["device_id"]:
        db.execute("UPDATE devices SET revoked = 1 WHERE id = ?", [row["device_id"]])
    db.execute("UPDATE enrolment_codes SET state = 'lapsed', decided_at = ? WHERE id = ?",
               [to_rfc3339(now), row["id"]])


def _lapse_uncollected(db: Database, now: datetime) -> None:
    cutoff = to_rfc3339(now - APPROVAL_GRACE)
    for row in list(db.query("SELECT * FROM enrolment_codes WHERE state = 'approved' AND "
                             "expires_at <= ?", [cutoff])):
        _lapse(db, row, now)


def issue(db: Database, now: datetime, suggested_name: str | None = None) -> IssuedCode:
    """A new pair of codes, pending for 15 minutes. Call inside a write transaction."""
    _lapse_uncollected(db, now)  # before the rows go: their devices are revoked first
    cutoff = to_rfc3339(now - KEEP_FINISHED)
    db.execute("DELETE FROM enrolment_codes WHERE expires_at < ?", [cutoff])
    pending = db.execute(
        "SELECT count(*) FROM enrolment_codes WHERE state = 'pending' AND expires_at > ?",
        [to_rfc3339(now)],
    ).fetchone()[0]
    if pending >= MAX_PENDING_CODES:
        raise TooManyPendingCodes(
            f"{pending} kiosks are already waiting for approval; approve or let those codes "
            "expire (15 minutes), then ask for a new code."
        )
    device_code = secrets.token_urlsafe(32)
    while True:  # 20^8 codes: a clash with a live one is rare, but must not approve two kiosks
        user_code = _new_user_code()
        clash = db.execute(
            "SELECT 1 FROM enrolment_codes WHERE user_code_sha256 = ?", [_digest(user_code)]
        ).fetchone()
        if clash is None:
            break
    db["enrolment_codes"].insert(
        {
            "device_code_sha256": _digest(device_code),
            "user_code_sha256": _digest(user_code),
            "state": "pending",
            "created_at": to_rfc3339(now),
            "expires_at": to_rfc3339(now + CODE_LIFETIME),
            "interval_s": POLL_INTERVAL_S,
            "suggested_name": (suggested_name or "").strip()[:64] or None,
        }
    )
    return IssuedCode(device_code, format_code(user_code),
                      int(CODE_LIFETIME.total_seconds()), POLL_INTERVAL_S)


def _by_user_code(db: Database, code: str) -> dict:
    normal = normalise_code(code)
    if normal is None:
        raise UnknownCode(
            f"{code.strip()[:20]!r} is not a kiosk code: a code is {CODE_LENGTH} letters like "
            f"{format_code('BCDFGHJK')}, as the kiosk shows it."
        )
    rows = list(db.query("SELECT * FROM enrolment_codes WHERE user_code_sha256 = ?",
                         [_digest(normal)]))
    if not rows:
        raise UnknownCode(
            f"No kiosk is showing the code {format_code(normal)}: check the letters on the "
            "kiosk's screen (a code lasts 15 minutes; the kiosk can show a new one)."
        )
    return rows[0]


def _must_be_pending(row: dict, now: datetime, code: str) -> None:
    if row["state"] != "pending":
        said = {"approved": "approved", "used": "approved", "denied": "denied",
                "lapsed": "approved (but never collected by the kiosk)"}[row["state"]]
        raise CodeAlreadyUsed(
            f"The code {code} was already {said}; each code works once. For another kiosk, "
            "use the code that kiosk shows."
        )
    if _expired(row, now):
        raise CodeExpired(
            f"The code {code} has expired (codes last 15 minutes); tap \"New code\" on the "
            "kiosk and use the new one."
        )


def is_known(db: Database, code: str) -> bool:
    """Whether some kiosk was given this short code (in any state, not yet deleted)."""
    try:
        _by_user_code(db, code)
    except UnknownCode:
        return False
    return True


def pending_suggestion(db: Database, code: str, now: datetime) -> str | None:
    """The device name the kiosk suggested for a pending code (for the approval form)."""
    try:
        row = _by_user_code(db, code)
        _must_be_pending(row, now, format_code(normalise_code(code) or ""))
    except EnrolmentError:
        return None
    return row["suggested_name"]


def approve(db: Database, code: str, site: str, name: str, role: str, now: datetime) -> Device:
    """Approve a pending code: the device exists from now (its token made when the kiosk
    collects it). Call inside a write transaction."""
    if role not in ROLES:
        raise EnrolmentError(f"role {role!r} is not one of {', '.join(ROLES)}.")
    row = _by_user_code(db, code)
    shown = format_code(normalise_code(code) or "")
    _must_be_pending(row, now, shown)
    # A throwaway token's digest until the kiosk collects the real one: the column is
    # unique and required, and nobody ever holds this token.
    device, _unused = add_device(db, site, name)
    db.execute("UPDATE devices SET role = ? WHERE id = ?", [role, device.id])
    db.execute(
        "UPDATE enrolment_codes SET state = 'approved', device_id = ?, role = ?, decided_at = ? "
        "WHERE id = ?",
        [device.id, role, to_rfc3339(now), row["id"]],
    )
    return device


def deny(db: Database, code: str, now: datetime) -> None:
    row = _by_user_code(db, code)
    _must_be_pending(row, now, format_code(normalise_code(code) or ""))
    db.execute("UPDATE enrolment_codes SET state = 'denied', decided_at = ? WHERE id = ?",
               [to_rfc3339(now), row["id"]])


def poll(db: Database, device_code: str, now: datetime) -> PollAnswer:
    """The kiosk's poll, as RFC 8628 3.5 answers it. Call inside a write transaction."""
    rows = list(db.query("SELECT * FROM enrolment_codes WHERE device_code_sha256 = ?",
                         [_digest(device_code)]))
    if not rows:
        return PollAnswer("invalid_grant", "This device code is not known here; ask for a "
                          "new code (POST /api/v1/enrol).")
    row = rows[0]
    interval = row["interval_s"]
    if row["state"] == "used":
        return PollAnswer("invalid_grant", "This code was used already; each code gives one "
                          "token. Ask for a new code.", interval)
    if row["state"] == "denied":
        return PollAnswer("access_denied", "The manager denied this kiosk's code.", interval)
    if row["state"] == "pending" and _expired(row, now):
        return PollAnswer("expired_token", "The code expired before it was approved; ask for "
                          "a new code.", interval)
    if row["state"] == "lapsed" or _lapsed(row, now):
        if row["state"] != "lapsed":
            _lapse(db, row, now)
        return PollAnswer("expired_token", "The code expired before the kiosk collected its "
                          "approval; ask for a new code and approve that one.", interval)
    last = row["last_poll_at"]
    db.execute("UPDATE enrolment_codes SET last_poll_at = ? WHERE id = ?",
               [to_rfc3339(now), row["id"]])
    if last is not None and (now - parse_rfc3339(last)).total_seconds() < interval:
        interval = min(interval + SLOW_DOWN_STEP_S, MAX_INTERVAL_S)
        db.execute("UPDATE enrolment_codes SET interval_s = ? WHERE id = ?",
                   [interval, row["id"]])
        return PollAnswer("slow_down", f"Polled too soon; wait {interval} s between polls.",
                          interval)
    if row["state"] == "pending":
        return PollAnswer("authorization_pending", "Waiting for a manager to approve the code.",
                          interval)
    # Approved: make the token now, keep only its digest, and spend the code.
    token = new_token(DEVICE_PREFIX)
    db.execute("UPDATE devices SET token_sha256 = ? WHERE id = ?",
               [token_digest(token), row["device_id"]])
    db.execute("UPDATE enrolment_codes SET state = 'used', collected_at = ? WHERE id = ?",
               [to_rfc3339(now), row["id"]])
    device_row = next(db.query("SELECT id, site, name FROM devices WHERE id = ?",
                               [row["device_id"]]))
    device = Device(device_row["id"], device_row["site"], device_row["name"])
    return PollAnswer(None, "Enrolled.", interval, token=token, device=device, role=row["role"])


def create_enrolment_tables(db: Database) -> None:
    """The schema of ``enrolment_codes`` (central migration ``_enrolment_codes``)."""
    db["enrolment_codes"].create(
        {
            "id": int,
            "device_code_sha256": str,
            "user_code_sha256": str,
            "state": str,  # pending | approved | denied | used | lapsed
            "created_at": str,
            "expires_at": str,
            "interval_s": int,
            "last_poll_at": str,
            "suggested_name": str,
            "device_id": str,
            "role": str,
            "decided_at": str,
            "collected_at": str,
        },
        pk="id",
        not_null={"device_code_sha256", "user_code_sha256", "state", "created_at",
                  "expires_at", "interval_s"},
    )
    db["enrolment_codes"].create_index(["device_code_sha256"], unique=True)
    db["enrolment_codes"].create_index(["user_code_sha256"], unique=True)
    db["enrolment_codes"].create_index(["expires_at"])
    db.execute("ALTER TABLE devices ADD COLUMN role TEXT")

