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
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from fastapi import FastAPI, Request, Response

from tests.benchmarks.common import PYTHON, ROOT

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def floor_server(workers: int, startup_timeout: float = 30.0) -> Iterator[str]:
    """This app under uvicorn in its own process group, ``workers`` processes; yields its URL."""
    port = _free_port()
    command = [PYTHON, "-m", "uvicorn", "tests.benchmarks.framework_floor:app",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--workers", str(workers), "--backlog", "2048"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the floor app exited with {process.returncode}")
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the floor app did not answer within {startup_timeout} s")
            time.sleep(0.05)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
