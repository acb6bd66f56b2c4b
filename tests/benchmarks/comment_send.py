"""Figure 9: the Send tap of the comment box, a full 500-character comment, to its durable commit.

The kiosk side is the real thing: ``RatingFlow`` over a ``Store`` on disk (WAL,
``synchronous=FULL``); the comment is typed key by key (not timed), then Send is timed: the
redaction (``kiosk.shared.redaction``: the patterns and libphonenumber over 500 characters,
with a phone number, a date and an e-mail address in it, typed as the kiosk's keyboard can:
no "/" or "@" on it) and the event's durable commit. The
baseline is the least any durable write of that event can cost: one plain ``sqlite3`` INSERT +
COMMIT of a row of the same JSON size into a table built from the kiosk's own ``events`` DDL,
on the same disk, interleaved tap by tap. The redaction alone is reported beside it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

from kiosk.comment_box import SPACE
from kiosk.config import load_settings
from kiosk.rating_flow import RatingFlow
from kiosk.shared.redaction import redact
from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.shared.wire import MAX_COMMENT_CHARS
from kiosk.store import Store
from tests.benchmarks.common import median, percentile, row, scratch_dir

TARGET_RATIO = 3.0
SENTENCE = ("the wait was long, call 07700 900123 or write to a.b at example dot org, "
            "seen on 12.03.2026 at the desk ")
COMMENT = (SENTENCE * 10)[:MAX_COMMENT_CHARS]


def run(quick: bool) -> list[dict]:
    sends = 100 if quick else 500
    warmup = 5
    with scratch_dir("comment") as folder:
        settings = load_settings(environ={}, data_dir=folder / "kiosk", role="ratings",
                                 survey="fft", comments=True, followup_for="never",
                                 misuse_interval_s=0)
        store = Store(settings.database_path)
        flow = RatingFlow(store, settings)
        ddl = [sql for (sql,) in store.db.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL")]
        raw = sqlite3.connect(str(folder / "raw.sqlite"), isolation_level=None)
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("PRAGMA synchronous = FULL")
        for statement in ddl:
            raw.execute(statement)
        data = json.dumps({"score": 2, "scale": 5, "tags": [], "misuse": False,
                           "comment": redact(COMMENT)})
        send_ms, raw_ms, redact_ms = [], [], []
        for attempt in range(warmup + sends):
            flow.start()
            flow.choose(2)
            for character in COMMENT:
                flow.press_key(SPACE if character == " " else character)
            began = time.perf_counter()
            flow.send_comment()
            sent = (time.perf_counter() - began) * 1000
            began = time.perf_counter()
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(
                "INSERT INTO events(id, device_seq, type, occurred_at, visit_id, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [str(uuid.uuid4()), attempt + 1, "rating.submitted", to_rfc3339(utc_now()),
                 None, data])
            raw.execute("COMMIT")
            plain = (time.perf_counter() - began) * 1000
            began = time.perf_counter()
            redact(COMMENT)
            only_redaction = (time.perf_counter() - began) * 1000
            if attempt >= warmup:
                send_ms.append(sent)
                raw_ms.append(plain)
                redact_ms.append(only_redaction)
        saved = flow.last_saved
        if saved is None or any(detail in saved.data.get("comment", "07700")
                                for detail in ("07700", "example", "2026")):
            raise RuntimeError("the comment was not saved redacted")
        raw.close()
        store.close()
    rows = []
    for label, stat in (("median", median), ("p99", lambda s: percentile(s, 0.99))):
        value, baseline = stat(send_ms), stat(raw_ms)
        rows.append(row(
            f"9. comment box Send tap to durable commit, 500 characters, {label} ({sends} sends)",
            value, "ms", baseline, f"ratio <= {TARGET_RATIO}", value / baseline <= TARGET_RATIO))
    rows.append(row(f"9. redaction of a 500-character comment alone, median ({sends})",
                    median(redact_ms), "ms", median(raw_ms), "(shown beside the commit)", None))
    return rows
