"""The floor under figure 14: the same burst against an endpoint that stores nothing.

The app below is the central store's web stack with no store behind it: uvicorn (its default
h11 protocol, as ``main.py central`` runs) and FastAPI, an endpoint that reads the batch, parses
its JSON and answers ``stored`` for every event, plus the ``GET /api/v1/config`` a kiosk opens
its connection with. Whatever p99 this reaches under 1,000 kiosks at once on this machine is
what the web stack alone costs; the store's own p99 can only be above it. Measured in the same
run as the store's figure, so the two compare on a machine whose speed drifts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request, Response

from tests.benchmarks.common import PYTHON, ROOT, free_port, wait_until_healthy

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.get("/api/v1/config")
async def config() -> dict:
    return {}


@app.post("/api/v1/events")
async def events(request: Request) -> Response:
    batch = json.loads(await request.body())
    results = [{"id": event["id"], "status": "stored", "reason": None}
               for event in batch["events"]]
    return Response(json.dumps({"results": results}).encode(), media_type="application/json")


@contextmanager
def floor_server(workers: int, startup_timeout: float = 30.0) -> Iterator[str]:
    """This app under uvicorn in its own process group, ``workers`` processes; yields its URL."""
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", "tests.benchmarks.framework_floor:app",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--workers", str(workers), "--backlog", "2048"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url, startup_timeout, "the floor app")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
