"""Figure 9: backing up and restoring a central store of a million events.

The store is filled by ``demo-data``'s bulk path (2 sites, 5 desks, 365 days; about 1,000,000
events, or about 230,000 with ``quick``). Then, alternately, three times each:

- ``main.py backup``'s engine (``SqliteEngine.backup``: SQLite's online backup into a new file,
  fsync, rename, then the check: ``PRAGMA integrity_check`` and row counts), beside a plain
  copy of the same database file (``shutil.copyfile`` + fsync), which is the floor: the bytes
  have to be read and written once whatever makes the copy;
- ``restore`` into an empty folder (check of the backup, the copy, WAL mode, check of the
  result), beside the same plain copy of the backup file.

Medians of three, with the backup file's size and the events it holds.
``BACKUP_BENCH_DATA=DIR`` reuses a data directory filled earlier.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from sync.central.backup import engine_for
from sync.central.dashboard import demo
from sync.central.storage import CentralStore, database_path
from tests.benchmarks.common import median, row, scratch_dir

ROUNDS = 3
# About 3.9 events per visit with linked and unlinked ratings: ~1,000,000 events.
VISITS_FULL, VISITS_QUICK = 260_000, 60_000


def _fill(data_dir: Path, visits: int) -> int:
    store = CentralStore(data_dir)
    try:
        if not store.db.execute("SELECT 1 FROM events LIMIT 1").fetchone():
            demo.fill(store, days=365, visits=visits, ratings=visits)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        store.close()


def _plain_copy(source: Path, target: Path) -> float:
    started = time.perf_counter()
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def run(quick: bool) -> list[dict]:
    reuse = os.environ.get("BACKUP_BENCH_DATA")
    with scratch_dir("backup") as scratch:
        data_dir = Path(reuse) if reuse else scratch / "central"
        events = _fill(data_dir, VISITS_QUICK if quick else VISITS_FULL)
        engine = engine_for(data_dir)
        backups, restores, copies_live, copies_backup, checks = [], [], [], [], []
        size = 0
        for index in range(ROUNDS):
            copies_live.append(_plain_copy(database_path(data_dir), scratch / f"copy-{index}"))
            (scratch / f"copy-{index}").unlink()
            report = engine.backup(scratch / f"backup-{index}.sqlite3")
            backups.append(report.seconds)
            checks.append(report.check_seconds)
            size = report.check.bytes
            assert report.check.counts["events"] == events
            copies_backup.append(_plain_copy(Path(report.check.path), scratch / f"plain-{index}"))
            (scratch / f"plain-{index}").unlink()
            restored = engine_for(scratch / f"restored-{index}").restore(Path(report.check.path))
            restores.append(restored.seconds)
            assert restored.check.counts["events"] == events
            shutil.rmtree(scratch / f"restored-{index}")
            Path(report.check.path).unlink()
        label = f"{events:,} events, median of {ROUNDS}"
        backup_s, restore_s = median(backups), median(restores)
        return [
            row(f"11. backup (online copy + integrity check), {label}", round(backup_s, 2), "s",
                round(median(copies_live), 2), "<= 60 s", backup_s <= 60),
            row(f"11. of which the integrity check and counts, {label}", round(median(checks), 2),
                "s", round(median(copies_live), 2), "(information)", None),
            row(f"11. backup file size, {events:,} events", round(size / 1_000_000, 1), "MB",
                round(database_path(data_dir).stat().st_size / 1_000_000, 1),
                "(information)", None),
            row(f"11. restore (checks + copy), {label}", round(restore_s, 2), "s",
                round(median(copies_backup), 2), "<= 120 s", restore_s <= 120),
        ]


if __name__ == "__main__":
    import sys

    for line in run("--quick" in sys.argv):
        print(line)
