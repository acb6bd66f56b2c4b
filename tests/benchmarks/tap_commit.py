"""Figure 1: a patient's rating with a follow-up tag, each tap to its durable commit.

The kiosk side is the real thing: ``RatingFlow`` over a ``Store`` on disk (WAL,
``synchronous=FULL``). A rating with a follow-up is two taps, each one durable commit: the face
(start -> choose(1): the face is held on disk while the follow-up is open) and the send
(toggle_tag -> send_followup: the event and its projection). Each is timed beside the least any
durable write of that event can cost: one plain ``sqlite3`` INSERT + COMMIT of a row with the
same columns and JSON size, into a table created from the kiosk's own ``events`` DDL (same
indexes), with the same pragmas, on the same disk. Kiosk and raw writes are interleaved tap by
tap so a slow patch of the disk hits both alike.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

from kiosk.config import load_settings
from kiosk.rating_flow import RatingFlow
from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.store import Store
from tests.benchmarks.common import median, percentile, row, scratch_dir

TARGET_RATIO = 1.5
TAG = "waiting_time"


def _raw_connection(path, events_ddl: list[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for statement in events_ddl:
        conn.execute(statement)
    return conn


def _raw_insert(conn: sqlite3.Connection, seq: int, data: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO events(id, device_seq, type, occurred_at, visit_id, data) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [str(uuid.uuid4()), seq, "rating.submitted", to_rfc3339(utc_now()), None, data],
    )
    conn.execute("COMMIT")


def run(quick: bool) -> list[dict]:
    taps = 500 if quick else 3000
    warmup = 20
    with scratch_dir("tap") as folder:
        settings = load_settings(environ={}, data_dir=folder / "kiosk")
        store = Store(settings.database_path)
        flow = RatingFlow(store, settings)
        ddl = [
            sql for (sql,) in store.db.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL"
            )
        ]
        raw = _raw_connection(folder / "raw.sqlite", ddl)
        # The same JSON the kiosk writes for this rating, so both rows weigh the same.
        data = json.dumps({"score": 1, "scale": settings.rating_scale, "tags": [TAG],
                           "misuse": False})
        face_times: list[float] = []
        send_times: list[float] = []
        raw_times: list[float] = []
        seq = 0

        def raw_tap() -> float:
            nonlocal seq
            seq += 1
            began = time.perf_counter()
            _raw_insert(raw, seq, data)
            return (time.perf_counter() - began) * 1000

        for tap in range(warmup + taps):
            began = time.perf_counter()
            flow.start()
            flow.choose(1)
            face_ms = (time.perf_counter() - began) * 1000
            first_raw_ms = raw_tap()

            began = time.perf_counter()
            flow.toggle_tag(TAG)
            flow.send_followup()
            send_ms = (time.perf_counter() - began) * 1000
            second_raw_ms = raw_tap()
            if tap >= warmup:
                face_times.append(face_ms)
                send_times.append(send_ms)
                raw_times += [first_raw_ms, second_raw_ms]
        if flow.last_saved is None or flow.last_saved.data["tags"] != [TAG]:
            raise RuntimeError("the rating flow did not save the follow-up tag it was given")
        raw.close()
        store.close()

    rows = []
    for tap, times in (("face tap", face_times), ("send tap", send_times)):
        for label, stat in (("median", median), ("p99", lambda s: percentile(s, 0.99))):
            value, baseline = stat(times), stat(raw_times)
            rows.append(row(
                f"1. tap to durable commit, {tap} of a rating with follow-up, {label} "
                f"({taps} ratings)", value, "ms", baseline,
                f"ratio <= {TARGET_RATIO}", value / baseline <= TARGET_RATIO,
            ))
    return rows
