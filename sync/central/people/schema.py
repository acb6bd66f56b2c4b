"""Migration of roles, site scopes, TOTP, set-password links and the audit trail.

Existing logins and reporting tokens become ``admin`` of every site, so nothing a store's
people could do before stops working on upgrade; new ones get what they are given. The
columns' default is the least role, ``viewer``: a future insert that forgets the role must not
make an admin, so the existing rows are made admins by an UPDATE, not by the default.
"""

from __future__ import annotations

from sqlite_utils import Database

from sync.central.audit import create_audit_table


def create_access_tables(db: Database) -> None:
    for statement in (
        "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'viewer'",
        "ALTER TABLE users ADD COLUMN sites TEXT",  # NULL: every site; else a JSON list
        "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE users ADD COLUMN totp_secret TEXT",
        "ALTER TABLE users ADD COLUMN totp_last_step INTEGER",
        "ALTER TABLE users ADD COLUMN recovery_codes TEXT",  # JSON: a salt, HMAC-SHA256 digests
        "ALTER TABLE reporting_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'viewer'",
        "ALTER TABLE reporting_tokens ADD COLUMN sites TEXT",
        # 'totp': the password was right, the second factor is still to come.
        "ALTER TABLE sessions ADD COLUMN pending TEXT",
        "ALTER TABLE sites ADD COLUMN admin_totp TEXT NOT NULL DEFAULT 'optional'",
    ):
        db.execute(statement)
    db.execute("UPDATE users SET role = 'admin'")
    db.execute("UPDATE reporting_tokens SET role = 'admin'")
    db["password_links"].create(
        {"token_sha256": str, "user_id": str, "created_at": str, "expires_at": str,
         "used_at": str},
        pk="token_sha256",
        not_null={"user_id", "created_at", "expires_at"},
        foreign_keys=[("user_id", "users", "id")],
    )
    create_audit_table(db)
