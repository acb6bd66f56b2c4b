"""The dashboard's two commands as an operator runs them: `user add --password-stdin` (an
Argon2id hash, never the password) and `demo-data` (the story it promises: busy mornings, a
slow Tuesday, a desk that runs late and is rated lower)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from statistics import mean

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


# Three commands with real Argon2id (2 s) and no date read: the sweep would only repeat them.
@pytest.mark.calendar_free
def test_user_add_stores_an_argon2id_hash_and_sets_a_new_password_for_a_known_name(tmp_path):
    first = run("user", "add", "--data", str(tmp_path), "--name", "manager", "--password-stdin",
                stdin="correct horse battery\n")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["user"] == "manager"
    database = tmp_path / "central.sqlite3"
    (stored,) = sqlite3.connect(database).execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    again = run("user", "add", "--data", str(tmp_path), "--name", "manager", "--password-stdin",
                stdin="a different one 42\n")
    rows = sqlite3.connect(database).execute("SELECT password_hash FROM users").fetchall()
    assert again.returncode == 0 and len(rows) == 1 and rows[0][0] != stored
    short = run("user", "add", "--data", str(tmp_path), "--name", "x", "--password-stdin",
                stdin="short\n")
    assert short.returncode == 2 and "Traceback" not in short.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> sqlite3.Connection:
    folder = tmp_path_factory.mktemp("demo")
    made = run("demo-data", "--data", str(folder), "--days", "28")
    assert made.returncode == 0, made.stderr
    return sqlite3.connect(folder / "central.sqlite3")


def _local(instant: str, zone: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))


def test_demo_data_has_busy_mornings_and_a_slow_tuesday(demo):
    zones = dict(demo.execute("SELECT name, timezone FROM sites"))
    per_weekday, per_hour = defaultdict(int), defaultdict(int)
    for site, checked_in in demo.execute("SELECT site, checked_in_at FROM visits"):
        local = _local(checked_in, zones[site])
        per_weekday[local.weekday()] += 1
        per_hour[local.hour] += 1
    other_weekdays = mean(per_weekday[day] for day in (0, 2, 3, 4))
    assert per_weekday[1] < 0.75 * other_weekdays  # Tuesday
    assert per_hour[9] + per_hour[10] > 1.3 * (per_hour[14] + per_hour[15])


def test_demo_data_has_a_desk_that_runs_late_and_is_rated_lower(demo):
    figures = {}
    for name, wait, score in demo.execute(
        "SELECT d.name, AVG(v.wait_min), (SELECT AVG(r.score) FROM ratings r "
        " WHERE r.device_id = d.id AND r.misuse = 0) "
        "FROM devices d JOIN visits v ON v.device_id = d.id "
        "WHERE d.site = 'Northgate Dental' GROUP BY d.id"
    ):
        figures[name] = (wait, score)
    assert figures["desk-2"][0] > 1.5 * figures["desk-1"][0]
    assert figures["desk-2"][1] < figures["desk-1"][1] - 0.3
