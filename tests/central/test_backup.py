"""Backups of the central store: `main.py backup` / `restore` as an operator runs them, against
a real central server that kiosks keep posting to, and the daily backup a running store makes.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from sync.central.backup import BackupFailed, backup_name, check_backup, engine_for
from sync.central.backup_schedule import DailyBackups, backups_in
from sync.central.migrations import SCHEMA_VERSION
from sync.central.storage import CentralStore, database_path
from tests.support.central_server import running_central
from tests.support.clock import FakeClock
from tests.support.waiting import wait_until
from tests.support.wire_events import WireEvents

ROOT = Path(__file__).resolve().parents[2]


def main_py(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


class Pusher:
    """A kiosk posting visits as fast as the server answers, counting what was stored."""

    def __init__(self, server):
        self.server = server
        self.device = server.add_device()
        self.events = WireEvents()
        self.stored = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        minute = 0
        while not self._stop.is_set():
            batch = []
            for _ in range(10):
                minute += 1
                batch += self.events.visit(minute, minute + 5, minute + 20)[1]
            reply = self.server.post_events(self.device, batch)
            reply.raise_for_status()
            self.stored += sum(r["status"] == "stored" for r in reply.json()["results"])

    def __enter__(self) -> Pusher:
        self._thread.start()
        wait_until(lambda: self.stored >= 300, what="the first batches to be stored")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def test_backup_and_restore_while_a_kiosk_keeps_posting(tmp_path):
    backup_file = tmp_path / "central-backup.sqlite3"
    with running_central(tmp_path / "live") as server, Pusher(server) as pusher:
        stored_before = pusher.stored
        made = main_py("backup", "--data", str(server.data_dir), "--to", str(backup_file))
        stored_after = pusher.stored
        assert made.returncode == 0, made.stderr
        report = json.loads(made.stdout)
        # A consistent snapshot from the middle of the stream, checked before "done".
        assert report["integrity"] == "ok" and report["engine"] == "sqlite"
        assert stored_before <= report["counts"]["events"] <= stored_after + 30
        assert report["counts"]["visits"] * 3 == report["counts"]["events"]

        # Restored into a fresh folder while the live store keeps taking batches.
        restored_dir = tmp_path / "restored"
        put_back = main_py("restore", "--from", str(backup_file), "--data", str(restored_dir))
        assert put_back.returncode == 0, put_back.stderr
        assert json.loads(put_back.stdout)["counts"] == report["counts"]
        assert pusher.stored > report["counts"]["events"]  # ingest went on meanwhile

    # The restored store serves: a server over it holds exactly the backup's events.
    with running_central(restored_dir) as restored:
        assert restored.rows("SELECT COUNT(*) AS n FROM events")[0]["n"] == (
            report["counts"]["events"]
        )
        assert restored.rows("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
        # ... and takes new events on from there.
        later = restored.add_device(name="Desk 2")
        reply = restored.post_events(later, WireEvents().visit(1, 2, 3)[1])
        assert [r["status"] for r in reply.json()["results"]] == ["stored"] * 3


def test_restore_over_an_existing_store_needs_force_and_keeps_the_old_one(tmp_path):
    live, backup_file = tmp_path / "live", tmp_path / "b.sqlite3"
    with running_central(live) as server:
        device = server.add_device()
        events = WireEvents()
        server.post_events(device, events.visit(1, 2, 3)[1])
    engine_for(live).backup(backup_file)
    with running_central(live) as server:  # more data after the backup
        server.post_events(device, events.visit(10, 12, 30)[1])

    refused = main_py("restore", "--from", str(backup_file), "--data", str(live))
    assert refused.returncode == 2
    assert "already holds a central store" in refused.stderr and "--force" in refused.stderr
    assert check_backup(database_path(live), live=True).counts["events"] == 6  # untouched

    forced = main_py("restore", "--from", str(backup_file), "--data", str(live), "--force")
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["counts"]["events"] == 3
    kept = Path(report["previous_store_kept_at"])
    assert kept.parent == live and check_backup(kept, live=True).counts["events"] == 6


def test_bad_backups_and_bad_paths_are_refused_with_a_sentence(tmp_path):
    store_dir = tmp_path / "store"
    CentralStore(store_dir).close()
    target = tmp_path / "b.sqlite3"
    assert main_py("backup", "--data", str(store_dir), "--to", str(target)).returncode == 0

    again = main_py("backup", "--data", str(store_dir), "--to", str(target))
    assert again.returncode == 2 and "already exists" in again.stderr
    nowhere = main_py("backup", "--data", str(store_dir), "--to", str(tmp_path / "no/b.sqlite3"))
    assert nowhere.returncode == 2 and "there is no folder" in nowhere.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    no_store = main_py("backup", "--data", str(empty), "--to", str(tmp_path / "c.sqlite3"))
    assert no_store.returncode == 2 and "there is no central store in" in no_store.stderr

    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(os.urandom(8192))
    not_sqlite = main_py("restore", "--from", str(garbage), "--data", str(tmp_path / "r1"))
    assert not_sqlite.returncode == 2 and "is not a readable SQLite database" in not_sqlite.stderr
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE notes (text TEXT)").connection.commit()
    wrong = main_py("restore", "--from", str(other), "--data", str(tmp_path / "r2"))
    assert wrong.returncode == 2 and "is not a central store backup" in wrong.stderr
    missing = main_py("restore", "--from", str(tmp_path / "none.sqlite3"), "--data", str(empty))
    assert missing.returncode == 2 and "there is no backup file" in missing.stderr
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_a_backup_from_a_newer_program_is_refused(tmp_path):
    store_dir = tmp_path / "store"
    CentralStore(store_dir).close()
    newer = tmp_path / "newer.sqlite3"
    engine_for(store_dir).backup(newer)
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(BackupFailed, match="newer than this program's"):
        engine_for(tmp_path / "r").restore(newer)


def test_a_corrupted_backup_fails_the_integrity_check(tmp_path):
    store_dir = tmp_path / "store"
    with running_central(store_dir) as server:
        device = server.add_device()
        events = WireEvents()
        for start in range(0, 600, 30):
            server.post_events(device, [e for m in range(start, start + 30)
                                        for e in events.visit(m, m + 1, m + 2)[1]])
    copy = tmp_path / "b.sqlite3"
    engine_for(store_dir).backup(copy)
    data = bytearray(copy.read_bytes())
    page = 4096
    for offset in range(3 * page + 100, len(data) - page, 7 * page):  # scribble on pages
        data[offset:offset + 64] = os.urandom(64)
    copy.write_bytes(bytes(data))
    with pytest.raises(BackupFailed):
        check_backup(copy)


def test_the_daily_backup_makes_one_a_day_and_keeps_the_newest(tmp_path):
    store_dir = tmp_path / "store"
    CentralStore(store_dir).close()
    clock = FakeClock()
    daily = DailyBackups(store_dir, keep=2, clock=clock)
    (daily.folder).mkdir(parents=True)
    (daily.folder / "notes.txt").write_text("the operator's own file")

    first = daily.run_if_due()
    assert first is not None and first.name == backup_name(clock())
    clock.advance(minutes=23 * 60)
    assert daily.run_if_due() is None  # not yet a day
    made = [first]
    for _ in range(3):
        clock.advance(minutes=24 * 60)
        made.append(daily.run_if_due())
    assert [path for _, path in backups_in(daily.folder)] == made[-2:]
    assert (daily.folder / "notes.txt").exists()
    assert check_backup(made[-1]).integrity == "ok"
    with pytest.raises(ValueError, match="keep at least 1"):
        DailyBackups(store_dir, keep=0)
    assert timedelta(days=1) == clock() - backups_in(daily.folder)[0][0]


def test_central_under_systemd_notifies_and_backs_up_at_start(tmp_path):
    """`main.py central` as its unit runs it: READY=1 and watchdog pings on a real notify
    socket, and the first daily backup made at start in --backup-dir."""
    data, backups = tmp_path / "data", tmp_path / "backups"
    CentralStore(data).close()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(20)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "WATCHDOG_USEC": "400000"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "central", "--data", str(data), "--port", "0",
         "--backup-dir", str(backups), "--backup-keep", "3"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        received = [listener.recv(100).decode() for _ in range(4)]
        assert received[0] == "READY=1" and received[1:] == ["WATCHDOG=1"] * 3
        found = wait_until(lambda: backups_in(backups), what="the start-up backup")
        assert check_backup(found[0][1]).integrity == "ok"
    finally:
        process.terminate()
        process.wait(20)
        listener.close()
    refused = main_py("central", "--data", str(data), "--backup-keep", "-1")
    assert refused.returncode == 2 and "is negative: use 0 or more" in refused.stderr


def test_daily_backup_failure_is_logged_and_retried(tmp_path, caplog):
    daily = DailyBackups(tmp_path / "no-store", keep=1, check_every_s=0.05)
    daily.start()
    try:
        wait_until(lambda: "the daily backup failed" in caplog.text, what="a logged failure")
    finally:
        daily.stop()
    assert not daily._thread.is_alive()  # stopped when asked


def _corrupt_pages(database: Path) -> None:
    """Overwrite every page after the first with garbage, as a failing disk might."""
    page_size = int.from_bytes(database.read_bytes()[16:18], "big")
    with open(database, "r+b") as file:
        file.seek(page_size)
        file.write(b"\xa5" * (database.stat().st_size - page_size))


def test_restore_force_over_a_corrupt_store_keeps_the_damaged_files_beside(tmp_path):
    live, backup_file = tmp_path / "live", tmp_path / "b.sqlite3"
    with running_central(live) as server:
        server.post_events(server.add_device(), WireEvents().visit(1, 2, 3)[1])
    engine_for(live).backup(backup_file)
    database = database_path(live)
    _corrupt_pages(database)
    with pytest.raises(BackupFailed):
        check_backup(database, live=True)
    damaged = database.read_bytes()

    forced = main_py("restore", "--from", str(backup_file), "--data", str(live), "--force")
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["counts"]["events"] == 3 and report["integrity"] == "ok"
    kept = Path(report["previous_store_kept_at"])
    assert kept.parent == live and kept.read_bytes() == damaged  # byte for byte, not checked
    assert "did not check out" in report["note"]


def test_restore_force_over_a_store_sqlite_cannot_open_at_all(tmp_path):
    live, backup_file = tmp_path / "live", tmp_path / "b.sqlite3"
    CentralStore(live).close()
    engine_for(live).backup(backup_file)
    database = database_path(live)
    database.write_bytes(b"not a database, a disk's worth of noise " * 200)
    forced = main_py("restore", "--from", str(backup_file), "--data", str(live), "--force")
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["integrity"] == "ok"
    assert Path(report["previous_store_kept_at"]).read_bytes().startswith(b"not a database")


@pytest.fixture
def read_only(tmp_path):
    """Make a folder and its files read-only even for root (chattr +i), as media would be."""
    made: list[Path] = []

    def freeze(folder: Path) -> None:
        paths = [*folder.iterdir(), folder]
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True)
            if done.returncode != 0:
                pytest.skip(f"cannot make files read-only for root here: {done.stderr!r}")
            made.extend(paths)

    yield freeze
    if made:
        subprocess.run(["chattr", "-i", *map(str, made)], check=True)


def test_a_backup_is_one_file_and_restores_from_read_only_media(tmp_path, read_only):
    store_dir, media = tmp_path / "store", tmp_path / "media"
    with running_central(store_dir) as server:
        server.post_events(server.add_device(), WireEvents().visit(1, 2, 3)[1])
    media.mkdir()
    made = main_py("backup", "--data", str(store_dir), "--to", str(media))
    assert made.returncode == 0, made.stderr
    backup_file = Path(json.loads(made.stdout)["path"])
    # A dated name the daily pruning never touches.
    assert backup_file.name.startswith("manual-") and backups_in(media) == []
    assert sorted(p.name for p in media.iterdir()) == [backup_file.name]  # no -wal, no -shm
    with sqlite3.connect(backup_file) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    read_only(media)

    assert check_backup(backup_file).counts["events"] == 3
    put_back = main_py("restore", "--from", str(backup_file), "--data", str(tmp_path / "new"))
    assert put_back.returncode == 0, put_back.stderr
    assert json.loads(put_back.stdout)["counts"]["events"] == 3
    assert sorted(p.name for p in media.iterdir()) == [backup_file.name]


def test_a_backup_stamped_in_the_future_does_not_hold_the_daily_backup_off(tmp_path):
    store_dir = tmp_path / "store"
    CentralStore(store_dir).close()
    clock = FakeClock()
    daily = DailyBackups(store_dir, keep=3, clock=clock)
    clock.advance(minutes=30 * 24 * 60)  # the clock ran a month fast ...
    ahead = daily.run_if_due()
    clock.advance(minutes=-30 * 24 * 60)  # ... and was put right
    made = daily.run_if_due()
    assert made is not None and made != ahead
    assert daily.run_if_due() is None  # once a day from then on


def test_the_daily_backup_is_skipped_and_logged_once_when_the_disk_is_nearly_full(
    tmp_path, caplog
):
    store_dir = tmp_path / "store"
    CentralStore(store_dir).close()
    size = database_path(store_dir).stat().st_size
    free = {"bytes": size + 1000}
    daily = DailyBackups(store_dir, clock=FakeClock(), free_bytes=lambda _folder: free["bytes"],
                         margin_bytes=10_000)
    with caplog.at_level("ERROR", logger="sync.central.backup_schedule"):
        assert daily.run_if_due() is None
        assert daily.run_if_due() is None
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "--backup-dir" in skipped[0].getMessage()
    assert backups_in(daily.folder) == []
    free["bytes"] = size + 10_000
    assert daily.run_if_due() is not None
