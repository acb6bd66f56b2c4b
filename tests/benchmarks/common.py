"""What every figure shares: the row format, robust statistics, realistic events, a central store
in its own process, and device enrolment.

A figure is a module with ``run(quick: bool) -> list[dict]``; each dict is one table row built by
:func:`row`. Every value sits beside a baseline measured in the same run, because this machine's
speed drifts from minute to minute and only a same-run ratio is comparable between runs.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from kiosk.shared.timeutil import to_rfc3339

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SITE = "Bench Clinic"


def row(
    figure: str,
    value: float | None,
    unit: str,
    baseline: float | None,
    target: str,
    passed: bool | None,
    ratio: float | None = None,
) -> dict:
    """One table row. ``ratio`` defaults to value / baseline; None where it means nothing."""
    if ratio is None and value is not None and baseline:
        ratio = value / baseline
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "pass": passed,
    }


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: with few samples p99 is the worst one, never an interpolation
    that hides it."""
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, int(-(-fraction * len(ordered) // 1)) - 1))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as name:
        yield Path(name)


# -- realistic events -------------------------------------------------------------------------

# Events end about now, so the central store's clock-suspect check sees an ordinary past backlog.
MEAN_GAP_S = 47.5
TAGS = ("waiting_time", "friendliness", "explanation", "billing", "cleanliness", "other")


def wire_events(count: int, seed: int = 7, first_seq: int = 1) -> list[dict]:
    """``count`` events of one kiosk's day in the wire format, in ``device_seq`` order.

    The mix a desk kiosk writes: each visit is checked in, called and checked out, and about
    two in three are rated (a third of those with follow-up tags); a cancellation now and then.
    """
    rng = random.Random(seed)
    events: list[dict] = []
    seq = first_seq
    clock = datetime.now(UTC) - timedelta(seconds=count * MEAN_GAP_S + 3600)

    def add(kind: str, visit_id: str | None, data: dict) -> None:
        nonlocal seq, clock
        clock += timedelta(seconds=rng.randint(5, 90))
        events.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "device_seq": seq,
                "type": kind,
                "occurred_at": to_rfc3339(clock),
                "visit_id": visit_id,
                "data": data,
            }
        )
        seq += 1

    ticket = 0
    while len(events) < count:
        ticket = ticket % 9999 + 1
        visit_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        add("visit.checked_in", visit_id, {"ticket": f"A-{ticket:03d}", "appointment_at": None})
        if rng.random() < 0.05:
            add("visit.cancelled", visit_id, {"reason": rng.choice(("cancelled", "no_show"))})
            continue
        add("visit.called", visit_id, {})
        add("visit.checked_out", visit_id, {})
        if rng.random() < 0.66:
            score = rng.randint(1, 5)
            tags = rng.sample(TAGS, rng.randint(1, 2)) if score <= 2 else []
            add(
                "rating.submitted",
                visit_id,
                {"score": score, "scale": 5, "tags": tags, "misuse": False},
            )
    return events[:count]


# -- the central store, in its own process ----------------------------------------------------


def enrol_devices(data_dir: Path | None, count: int, database_url: str | None = None
                  ) -> list[str]:
    """Enrol ``count`` devices (what `main.py device add` does) and return their tokens; in the
    PostgreSQL database at ``database_url`` when given."""
    from sync.central import auth
    from sync.central.storage import CentralStore

    store = CentralStore(data_dir, database_url=database_url, pool_size=1)
    try:
        tokens = []
        with store.write() as db:
            for number in range(count):
                tokens.append(auth.add_device(db, SITE, f"Bench kiosk {number + 1}")[1])
        return tokens
    finally:
        store.close()


def reporting_token(data_dir: Path, name: str) -> str:
    """A read-only reporting token (what `main.py token add` does)."""
    from sync.central import auth
    from sync.central.storage import CentralStore

    store = CentralStore(data_dir)
    try:
        with store.write() as db:
            return auth.add_reporting_token(db, name)[1]
    finally:
        store.close()


def count_rows(data_dir: Path | None, sql: str, database_url: str | None = None) -> int:
    """One number read from the store's database (SQLite in ``data_dir``, or PostgreSQL)."""
    from sync.central.storage import connect_to

    db = connect_to(data_dir, database_url)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class CentralProcess:
    url: str
    data_dir: Path
    pid: int


def wait_until_healthy(process: subprocess.Popen, url: str, timeout: float, name: str,
                       details=lambda: "") -> None:
    """Poll ``url``/healthz until it answers 200: a sentence naming ``name`` (and ``details()``)
    if the process exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {details()}")
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return
        except (requests.ConnectionError, requests.Timeout):
            # Timeout: with --workers the socket accepts before a worker serves it.
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer within {timeout} s")
        time.sleep(0.05)  # polling until it answers, not guessing a start-up time


@contextmanager
def central_process(data_dir: Path | None, startup_timeout: float = 30.0, *,
                    database_url: str | None = None, read_database_url: str | None = None,
                    workers: int = 1, max_connections: int | None = None,
                    extra_args: tuple[str, ...] = ()) -> Iterator[CentralProcess]:
    """`main.py central` in a subprocess, so the load generator never shares the server's GIL.

    Access logging is off (``--log-level warning``): a log line per request is the operator's
    choice and would measure the terminal, not the store. So is the daily backup
    (``--backup-keep 0``): a store backs itself up at start, which would be measured as ingest.
    With ``database_url`` the store is that PostgreSQL database (``--data`` only if given),
    ``read_database_url`` its replica, served by ``workers`` processes; ``max_connections``
    is ``--max-connections`` (per worker).
    """
    port = free_port()
    command = [PYTHON, str(ROOT / "main.py"), "central", "--port", str(port),
               "--log-level", "warning", "--backup-keep", "0"]
    if data_dir is not None:
        command += ["--data", str(data_dir)]
    if database_url is not None:
        command += ["--database-url", database_url]
    if read_database_url is not None:
        command += ["--read-database-url", read_database_url]
    if workers != 1:
        command += ["--workers", str(workers)]
    if max_connections is not None:
        command += ["--max-connections", str(max_connections)]
    command += list(extra_args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The server's messages go to a file, not a pipe: under a burst its workers may log more
    # than a pipe holds, and a pipe nobody reads would stall them (and the figure with them).
    with tempfile.TemporaryFile() as log:
        # Its own process group: with --workers the supervisor's children are stopped with it.
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=log, start_new_session=True)
        url = f"http://127.0.0.1:{port}"

        def log_tail() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")[-2000:]

        try:
            wait_until_healthy(process, url, startup_timeout, "the central store", log_tail)
            yield CentralProcess(url, data_dir, process.pid)
        except BaseException:
            # Whatever failed, the server's own account of it goes with the figure's error.
            print(f"[bench] the central store's log ends with:\n{log_tail()}", file=sys.stderr)
            raise
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the supervisor and every worker
                process.wait()
