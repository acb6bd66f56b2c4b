"""Figure 6: every dashboard request with a million visits and a million ratings in the store.

A store is filled by ``demo-data``'s bulk path (2 sites, 5 desks, 365 days; 100,000 visits and
ratings with ``quick``), served by ``main.py central`` in its own process, and a logged-in
client asks for each page and JSON endpoint in turn with their default ranges (the last 28
days; the live queue and Today for today), plus the Trends page over 90 days; then
``GET /api/v1/metrics`` with a reporting token (its default 24 hours, 28 days, one site), and
the CSV downloads of 28 days (dashboard and API). Each request is timed end to end over
loopback (keep-alive session); the row is its p95 beside the p95 of ``GET /healthz`` (the
server's floor: routing, one tiny query, the HTTP round trip) in the same run. A CSV download
streams, so its row is the time to its first bytes (the answer the browser acts on), and one
more row says how long the whole 28-day file took, for information.

``DASHBOARD_BENCH_DATA=DIR`` reuses a data directory filled earlier (building a million rows
takes a few minutes); the benchmark adds (or resets) a login "bench" and a reporting token.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from pathlib import Path

import requests

from kiosk.shared.timeutil import utc_now
from sync.central import auth
from sync.central.dashboard import accounts, demo
from sync.central.storage import CentralStore
from tests.benchmarks.common import central_process, percentile, row, scratch_dir

TARGET_MS = 200.0
PASSWORD = "bench password 123"


def _requests() -> list[tuple[str, str]]:
    today = utc_now().date()
    ninety = f"from={today - timedelta(days=89)}&to={today}"
    return [
        ("Today page", "/"),
        ("live queue JSON", "/dashboard/queue.json"),
        ("Trends page (28 days)", "/trends"),
        ("Trends page (90 days)", f"/trends?{ninety}"),
        ("Rating by wait page", "/rating-by-wait"),
        ("Follow-up reasons page", "/reasons"),
        ("Compare page", "/compare"),
        ("Compare page, one site", "/compare?site=Northgate+Dental"),
        ("Devices page", "/devices"),
        ("Export page", "/export"),
        ("login page", "/login"),
    ]


def _last_28_days() -> str:
    """The API's query for the 28 UTC days up to the end of today."""
    today = utc_now().date()
    start, end = today - timedelta(days=27), today + timedelta(days=1)
    return f"from={start}T00:00:00Z&to={end}T00:00:00Z"


def _api_requests() -> list[tuple[str, str]]:
    days_28 = _last_28_days()
    return [
        ("metrics API (last 24 h)", "/api/v1/metrics"),
        ("metrics API (28 days)", f"/api/v1/metrics?{days_28}"),
        ("metrics API (28 days, one site)", f"/api/v1/metrics?{days_28}&site=Northgate+Dental"),
    ]


def _downloads() -> list[tuple[str, str]]:
    days_28 = _last_28_days()
    return [
        ("visits CSV download (28 days)", "/export/visits.csv"),
        ("ratings CSV download (28 days)", "/export/ratings.csv"),
        ("visits CSV via API (28 days)", f"/api/v1/export/visits.csv?{days_28}"),
    ]


def _fill(data_dir: Path, rows: int) -> str:
    """Fill the store (unless it is filled already); returns a new reporting token."""
    store = CentralStore(data_dir)
    try:
        if not store.db.execute("SELECT 1 FROM visits LIMIT 1").fetchone():
            demo.fill(store, days=365, visits=rows, ratings=rows)
        with store.write() as db:
            accounts.add_user(db, "bench", PASSWORD)  # sets the password if "bench" exists
            return auth.add_reporting_token(db, "dashboard benchmark")[1]
    finally:
        store.close()


def _login(session: requests.Session, url: str) -> None:
    page = session.get(url + "/login", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        url + "/login",
        data={"username": "bench", "password": PASSWORD, "csrf": csrf, "next": "/"},
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"benchmark login failed: {answer.status_code}")


def _p95_ms(session: requests.Session, url: str, samples: int,
            headers=None) -> tuple[float, float]:
    """(p95 of the ``samples`` requests after two warm-up ones, the first request's time)."""
    times = []
    first = None
    for index in range(samples + 2):
        start = time.perf_counter()
        answer = session.get(url, timeout=30, headers={"Accept": "text/html", **(headers or {})})
        elapsed = (time.perf_counter() - start) * 1000
        if answer.status_code != 200:
            raise RuntimeError(f"{url} answered {answer.status_code}")
        first = elapsed if first is None else first
        if index >= 2:  # the first two warm the page cache and the templates
            times.append(elapsed)
    return percentile(times, 0.95), first


def _download_ms(session: requests.Session, url: str, samples: int, headers=None):
    """(p95 to the first bytes, median of the whole file) for a streamed CSV, in ms."""
    first, whole = [], []
    for index in range(samples + 2):
        start = time.perf_counter()
        with session.get(url, timeout=60, headers=headers, stream=True) as answer:
            if answer.status_code != 200:
                raise RuntimeError(f"{url} answered {answer.status_code}")
            chunks = answer.iter_content(chunk_size=65536)
            next(chunks)
            first_bytes = (time.perf_counter() - start) * 1000
            for _ in chunks:
                pass
        if index >= 2:
            first.append(first_bytes)
            whole.append((time.perf_counter() - start) * 1000)
    return percentile(first, 0.95), percentile(whole, 0.5)


def measure(url: str, reporting: dict, samples: int, label: str,
            site: str = "Northgate+Dental", first_requests: bool = False) -> list[dict]:
    """Every page and API call of a running store, logged in as "bench": one row each,
    ``{number}. {name}, p95 ({label})`` beside ``/healthz``'s p95 (figures 6 and 13).
    ``first_requests``: each page's and API call's first request too, for information (the
    p95 leaves out two warm-up requests; the first one pays for the caches a page fills)."""
    number, _, size = label.partition(" ")
    with requests.Session() as session:
        _login(session, url)
        baseline, _ = _p95_ms(session, url + "/healthz", samples)
        result = []
        firsts = []

        def add(name: str, value: float) -> None:
            result.append(row(f"{number} {name}, p95 ({size})", round(value, 1), "ms",
                              round(baseline, 1), f"< {TARGET_MS:.0f} ms", value < TARGET_MS))

        def add_request(name: str, measured: tuple[float, float]) -> None:
            value, first = measured
            add(name, value)
            firsts.append(row(f"{number} {name}, first request ({size})", round(first, 1), "ms",
                              round(baseline, 1), "(information)", None))

        for name, path in _requests():
            add_request(name, _p95_ms(session, url + path.replace("Northgate+Dental", site),
                                      samples))
        for name, path in _api_requests():
            path = path.replace("Northgate+Dental", site)
            add_request(name, _p95_ms(session, url + path, samples, reporting))
        for name, path in _downloads():
            headers = reporting if path.startswith("/api/") else None
            first, whole = _download_ms(session, url + path, samples // 4, headers)
            add(f"{name}, first bytes", first)
            result.append(row(f"{number} {name}, whole file, median ({size})",
                              round(whole, 1), "ms", round(baseline, 1), "(information)", None))
        return result + (firsts if first_requests else [])


def run(quick: bool) -> list[dict]:
    rows = 100_000 if quick else 1_000_000
    samples = 20 if quick else 40
    reuse = os.environ.get("DASHBOARD_BENCH_DATA")
    with scratch_dir("dashboard") as scratch:
        data_dir = Path(reuse) if reuse else scratch
        reporting = {"Authorization": f"Bearer {_fill(data_dir, rows)}"}
        with central_process(data_dir) as central:
            return measure(central.url, reporting, samples, f"6. {rows:,} visits + ratings")


if __name__ == "__main__":
    import sys

    for line in run("--quick" in sys.argv):
        print(line)
