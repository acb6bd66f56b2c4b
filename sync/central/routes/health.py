"""GET /healthz: is the store up, its database readable and its disk not full.

200 ``{"status": "ok", "schema_version": N}`` when all is well. A full disk (the last write
failed for want of space and none has committed since, or under 1 MiB free) is a 503
``{"status": "degraded", "disk": "full", "schema_version": N, "detail": "..."}``: the store
still answers reads, but stores nothing until space is freed.
"""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from sync.central.disk_full import SENTENCE
from sync.central.migrations import schema_version
from sync.central.schemas import Health, HealthDegraded
from sync.central.security import StoreDep

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness, database and disk check",
    responses={503: {"model": HealthDegraded, "description": "The disk is full."}},
)
def healthz(store: StoreDep):
    try:
        version = schema_version(store.db)
    except sqlite3.Error as error:
        raise HTTPException(503, f"The database cannot be read: {error}.") from None
    if store.disk_full:
        degraded = {"status": "degraded", "disk": "full", "schema_version": version,
                    "detail": SENTENCE}
        return JSONResponse(degraded, status_code=503)
    return {"status": "ok", "schema_version": version}
