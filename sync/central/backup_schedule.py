"""The daily backup a running central store makes of itself, keeping the newest N.

"Due" is read from the backup folder, not from memory: no ``central-<UTC stamp>`` file from
the last day (none, only older ones, or one stamped in the future by a wrong clock) means a
backup now. So a store restarted every hour still
backs up once a day, and one that was down for a week backs up as soon as it is up again.

A backup is skipped while the backup folder's disk has less free space than the database plus
a margin (SPACE_MARGIN_BYTES): filling that disk (often the store's own) would stop ingest, which
is worse than one missed backup. The skip is logged once, not at every check, until a backup
is made again.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from kiosk.shared.timeutil import Clock, utc_now
from sync.central.backup import (
    BACKUP_PREFIX,
    BACKUP_SUFFIX,
    STAMP_FORMAT,
    BackupFailed,
    engine_for,
)
from sync.central.daily_check import DailyCheck
from sync.central.storage import database_path

BACKUP_EVERY = timedelta(days=1)
CHECK_EVERY_S = 600.0
DEFAULT_KEEP = 14
BACKUP_FOLDER = "backups"
SPACE_MARGIN_BYTES = 256 * 1024 * 1024  # room left over after a backup, for ingest and logs
log = logging.getLogger(__name__)


def backups_in(folder: Path) -> list[tuple[datetime, Path]]:
    """The dated backups in ``folder``, oldest first (other files are never touched)."""
    found = []
    for path in folder.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}"):
        stamp = path.name[len(BACKUP_PREFIX):-len(BACKUP_SUFFIX)]
        try:
            moment = datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=utc_now().tzinfo)
        except ValueError:
            continue
        found.append((moment, path))
    return sorted(found)


class DailyBackups(DailyCheck):
    """Backs the store in ``data_dir`` up into ``folder`` once a day; keeps the newest ``keep``."""

    thread_name = "daily-backup"
    what = "the daily backup"

    def __init__(self, data_dir: Path, folder: Path | None = None, keep: int = DEFAULT_KEEP,
                 clock: Clock = utc_now, check_every_s: float = CHECK_EVERY_S,
                 free_bytes=lambda folder: shutil.disk_usage(folder).free,
                 margin_bytes: int = SPACE_MARGIN_BYTES):
        if keep < 1:
            raise ValueError(f"keep = {keep}: keep at least 1 backup (or do not schedule any)")
        super().__init__(check_every_s)
        self.data_dir = Path(data_dir)
        self.folder = Path(folder) if folder else self.data_dir / BACKUP_FOLDER
        self.keep = keep
        self.clock = clock
        self.free_bytes = free_bytes  # a parameter so a test can give a full disk
        self.margin_bytes = margin_bytes
        self._skip_logged = False

    def run_if_due(self) -> Path | None:
        """Make today's backup if it is due, then prune; the new file's path, or None."""
        now = self.clock()
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = backups_in(self.folder)
        # Only a backup from the last day counts: one stamped in the future (the clock was
        # wrong, then put right) would otherwise hold every backup off until the clock caught
        # up with it.
        if any(timedelta(0) <= now - moment < BACKUP_EVERY for moment, _path in existing):
            return None
        if not self._room_for_backup():
            return None
        report = engine_for(self.data_dir).backup(self.folder, now=now, prefix=BACKUP_PREFIX)
        self._skip_logged = False
        log.info("daily backup %s: %d bytes, %s", report.check.path, report.check.bytes,
                 report.check.counts)
        for _moment, old in backups_in(self.folder)[:-self.keep]:
            old.unlink(missing_ok=True)
        return Path(report.check.path)

    def _room_for_backup(self) -> bool:
        database = database_path(self.data_dir)
        size = database.stat().st_size if database.is_file() else 0
        free = self.free_bytes(self.folder)
        if free >= size + self.margin_bytes:
            return True
        if not self._skip_logged:
            log.error(
                "the daily backup is skipped: %s has %d MB free, and a backup needs %d MB "
                "(the store's size) plus %d MB to spare. Free some space there, or give "
                "--backup-dir on another disk.", self.folder, free // 2**20, size // 2**20,
                self.margin_bytes // 2**20,
            )
            self._skip_logged = True
        return False

    def failed(self, error: Exception) -> None:
        if isinstance(error, (BackupFailed, OSError)):  # tried again at the next check
            log.error("the daily backup failed: %s", error)
        else:
            log.exception("the daily backup failed")
