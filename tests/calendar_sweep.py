"""The calendar sweep: the clock-sensitive tests, run again at fixed instants of the calendar.

A test that computes its expectations from a calendar instead of from the data it made passes
on the day it was written and fails CI on another. This runs the tests that read the clock
(dashboard, central metrics and projections, the kiosk's model, flow and store, demo data) in a
child pytest whose whole process tree sees a moved clock (``tests/support/moved_clock.py``:
time-machine in the test process, libfaketime for Chromium and the commands a test runs), and
whose local zone is the instant's zone. The instants: every weekday of one week (Monday,
Wednesday and Friday at 00:05, Tuesday, Thursday and Saturday at 23:55, Sunday at both), the
day before and the day after each daylight-saving change of Europe/London and America/New_York
(and 00:30 on the day London springs forward), 31 December 23:59 and 29 February. The browser
tests run at two of them (a Sunday, where a week ends, and the morning after London springs
forward, when London's date is ahead of UTC's), the rest everywhere.

``python3 main.py sweep`` runs it alone; ``python3 main.py test`` runs it after the suite.
Extra arguments are labels (or parts of labels) to run only those instants.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.support.moved_clock import LIBFAKETIME

ROOT = Path(__file__).resolve().parent.parent
LONDON, NEW_YORK = "Europe/London", "America/New_York"

# The tests that read the clock, directly or through the product. Browser tests are marked.
# The dashboard's tests of people and of the page language read no calendar (their clocks are
# pinned where they read one): they are left out to keep the sweep short. So are the replica
# tests: they compare what the replica serves with what the primary holds, whatever the
# date, and each instant would start a PostgreSQL cluster and a replica for them (20 s).
CALENDAR_FREE = {"test_people_pages.py", "test_dashboard_language.py", "test_replica_reads.py"}
CLOCK_SENSITIVE = [
    *sorted(path for path in glob.glob("tests/dashboard/test_*.py", root_dir=ROOT)
            if Path(path).name not in CALENDAR_FREE),
    "tests/central/test_metrics_api.py",
    "tests/central/test_projections.py",
    "tests/test_model.py",
    "tests/test_flow.py",
    "tests/test_metrics.py",
    "tests/test_presenter.py",
    "tests/test_site_settings.py",
    "tests/test_store.py",
]
WORKERS = 2  # the machine's cores
CHILD_TIMEOUT_S = 300


@dataclass(frozen=True)
class Instant:
    label: str
    zone: str
    local: datetime  # wall-clock time in ``zone``
    browser: bool = False

    @property
    def utc(self) -> datetime:
        return self.local.replace(tzinfo=ZoneInfo(self.zone)).astimezone(UTC)


def _instants() -> list[Instant]:
    week = []
    for offset in range(7):  # Monday 30 November to Sunday 6 December 2026
        date = datetime(2026, 11, 30) + timedelta(days=offset)
        name = date.strftime("%a")
        # Each weekday once, the minutes after midnight and before it in turn (a day just
        # begun, a day about to end); Sunday, where a week ends, at both.
        if offset % 2 == 0 or name == "Sun":
            week.append(Instant(f"{name}-00:05", LONDON, date.replace(hour=0, minute=5),
                                browser=name == "Sun"))
        if offset % 2 == 1 or name == "Sun":
            week.append(Instant(f"{name}-23:55", LONDON, date.replace(hour=23, minute=55)))
    changes = [  # zone, name, the day its clocks change
        (LONDON, "london-spring", datetime(2026, 3, 29)),
        (LONDON, "london-autumn", datetime(2026, 10, 25)),
        (NEW_YORK, "newyork-spring", datetime(2026, 3, 8)),
        (NEW_YORK, "newyork-autumn", datetime(2026, 11, 1)),
    ]
    dst = []
    for zone, name, day in changes:
        before, after = day - timedelta(days=1), day + timedelta(days=1)
        dst.append(Instant(f"{name}-eve-23:55", zone, before.replace(hour=23, minute=55)))
        if name == "london-spring":
            # 00:30 on the change day: "today" is 23 hours long and has not changed yet.
            dst.append(Instant(f"{name}-day-00:30", zone, day.replace(minute=30)))
        # The browser tests run the morning after London springs forward (one daylight-saving
        # instant is enough for their cost): yesterday was 23 hours long, and London's date
        # is a day ahead of UTC's, so a site left in UTC is on another day than the others.
        dst.append(Instant(f"{name}-after-00:05", zone, after.replace(minute=5),
                           browser=name == "london-spring"))
    ends = [
        Instant("new-year-eve-23:59", LONDON, datetime(2026, 12, 31, 23, 59)),
        Instant("leap-day-12:00", LONDON, datetime(2028, 2, 29, 12, 0)),
    ]
    return week + dst + ends


INSTANTS = _instants()


@dataclass
class Outcome:
    instant: Instant
    passed: int
    failed: list[str]
    seconds: float
    output: str


def _junit_counts(report: Path) -> tuple[int, list[str]]:
    passed, failed = 0, []
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is None:
            passed += 1
    return passed, failed


def run_instant(instant: Instant, python: str, scratch: Path) -> Outcome:
    """One child pytest over the clock-sensitive tests, its clock at ``instant``."""
    report = scratch / f"{instant.label}.xml"
    args = [
        python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-p", "tests.support.moved_clock", "--clock-at", f"{instant.utc:%Y-%m-%dT%H:%M:%SZ}",
        "--basetemp", str(scratch / instant.label), "--junitxml", str(report),
        # The clock is the product's, in Python, on either engine: the sweep runs SQLite's.
        "--central-engines", "sqlite",
        *CLOCK_SENSITIVE,
    ]
    # Tests marked calendar_free read no date or hour: the sweep would only repeat them.
    args += ["-m", "not calendar_free" if instant.browser else "not browser and not calendar_free"]
    env = {**os.environ, "TZ": instant.zone}
    started = time.monotonic()
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=CHILD_TIMEOUT_S)
    seconds = time.monotonic() - started
    if report.exists():
        passed, failed = _junit_counts(report)
    else:
        passed, failed = 0, ["(pytest did not run)"]
    if run.returncode not in (0, 1) and not failed:
        failed = [f"(pytest exited {run.returncode})"]
    return Outcome(instant, passed, failed, seconds, run.stdout[-3000:] + run.stderr[-2000:])


def main(argv: list[str]) -> int:
    if not glob.glob(LIBFAKETIME):
        print("sweep: faketime is not installed (apt-get install faketime); "
              "python3 main.py test installs it", file=sys.stderr)
        return 2
    chosen = [i for i in INSTANTS if not argv or any(a in i.label for a in argv)]
    if not chosen:
        print(f"sweep: no instant matches {argv}; the labels are "
              f"{', '.join(i.label for i in INSTANTS)}", file=sys.stderr)
        return 2
    print(f"Calendar sweep: {len(chosen)} instants x the clock-sensitive tests "
          f"(browser tests at {sum(i.browser for i in chosen)} of them)", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="calendar-sweep-") as name, \
            ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(run_instant, i, sys.executable, Path(name)) for i in chosen]
        outcomes = []
        for future in futures:
            outcome = future.result()
            outcomes.append(outcome)
            i = outcome.instant
            verdict = "ok" if not outcome.failed else f"FAILED {len(outcome.failed)}"
            print(f"  {i.label:<30} {i.local:%a %Y-%m-%d %H:%M} {i.zone:<17} "
                  f"{'+browser' if i.browser else '        '} {outcome.passed:>4} passed "
                  f"{outcome.seconds:5.1f} s  {verdict}", flush=True)
            for test in outcome.failed:
                print(f"      {test}")
    failures = [o for o in outcomes if o.failed]
    for outcome in failures[:3]:
        print(f"\n--- {outcome.instant.label} ---\n{outcome.output}")
    passed = sum(o.passed for o in outcomes)
    failed = sum(len(o.failed) for o in outcomes)
    print(f"Calendar sweep took {time.monotonic() - started:.0f} s")
    print(f"sweep: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
