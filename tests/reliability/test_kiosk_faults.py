"""The kiosk's own faults: a corrupt database at start, a full disk, a bad config file, and a
clock hours off. Each through the path a real kiosk takes: the launcher's start-up in a process
of its own, a real tmpfs that runs out of space, ``main.py kiosk --config``, the real sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.config import load_settings
from kiosk.desk import FrontDesk
from kiosk.flow import KioskFlow
from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.store import Store, StoreFull
from sync.central import cli
from sync.client import SyncClient
from tests.reliability import figures
from tests.reliability.helpers import ROOT
from tests.support.clock import FakeClock

START_KIOSK = """
import json, sys
from kiosk.config import load_settings
from kiosk.launcher import build_kiosk
from tests.support.hashing import fast_hasher
settings = load_settings(environ={}, data_dir=sys.argv[1])
app = build_kiosk(settings, hasher=fast_hasher())
notice = app.flow.banner()
event = app.flow.store.record("device.heartbeat", {"backlog": 0, "version": "1"})
print(json.dumps({"notice": notice.text if notice else None, "seq": event.device_seq,
                  "screen": app.flow.screen()}))
"""


def _start_kiosk(data_dir: Path) -> dict:
    """The launcher's start-up (settings, store, flow, app; no window) in a new process."""
    (data_dir / "kivy-home").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1", "KIVY_NO_FILELOG": "1",
           "KIVY_HOME": str(data_dir / "kivy-home")}
    run = subprocess.run([sys.executable, "-c", START_KIOSK, str(data_dir)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


DAMAGE = {
    "garbage": lambda raw: b"this is not a database" * 200,
    "truncated": lambda raw: raw[: len(raw) // 3],
    "zeroed header": lambda raw: b"\0" * 100 + raw[100:],
    "scribbled page": lambda raw: raw[:8192] + b"\xa5" * 4096 + raw[12288:],
}


def test_a_corrupt_database_is_moved_aside_once_and_the_kiosk_starts_clean(tmp_path):
    data_dir = tmp_path / "kiosk"
    first = _start_kiosk(data_dir)
    assert first["notice"] is None and first["seq"] == 1
    database = data_dir / "kiosk.sqlite"
    for damage in DAMAGE.values():
        store = Store(database)
        for _ in range(150):
            store.record("rating.submitted", {"score": 3, "scale": 5, "tags": [], "misuse": False})
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        database.write_bytes(damage(database.read_bytes()))

        started = _start_kiosk(data_dir)
        assert "damaged" in started["notice"] and "moved aside" in started["notice"]
        assert started["seq"] == 1  # a clean database, working
        again = _start_kiosk(data_dir)  # and no crash loop: the next start is an ordinary one
        assert again["notice"] is None and again["seq"] == 2
    assert len(_kept(data_dir)) == len(DAMAGE)


def _kept(data_dir: Path) -> list[Path]:
    return [path for path in data_dir.glob("kiosk.sqlite.corrupt-*")
            if not path.name.endswith(("-wal", "-shm"))]


def test_each_damaged_file_is_kept_even_several_within_one_second(tmp_path):
    database = tmp_path / "kiosk.sqlite"
    for n in range(3):
        database.write_bytes(f"damaged copy {n} ".encode() * 300)
        Store(database).close()
    kept = _kept(tmp_path)
    assert sorted(path.read_bytes()[:14] for path in kept) == [
        b"damaged copy 0", b"damaged copy 1", b"damaged copy 2"]


@contextmanager
def _tiny_disk(where: Path, size: str = "2m"):
    """A real tmpfs of ``size`` (needs root); None where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True).returncode == 0
    try:
        yield where if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path, leave_bytes: int) -> Path:
    """Take the disk's free space, all but ``leave_bytes`` (unbuffered: no pending write)."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(descriptor, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(descriptor)
    os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler


def test_a_full_disk_is_a_clear_message_and_loses_no_acknowledged_event(tmp_path):
    with _tiny_disk(tmp_path / "disk") as disk:
        settings = load_settings(environ={}, data_dir=str(disk or tmp_path / "fallback"),
                                 followup_for="never", misuse_interval_s=0)
        store = Store(settings.database_path)
        flow = KioskFlow(store, settings)
        desk = FrontDesk(store, settings)
        acknowledged = [store.record("device.heartbeat", {"backlog": 0, "version": "1"}).id]
        if disk is not None:
            filler = _fill(disk, leave_bytes=256 * 1024)
            how = "tmpfs"
        else:  # not root: the same SQLite error path, from a file that may not grow
            pages = store.db.execute("PRAGMA page_count").fetchone()[0]
            store.db.execute(f"PRAGMA max_page_count = {pages + 8}")
            how = "max_page_count"
        store.on_record(lambda event: acknowledged.append(event.id))
        with pytest.raises(StoreFull) as refused:
            for _ in range(100_000):
                visit = desk.check_in()
                desk.call_in(visit["id"])
                desk.check_out(visit["id"])
        message = str(refused.value)
        assert "disk is full" in message and "not saved" in message and "safe" in message
        with pytest.raises(StoreFull):
            flow.check_in()  # what the staff screen calls; the app shows str(error) in the banner
        if disk is not None:
            filler.unlink()
        else:
            store.db.execute("PRAGMA max_page_count = 1073741823")
        store.record("device.heartbeat", {"backlog": 0, "version": "1"})  # works again
        store.close()
        reopened = Store(settings.database_path)
        try:
            assert reopened.recovered_from is None
            assert reopened.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            on_disk = {event["id"] for event in reopened.events()}
            assert set(acknowledged) <= on_disk
        finally:
            reopened.close()
    figures.record("full_disk", title="A full disk under a working desk",
                   figures={"how": how, "acknowledged_events_checked": len(acknowledged)})


BAD_CONFIGS = {
    "unknown key": ('colour = "red"\n', "colour"),
    "wrong type": ("target_wait_min = \"soon\"\n", "target_wait_min"),
    "out of range": ("rating_scale = 7\n", "rating_scale"),
    "bad TOML": ("role = desk\n", "line 1"),
}


def test_a_bad_config_file_names_the_key_at_fault(tmp_path):
    for name, (text, named) in BAD_CONFIGS.items():
        config = tmp_path / f"{name.replace(' ', '-')}.toml"
        config.write_text(text)
        run = subprocess.run([sys.executable, "main.py", "kiosk", "--config", str(config),
                              "--data", str(tmp_path / "data")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, (name, run.stderr[-500:])
        assert named in run.stderr, (name, run.stderr[-500:])
        assert "Traceback" not in run.stderr


@pytest.mark.parametrize("hours", [-3, 3])
def test_a_kiosk_clock_hours_off_is_flagged_and_its_waits_stay_right(tmp_path, central_server,
                                                                     hours, capsys):
    device = central_server.add_device()
    reader = central_server.add_reporting_token()
    true_now = utc_now()
    clock = FakeClock(true_now + timedelta(hours=hours))  # the kiosk's wrong clock
    settings = load_settings(environ={}, data_dir=str(tmp_path / "kiosk"))
    store = Store(settings.database_path, clock=clock)
    desk = FrontDesk(store, settings, clock)
    clock.advance(minutes=-40)
    seen = desk.check_in()
    clock.advance(minutes=12)
    desk.call_in(seen["id"])  # waited 12 minutes, by the kiosk's own clock
    clock.advance(minutes=23)
    desk.check_in()  # still waiting: 5 minutes so far
    clock.advance(minutes=5)
    store.record("device.heartbeat", {"backlog": 0, "version": "1"})
    client = SyncClient(store, central_server.base_url, device.token)
    assert client.sync_once().stored == 4
    client.close()
    store.close()

    assert cli.main(["device", "list", *central_server.store_args()]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert abs(listed["clock_skew_s"] + hours * 3600) < 60  # flagged: hours off, and which way
    window = {"from": to_rfc3339(true_now - timedelta(hours=5)),
              "to": to_rfc3339(true_now + timedelta(hours=5))}
    figures_now = central_server.metrics(reader, **window).json()
    assert figures_now["wait_median_min"] == 12.0
    assert 4.5 <= figures_now["longest_current_wait_min"] <= 6.0, figures_now
    suspect = central_server.rows("SELECT COUNT(*) AS n FROM events WHERE clock_suspect = 1")
    assert suspect == [{"n": 4 if hours > 0 else 0}]  # ahead: each event flagged on arrival


