"""People management: add a login (with a one-time set-password link, never a password sent
anywhere), change its role and sites, disable, enable, reset; a person's own password and
second factor. Each change is recorded in the audit trail in its own transaction.

The caller opens the transaction (``store.write()``) and passes its connection, so a change
and its audit entry commit or roll back together.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central import audit
from sync.central.audit import Actor
from sync.central.dashboard import accounts
from sync.central.dashboard.accounts import NO_PASSWORD, AccountError, User, digest
from sync.central.people import totp
from sync.central.permissions import Scope, check_role
from sync.central.sites import get_site

PASSWORD_LINK_LIFETIME = timedelta(hours=48)
SET_PASSWORD_PATH = "/password/set"


class PersonNotFound(LookupError):
    """No login with that id."""


class WrongPassword(AccountError):
    """The password typed to confirm a change is not the login's: a guess, for the limiter."""


def _row(db: Database, user_id: str) -> dict:
    rows = list(db.query(
        "SELECT id, name, role, sites, disabled, totp_secret IS NOT NULL AS totp, created_at "
        "FROM users WHERE id = ?", [user_id]))
    if not rows:
        raise PersonNotFound(f"there is no login with id {user_id!r}")
    return _shown(rows[0])


def _shown(row: dict) -> dict:
    scope = Scope.from_column(row["sites"])
    return {
        "id": row["id"], "name": row["name"], "role": row["role"],
        "sites": "all" if scope.everything else sorted(scope.sites),
        "disabled": bool(row["disabled"]), "totp": bool(row["totp"]),
        "created_at": row["created_at"],
    }


def audited_view(person: dict) -> dict:
    """What the audit trail keeps of a login (no id noise, nothing secret)."""
    return {key: person[key] for key in ("name", "role", "sites", "disabled", "totp")}


def list_people(db: Database) -> list[dict]:
    rows = db.query(
        "SELECT id, name, role, sites, disabled, totp_secret IS NOT NULL AS totp, created_at "
        "FROM users ORDER BY name")
    return [_shown(row) for row in rows]


def get_person(db: Database, user_id: str) -> dict:
    return _row(db, user_id)


def check_scope(db: Database, role: str, scope: Scope) -> Scope:
    """A scope of existing sites (a typo must not make a login that sees nothing); an admin
    sees every site, so it is given every site."""
    check_role(role)
    if role == "admin":
        return Scope(None)
    if scope.sites is not None:
        if not scope.sites:
            raise AccountError("choose at least one site (or all sites)")
        for name in sorted(scope.sites):
            get_site(db, name)
    return scope


def _other_admins(db: Database, user_id: str) -> int:
    """Other admins able to log in: enabled, and with a password (one still waiting for its
    set-password link may never redeem it)."""
    return db.execute(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ? "
        "AND password_hash != ?",
        [user_id, NO_PASSWORD],
    ).fetchone()[0]


def keep_an_admin(db: Database, user_id: str) -> None:
    if _other_admins(db, user_id) == 0:
        raise AccountError(
            "this is the last admin able to log in; make another login admin first"
        )


def create_password_link(db: Database, user_id: str, now: datetime | None = None) -> str:
    """A one-time token to set a password (earlier unused links of the login are spent)."""
    now = now or utc_now()
    db.execute("UPDATE password_links SET used_at = ? WHERE user_id = ? AND used_at IS NULL",
               [to_rfc3339(now), user_id])
    token = secrets.token_urlsafe(32)
    db["password_links"].insert({
        "token_sha256": digest(token), "user_id": user_id, "created_at": to_rfc3339(now),
        "expires_at": to_rfc3339(now + PASSWORD_LINK_LIFETIME), "used_at": None,
    })
    return token


def link_path(token: str) -> str:
    """The link's path: the token after '#', which a browser never sends, so it appears in no
    server or proxy log (the page's script hands it to the form)."""
    return f"{SET_PASSWORD_PATH}#{token}"


def add_person(db: Database, actor: Actor, name: str, role: str, scope: Scope) -> tuple[User, str]:
    """A new login with no password yet, and its set-password link's token."""
    scope = check_scope(db, role, scope)
    if db.execute("SELECT 1 FROM users WHERE name = ?", [name.strip()]).fetchone():
        raise AccountError(f"a login named {name.strip()!r} already exists")
    user = accounts.add_user(db, name, None, role=role, scope=scope)
    token = create_password_link(db, user.id)
    after = _row(db, user.id)
    audit.record(db, actor, "user.add", after["name"], None, None, audited_view(after))
    return user, token


def change_person(db: Database, actor: Actor, user_id: str, role: str, scope: Scope) -> dict:
    before = _row(db, user_id)
    scope = check_scope(db, role, scope)
    if before["role"] == "admin" and role != "admin":
        keep_an_admin(db, user_id)
    db.execute("UPDATE users SET role = ?, sites = ? WHERE id = ?",
               [role, scope.to_column(), user_id])
    after = _row(db, user_id)
    audit.record(db, actor, "user.change", after["name"], None, audited_view(before),
                 audited_view(after))
    return after


def set_disabled(db: Database, actor: Actor, user_id: str, disabled: bool) -> dict:
    before = _row(db, user_id)
    if disabled and before["role"] == "admin":
        keep_an_admin(db, user_id)
    db.execute("UPDATE users SET disabled = ? WHERE id = ?", [int(disabled), user_id])
    if disabled:
        db.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])
    after = _row(db, user_id)
    audit.record(db, actor, "user.disable" if disabled else "user.enable", after["name"], None,
                 audited_view(before), audited_view(after))
    return after


def reset_person(db: Database, actor: Actor, user_id: str) -> str:
    """The password and second factor are cleared, every session ends, and a new
    set-password link is made (its token returned): for a forgotten password or a lost phone."""
    before = _row(db, user_id)
    db.execute(
        "UPDATE users SET password_hash = ?, totp_secret = NULL, totp_last_step = NULL, "
        "recovery_codes = NULL WHERE id = ?", [NO_PASSWORD, user_id])
    db.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])
    token = create_password_link(db, user_id)
    after = _row(db, user_id)
    audit.record(db, actor, "user.reset", after["name"], None,
                 {**audited_view(before), "password": "(set)"},
                 {**audited_view(after), "password": None})
    return token


def redeem_password_link(db: Database, token: str, password: str, origin: str,
                         now: datetime | None = None) -> User:
    """Set the link's login's password (checked by the rule); the link is spent only when
    the password is accepted, so a refused one can be tried again."""
    now_text = to_rfc3339(now or utc_now())
    row = db.execute(
        "SELECT u.id, u.name FROM password_links l JOIN users u ON u.id = l.user_id "
        "WHERE l.token_sha256 = ? AND l.used_at IS NULL AND l.expires_at > ? "
        "AND u.disabled = 0",
        [digest(token or ""), now_text],
    ).fetchone()
    if row is None:
        raise AccountError(
            "this set-password link has been used or has expired; ask an admin for a new one"
        )
    password_hash = accounts.hash_password(password, row[1])
    db.execute("UPDATE password_links SET used_at = ? WHERE token_sha256 = ?",
               [now_text, digest(token)])
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, row[0]])
    db.execute("DELETE FROM sessions WHERE user_id = ?", [row[0]])
    audit.record(db, Actor("user", f"user:{row[1]}", origin), "user.password_set", row[1],
                 after={"password": "(set)", "by": "set-password link"})
    return accounts.get_user(db, row[0])


def change_own_password(db: Database, actor: Actor, user: User, current: str, new: str,
                        keep_session: str | None = None) -> None:
    """A new password ends every other session of the login (one opened with the old
    password elsewhere, perhaps by whoever learnt it); ``keep_session`` (the id of the one
    making the change) stays open."""
    if accounts.verify_password(db, user.name, current) is None:
        raise WrongPassword("the current password is not right; nothing was changed")
    password_hash = accounts.hash_password(new, user.name)
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, user.id])
    db.execute("DELETE FROM sessions WHERE user_id = ? AND id_sha256 != ?",
               [user.id, digest(keep_session or "")])
    audit.record(db, actor, "user.password_change", user.name,
                 after={"password": "(set)"})


def set_own_language(db: Database, actor: Actor, user: User, tag: str) -> None:
    """The language the login reads the dashboard in (its next page already shows it)."""
    from sync.central.dashboard.language import check_choice

    tag = check_choice(tag)
    if tag == user.language:
        return
    db.execute("UPDATE users SET language = ? WHERE id = ?", [tag, user.id])
    audit.record(db, actor, "user.language_change", user.name,
                 before={"language": user.language}, after={"language": tag})


# --- the second factor -----------------------------------------------------------------------


def enable_totp(db: Database, actor: Actor, user: User, secret: str, code: str,
                now: datetime | None = None) -> list[str]:
    """Turn TOTP on once a code from the new secret is right; returns the recovery codes
    (shown once)."""
    now = now or utc_now()
    if not totp.is_new_secret(secret):
        # The key comes back from the page's form: anything but what new_secret() makes is
        # a tampered or truncated form, never a key pyotp should be asked to decode.
        raise AccountError("the setup has expired; open the page again")
    on = db.execute("SELECT totp_secret IS NOT NULL FROM users WHERE id = ?",
                    [user.id]).fetchone()
    if on is None or on[0]:
        # Replacing a factor must prove the password (turning it off asks for it), or a
        # borrowed session could move the second factor to another phone.
        raise AccountError(
            "the second factor is already on; turn it off first with your password"
        )
    step = totp.matching_step(secret, code, now, None)
    if step is None:
        raise AccountError(
            "that code is not right: type the 6 digits your app shows now (check the phone's "
            "clock if it keeps failing)"
        )
    codes, stored = totp.new_recovery_codes()
    db.execute(
        "UPDATE users SET totp_secret = ?, totp_last_step = ?, recovery_codes = ? WHERE id = ?",
        [secret, step, stored, user.id])
    audit.record(db, actor, "user.totp_enable", user.name, None, {"totp": bool(on[0])},
                 {"totp": True})
    return codes


def disable_totp(db: Database, actor: Actor, user: User, password: str) -> None:
    if accounts.verify_password(db, user.name, password) is None:
        raise WrongPassword("the password is not right; the second factor stays on")
    db.execute("UPDATE users SET totp_secret = NULL, totp_last_step = NULL, "
               "recovery_codes = NULL WHERE id = ?", [user.id])
    audit.record(db, actor, "user.totp_disable", user.name, None, {"totp": True},
                 {"totp": False})


def check_second_factor(db: Database, user_id: str, code: str,
                        now: datetime | None = None) -> str | None:
    """'totp' or 'recovery' when ``code`` is the login's current TOTP code (never one used
    before) or one of its unspent recovery codes (then spent); None otherwise."""
    row = db.execute("SELECT totp_secret, totp_last_step, recovery_codes FROM users "
                     "WHERE id = ?", [user_id]).fetchone()
    if row is None or row[0] is None:
        return None
    step = totp.matching_step(row[0], code, now or utc_now(), row[1])
    if step is not None:
        db.execute("UPDATE users SET totp_last_step = ? WHERE id = ?", [step, user_id])
        return "totp"
    remaining = totp.spend_recovery_code(row[2], code)
    if remaining is not None:
        db.execute("UPDATE users SET recovery_codes = ? WHERE id = ?", [remaining, user_id])
        return "recovery"
    return None
