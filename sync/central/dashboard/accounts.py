"""Dashboard logins: users (Argon2id), server-side sessions, one-time login links, rate limits.

A session id and a login link token are 256 random bits given to the browser once; the
database keeps only their SHA-256, so reading the database does not let anyone in. Passwords
are hashed with Argon2id (argon2-cffi's default type) and checked in constant time; an unknown
name is checked against a dummy hash so the answer takes as long as for a known one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central import audit
from sync.central.people.passwords import MIN_LENGTH, WeakPassword, check_password
from sync.central.permissions import (
    EVERY_SITE,
    Principal,
    Scope,
    check_role,
    effective_scope,
)
from sync.central.rate_limit import FailureLimiter

SESSION_LIFETIME = timedelta(hours=12)
LOGIN_LINK_LIFETIME = timedelta(minutes=10)
# A login must finish its second factor within this long after the password.
PENDING_LIFETIME = timedelta(minutes=5)
MIN_PASSWORD_LENGTH = MIN_LENGTH
# The stored "hash" of a login that has no password yet (waiting for its set-password link):
# never a valid Argon2 hash, so no password matches it.
NO_PASSWORD = "!"
MAX_NAME_LENGTH = 64
DEFAULT_ADMIN = "admin"

_hasher = PasswordHasher()  # Argon2id, RFC 9106 "low memory" profile
_DUMMY_HASH = _hasher.hash("not a password anyone has")


class AccountError(ValueError):
    """A user name or password that cannot be used; the message says why."""


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: str = "admin"
    scope: Scope = EVERY_SITE
    totp: bool = False  # a second factor is set up
    reads_comments: bool = False  # given ``user add --can-read-comments``
    language: str = "en"  # the dashboard's language for this login (Account page)

    @property
    def principal(self) -> Principal:
        return Principal("user", self.id, self.name, self.role,
                         effective_scope(self.role, self.scope),
                         frozenset({"read_comments"}) if self.reads_comments else frozenset())


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: str

    @property
    def principal(self) -> Principal:
        return self.user.principal


USER_COLUMNS = ("u.id, u.name, u.role, u.sites, u.totp_secret IS NOT NULL, u.can_read_comments, "
                "u.language")


def _user(row) -> User:
    return User(row[0], row[1], row[2], Scope.from_column(row[3]), bool(row[4]), bool(row[5]),
                row[6])


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def set_hasher(hasher: PasswordHasher) -> None:
    """Tests use cheaper Argon2id costs; the algorithm stays the same."""
    global _hasher, _DUMMY_HASH
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("not a password anyone has")


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise AccountError(f"a user name must be 1-{MAX_NAME_LENGTH} printable characters")
    return name


def hash_password(password: str, name: str) -> str:
    """The password checked against the rule (``people.passwords``), then hashed."""
    try:
        check_password(password, name)
    except WeakPassword as error:
        raise AccountError(str(error)) from None
    return _hasher.hash(password)


def add_user(
    db: Database,
    name: str,
    password: str | None,
    role: str | None = None,
    scope: Scope | None = None,
) -> User:
    """Create a login, or set a new password (and the role and sites, when given) if the name
    exists. ``password=None`` makes a login that waits for its set-password link. A new
    login's role is ``admin`` unless given (as before roles existed, so scripts that add the
    first login keep working)."""
    name = _check_name(name)
    if role is not None:
        check_role(role)
    password_hash = hash_password(password, name) if password is not None else NO_PASSWORD
    found = db.execute("SELECT id, role, sites FROM users WHERE name = ?", [name]).fetchone()
    if found:
        role = role or found[1]
        scope = scope if scope is not None else Scope.from_column(found[2])
        db.execute(
            "UPDATE users SET password_hash = ?, role = ?, sites = ? WHERE id = ?",
            [password_hash, role, scope.to_column(), found[0]],
        )
        # A new password ends every session the old one opened.
        db.execute("DELETE FROM sessions WHERE user_id = ?", [found[0]])
        return User(found[0], name, role, scope)
    user = User(str(uuid.uuid4()), name, role or "admin", scope or EVERY_SITE)
    db["users"].insert(
        {
            "id": user.id,
            "name": name,
            "password_hash": password_hash,
            "created_at": to_rfc3339(utc_now()),
            "role": user.role,
            "sites": user.scope.to_column(),
            "disabled": 0,
        }
    )
    return user


def get_user(db: Database, user_id: str) -> User | None:
    row = db.execute(
        f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?", [user_id]
    ).fetchone()
    return _user(row) if row else None


def verify_password(db: Database, name: str, password: str) -> User | None:
    """The login if the password is right and the login is not disabled (a disabled login
    answers as a wrong password does: the page tells a guesser nothing)."""
    row = db.execute(
        f"SELECT {USER_COLUMNS}, u.password_hash, u.disabled FROM users u WHERE u.name = ?",
        [(name or "").strip()],
    ).fetchone()
    try:
        _hasher.verify(row[7] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row[8]:
        return None
    return _user(row)


def open_session(
    db: Database, user: User, now: datetime | None = None, pending: str | None = None
) -> str:
    """A new session for ``user``; returns the id for the cookie (stored only hashed).
    ``pending="totp"``: the password was right and the second factor is still to come; such
    a session opens no page but the code's."""
    now = now or utc_now()
    session_id = secrets.token_urlsafe(32)
    lifetime = PENDING_LIFETIME if pending else SESSION_LIFETIME
    db["sessions"].insert(
        {
            "id_sha256": digest(session_id),
            "user_id": user.id,
            "csrf_token": secrets.token_urlsafe(32),
            "created_at": to_rfc3339(now),
            "expires_at": to_rfc3339(now + lifetime),
            "pending": pending,
        }
    )
    # Expired sessions are swept here rather than by a timer: logins are rare and cheap.
    db.execute("DELETE FROM sessions WHERE expires_at < ?", [to_rfc3339(now)])
    return session_id


def find_session(
    db: Database, session_id: str | None, now: datetime | None = None, pending: str | None = None
):
    """The live session of an enabled login (``pending``: one waiting for that factor)."""
    if not session_id:
        return None
    row = db.execute(
        f"SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at FROM sessions s "
        "JOIN users u ON u.id = s.user_id WHERE s.id_sha256 = ? AND s.expires_at > ? "
        "AND u.disabled = 0 AND s.pending IS ?",
        [digest(session_id), to_rfc3339(now or utc_now()), pending],
    ).fetchone()
    return Session(_user(row), row[7], row[8]) if row else None


def close_session(db: Database, session_id: str | None) -> None:
    if session_id:
        db.execute("DELETE FROM sessions WHERE id_sha256 = ?", [digest(session_id)])


def create_login_link_token(db: Database, now: datetime | None = None) -> str:
    """A token that logs in as the first user once, within LOGIN_LINK_LIFETIME.

    With no user yet, an "admin" user is made with a random password nobody knows: the link is
    how the embedded store's owner gets in, and `user add` sets a real password later.
    """
    now = now or utc_now()
    row = db.execute(
        "SELECT id FROM users WHERE role = 'admin' AND disabled = 0 ORDER BY created_at, name "
        "LIMIT 1"
    ).fetchone()
    user_id = row[0] if row else _new_admin(db).id
    token = secrets.token_urlsafe(32)
    db["login_links"].insert(
        {
            "token_sha256": digest(token),
            "user_id": user_id,
            "created_at": to_rfc3339(now),
            "expires_at": to_rfc3339(now + LOGIN_LINK_LIFETIME),
            "used_at": None,
        }
    )
    return token


def _new_admin(db: Database) -> User:
    """An admin with a random password nobody knows (its name made unique if taken),
    recorded in the audit trail as made by the account running the embedded store."""
    name, n = DEFAULT_ADMIN, 1
    while db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
        n += 1
        name = f"{DEFAULT_ADMIN}-{n}"
    user = add_user(db, name, secrets.token_urlsafe(24), role="admin")
    audit.record(db, audit.command_actor(), "user.add", user.name, None, None, {
        "name": user.name, "role": user.role, "sites": "all", "disabled": False,
        "totp": False, "password": "(set)", "by": "embedded store"})
    return user


def redeem_login_link(db: Database, token: str, now: datetime | None = None) -> User | None:
    """The link's user if the token is valid, unused and fresh; it is spent either way."""
    now_text = to_rfc3339(now or utc_now())
    spent = db.execute(
        "UPDATE login_links SET used_at = ? WHERE token_sha256 = ? AND used_at IS NULL "
        "AND expires_at > ?",
        [now_text, digest(token or ""), now_text],
    )
    if spent.rowcount != 1:
        return None
    row = db.execute(
        f"SELECT {USER_COLUMNS} FROM login_links l JOIN users u ON u.id = l.user_id "
        "WHERE l.token_sha256 = ? AND u.disabled = 0",
        [digest(token)],
    ).fetchone()
    return _user(row) if row else None


def same_secret(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


class LoginRateLimiter:
    """At most ``limit`` failed logins per (name, client address) in ``window_s`` seconds, and
    at most ``address_limit`` per client address whatever the names (one password tried
    against many names is guessing too).

    The same limiter as the API's tokens (``sync.central.rate_limit``), twice. Unlike a token,
    a password is checked only while the address and name are under their limits: passwords
    can be guessed, so a guesser past the limit must learn nothing (Argon2id makes each guess
    cost ~50 ms of CPU anyway). A successful login clears its own name's failures but not its
    address's, so an account of one's own cannot reset the cap.
    """

    def __init__(
        self,
        limit: int = 5,
        window_s: float = 60.0,
        clock=time.monotonic,
        address_limit: int = 20,
    ):
        self._names = FailureLimiter(limit, window_s, clock)
        self._addresses = FailureLimiter(address_limit, window_s, clock)

    @property
    def limit(self) -> int:
        return self._names.limit

    @property
    def address_limit(self) -> int:
        return self._addresses.limit

    def retry_after(self, name: str, address: str) -> int:
        """Seconds to wait before this name may try again from this address, 0 if allowed."""
        return self._names.retry_after((_key(name), address))

    def address_retry_after(self, address: str) -> int:
        """Seconds to wait before any name may try again from this address, 0 if allowed."""
        return self._addresses.retry_after(address)

    def failed(self, name: str, address: str) -> None:
        self._names.failed((_key(name), address))
        self._addresses.failed(address)

    def succeeded(self, name: str, address: str) -> None:
        self._names.forget((_key(name), address))

    def tracked(self) -> int:
        """Keys held (names at addresses, and addresses): bounded by the limiters' size."""
        return len(self._names) + len(self._addresses)


def _key(name: str) -> str:
    return name.strip().lower()
