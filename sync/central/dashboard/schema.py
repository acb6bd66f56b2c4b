"""The dashboard's tables: logins, their sessions and one-time login links.

Applied as part of a numbered migration of the central schema (``sync.central.migrations``),
so a data directory is upgraded once and plain SQLite tools still see ordinary tables. The
figures' rollups and indexes are the central store's own (``sync.central.rollups``).
"""

from __future__ import annotations

from sqlite_utils import Database


def create_dashboard_tables(db: Database) -> None:
    db["users"].create(
        {"id": str, "name": str, "password_hash": str, "created_at": str},
        pk="id",
        not_null={"name", "password_hash", "created_at"},
    )
    db["users"].create_index(["name"], unique=True)
    # Only the SHA-256 of a session id is stored: a copy of the database logs nobody in.
    db["sessions"].create(
        {
            "id_sha256": str,
            "user_id": str,
            "csrf_token": str,
            "created_at": str,
            "expires_at": str,
        },
        pk="id_sha256",
        not_null={"user_id", "csrf_token", "created_at", "expires_at"},
        foreign_keys=[("user_id", "users", "id")],
    )
    db["sessions"].create_index(["expires_at"])
    db["login_links"].create(
        {
            "token_sha256": str,
            "user_id": str,
            "created_at": str,
            "expires_at": str,
            "used_at": str,
        },
        pk="token_sha256",
        not_null={"user_id", "created_at", "expires_at"},
        foreign_keys=[("user_id", "users", "id")],
    )
