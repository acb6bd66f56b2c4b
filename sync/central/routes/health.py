"""GET /healthz: is the store up, its database readable and its disk not full.

200 ``{"status": "ok", "schema_version": N}`` when all is well. A full disk (the last write
failed for want of space and none has committed since, or under 1 MiB free) is a 503
``{"status": "degraded", "disk": "full", "schema_version": N, "detail": "..."}``: the store
still answers reads, but stores nothing until space is freed. A database that cannot be read
at all is a 503 ``{"status": "degraded", "database": "unreadable", "detail": "..."}`` (before,
only ``detail``: the keys were added, none taken away). Either way monitoring should alert a
person; a degraded store still serves what it can, so restarting it in a loop helps nothing.

With a read replica (``--read-database-url``) the 200 answer also carries ``replica_lag_s``:
seconds the replica is behind the primary (``sync.central.replica_lag``), null when it cannot
be measured. A lagging replica is not a degraded store: ingest goes on; only the dashboard's
figures are old, and the Devices page says so.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sync.central.disk_full import SENTENCE
from sync.central.migrations import schema_version
from sync.central.schemas import Health, HealthDegraded
from sync.central.security import StoreDep

router = APIRouter(tags=["operations"])


class HealthUnreadable(BaseModel):
    status: Literal["degraded"]
    database: Literal["unreadable"]
    detail: str



@router.get(
    "/healthz",
    response_model=Health,
    # replica_lag_s only when there is a replica: the answer without one is as it always was.
    response_model_exclude_unset=True,
    summary="Liveness, database and disk check",
    responses={503: {
        "model": HealthDegraded | HealthUnreadable,
        "description": "The disk is full (HealthDegraded), or the database cannot be read "
                       "(HealthUnreadable).",
    }},
)
def healthz(store: StoreDep):
    try:
        version = schema_version(store.db)
    except sqlite3.Error as error:
        unreadable = {"status": "degraded", "database": "unreadable",
                      "detail": f"The database cannot be read: {error}."}
        return JSONResponse(unreadable, status_code=503)
    if store.disk_full:
        degraded = {"status": "degraded", "disk": "full", "schema_version": version,
                    "detail": SENTENCE}
        return JSONResponse(degraded, status_code=503)
    healthy = {"status": "ok", "schema_version": version}
    lag = store.replica_lag
    if lag is not None:
        healthy["replica_lag_s"] = None if lag.seconds is None else round(lag.seconds, 3)
    return healthy
