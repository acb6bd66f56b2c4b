"""GET /healthz: is the store up and its database readable."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, HTTPException

from sync.central.migrations import schema_version
from sync.central.schemas import Health
from sync.central.security import StoreDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness and database check")
def healthz(store: StoreDep) -> dict:
    try:
        version = schema_version(store.db)
    except sqlite3.Error as error:
        raise HTTPException(503, f"The database cannot be read: {error}.") from None
    return {"status": "ok", "schema_version": version}
