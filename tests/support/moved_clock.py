"""A pytest plugin that runs a whole session with the wall clock moved to one instant.

``pytest -p tests.support.moved_clock --clock-at 2026-12-01T23:55:00Z`` is how the calendar
sweep (``tests/calendar_sweep.py``) runs each of its instants. In this process time-machine
moves ``datetime``, ``date`` and ``time.time`` to the instant, and the clock ticks on from
there; the monotonic clock is left alone, so timeouts, sleeps and waits behave as always.
Child processes (Chromium, the commands a test runs) get the same offset from libfaketime
through ``LD_PRELOAD``. libfaketime is not used in this process: under it Python 3.11 cannot
sleep (EINVAL from ``clock_nanosleep``) or wait with a timeout (``sem_clockwait`` never
returns), so the server's and the sync loop's threads would hang. What reads the clock in C
inside this process (OpenSSL checking a certificate's dates, SQLite's 'now') still sees the real
one: the product reads its clock in Python only, so the sweep's tests see one moved clock.
"""

from __future__ import annotations

import glob
import os
import time
from datetime import datetime

import pytest
import time_machine

LIBFAKETIME = "/usr/lib/*/faketime/libfaketime.so.1"
_travel: time_machine.travel | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-at",
        metavar="INSTANT",
        help="run the session with the wall clock at this RFC 3339 instant (ticking on)",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _travel
    at = config.getoption("clock_at")
    if not at:
        return
    try:
        instant = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise pytest.UsageError(f"--clock-at {at!r} is not an RFC 3339 instant") from None
    if instant.tzinfo is None:
        raise pytest.UsageError(f"--clock-at {at!r} needs a UTC offset (Z or +01:00)")
    libraries = glob.glob(LIBFAKETIME)
    if not libraries:
        raise pytest.UsageError("--clock-at needs libfaketime for child processes "
                                "(apt-get install faketime)")
    offset_s = instant.timestamp() - time.time()
    _travel = time_machine.travel(instant, tick=True)
    _travel.start()
    # Children started from here on see the same moved clock: a fixed offset from the real one.
    preload = os.environ.get("LD_PRELOAD", "")
    os.environ["LD_PRELOAD"] = f"{libraries[0]} {preload}".strip()
    os.environ["FAKETIME"] = f"{offset_s:+.0f}"


def pytest_unconfigure(config: pytest.Config) -> None:
    global _travel
    if _travel is not None:
        _travel.stop()
        _travel = None


def pytest_report_header(config: pytest.Config) -> str | None:
    at = config.getoption("clock_at")
    return f"wall clock moved to {at} (time-machine; libfaketime for children)" if at else None
