"""A write that returned is on disk: SIGKILL the writer, then find every acknowledged tap."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from kiosk.store import Store

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent(
    """
    import sys
    from kiosk.config import load_settings
    from kiosk.rating_flow import RatingFlow
    from kiosk.store import Store

    settings = load_settings(environ={}, data_dir=sys.argv[1], role="ratings", thanks_s=1,
                             followup_for="never")
    store = Store(settings.database_path)
    flow = RatingFlow(store, settings)
    while True:
        flow.start()
        flow.choose(4)
        print(flow.last_saved.id, flush=True)
    """
)


def test_a_rating_reported_committed_survives_sigkill(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    acknowledged = []
    try:
        for _ in range(25):
            acknowledged.append(child.stdout.readline().strip())
        os.kill(child.pid, signal.SIGKILL)
        acknowledged.append(child.stdout.readline().strip())  # one that may have raced the kill
    finally:
        child.kill()
        child.wait()
    acknowledged = [line for line in acknowledged if line]
    store = Store(tmp_path / "kiosk.sqlite")
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    on_disk = {row["id"] for row in store.ratings_between("2000", "3000")}
    assert set(acknowledged) <= on_disk
    events = [e["device_seq"] for e in store.events()]
    assert events == list(range(1, len(events) + 1))  # gapless
    store.close()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from kiosk.config import load_settings
    from kiosk.rating_flow import RatingFlow
    from kiosk.store import Store

    settings = load_settings(environ={}, data_dir=sys.argv[1], role="ratings",
                             followup_for="negative")
    flow = RatingFlow(Store(settings.database_path), settings)
    flow.start()
    flow.choose(1)
    flow.toggle_tag("waiting_time")
    print("held", flush=True)
    time.sleep(60)  # the patient is still choosing tags when the power goes
    """
)


def test_a_face_pressed_before_its_follow_up_survives_sigkill(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert child.stdout.readline().strip() == "held"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    store = Store(tmp_path / "kiosk.sqlite")
    try:
        rows = store.ratings_between("2000", "3000")
        assert [(row["score"], row["tags"]) for row in rows] == [(1, "[]")]
        assert store.recovered_rating is not None and store.recovered_rating.id == rows[0]["id"]
    finally:
        store.close()
