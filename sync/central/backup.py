"""Backing up and restoring the central store, while it runs.

One engine today: SQLite, through its online backup API (``sqlite3.Connection.backup``), which
copies a consistent snapshot while kiosks keep posting (in WAL mode the copy is a read: writers
are not held up). A backup is written beside its target and renamed into place once complete
and synced, so a crash never leaves a half-written file under the backup's name; it is then
opened and checked (``PRAGMA integrity_check`` and row counts) before the command says "done".

A backup is left a single file (rollback journal, not WAL: storage.make_single_file) and is
opened read-only to be checked or restored from, so a backup on read-only media restores.

A restore checks the backup the same way first, then copies it into the data directory, again
with the backup API. Into an existing store only with ``force``: the store as it was is first
copied beside it as plain files (database, -wal, -shm), with no check that could refuse it:
a damaged store is the main reason to restore, and nothing is ever lost to a mistyped path.
The copy goes *through* SQLite into the live file, so a running server's connections see the
restored data instead of writing on into a file that was replaced under them; only when the
live file is too damaged for SQLite to open is it replaced as a file.

``engine_for`` is where the PostgreSQL engine will plug in: it arrives with the
``--database-url`` option (README, "Commands") and will use ``pg_dump`` / ``pg_restore``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from kiosk.shared.timeutil import utc_now
from sync.central.migrations import SCHEMA_VERSION
from sync.central.storage import BUSY_TIMEOUT_MS, connect, database_path, make_single_file

# Tables whose rows a backup reports and a restore compares: what a manager would miss.
COUNTED_TABLES = ("events", "visits", "ratings", "devices", "sites")
BACKUP_SUFFIX = ".sqlite3"
BACKUP_PREFIX = "central-"  # the daily backups: pruned to the newest N
MANUAL_PREFIX = "manual-central-"  # `backup --to DIR`: never pruned by the daily backup
STORE_SIDE_FILES = ("-wal", "-shm")  # what a WAL store keeps beside its database file
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class BackupFailed(RuntimeError):
    """A backup or restore that could not be made or did not check out; says why and how."""


@dataclass(frozen=True)
class BackupCheck:
    path: str
    bytes: int
    integrity: str
    schema_version: int
    counts: dict[str, int]


@dataclass(frozen=True)
class BackupReport:
    engine: str
    check: BackupCheck
    seconds: float  # in all
    check_seconds: float  # of which checking the result (integrity check, counts)
    moved_aside: str | None = None  # restore --force: where the store as it was was kept
    note: str | None = None  # restore --force: the kept store failed its check (kept anyway)

    def as_dict(self) -> dict:
        report = {"engine": self.engine, **asdict(self.check), "seconds": round(self.seconds, 3),
                  "check_seconds": round(self.check_seconds, 3)}
        if self.moved_aside:
            report["previous_store_kept_at"] = self.moved_aside
        if self.note:
            report["note"] = self.note
        return report


def backup_name(moment: datetime, prefix: str = BACKUP_PREFIX) -> str:
    return f"{prefix}{moment.strftime(STAMP_FORMAT)}{BACKUP_SUFFIX}"


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A backup, opened so nothing is written beside it: ``immutable`` because nobody writes
    a backup while it is read, so SQLite needs no lock or -shm file, and a backup on read-only
    media (or one made before backups were single files) opens all the same. A file with a
    -wal beside it (a store's file given as a backup) is opened normally instead: ``immutable``
    would not read the writes still in its WAL."""
    if path.with_name(path.name + "-wal").exists():
        return _connect(path)
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_backup(path: Path, thorough: bool = True, live: bool = False) -> BackupCheck:
    """Open a backup and check it: SQLite's integrity check, a central store's schema (not
    newer than this program's), and the row counts. BackupFailed when any is wrong.
    ``thorough=False`` runs ``quick_check`` (every page and row, not every index entry against
    its row): for a page-for-page copy of a file that has just passed the full check.
    ``live=True`` for a store (WAL, read with its -wal and -shm); a backup is opened read-only."""
    if not path.is_file():
        raise BackupFailed(f"there is no backup file {path}: check the path")
    try:
        conn = _connect(path) if live else _connect_read_only(path)
        try:
            pragma = "integrity_check" if thorough else "quick_check"
            integrity = conn.execute(f"PRAGMA {pragma}").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            missing = [t for t in COUNTED_TABLES if t not in tables]
            counts = {} if missing else {
                t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in COUNTED_TABLES
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise BackupFailed(f"{path} is not a readable SQLite database ({error})") from None
    if integrity != "ok":
        raise BackupFailed(f"{path} fails SQLite's integrity check: {integrity}")
    if missing:
        raise BackupFailed(f"{path} is not a central store backup (no {', '.join(missing)} table)")
    if version > SCHEMA_VERSION:
        raise BackupFailed(
            f"{path} has schema version {version}, newer than this program's {SCHEMA_VERSION}: "
            "restore it with the newer version of the program"
        )
    return BackupCheck(str(path), path.stat().st_size, integrity, version, counts)


class SqliteEngine:
    """The central store in ``<data>/central.sqlite3``."""

    name = "sqlite"

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.database = database_path(self.data_dir)

    def backup(self, to: Path, now: datetime | None = None, prefix: str = MANUAL_PREFIX
               ) -> BackupReport:
        """Copy the live store to ``to`` (a new file, or a folder to hold a dated one named
        with ``prefix``: the daily backups use BACKUP_PREFIX, which their pruning looks for)."""
        if not self.database.is_file():
            raise BackupFailed(
                f"there is no central store in {self.data_dir} (no {self.database.name}): "
                "check --data"
            )
        target = to / backup_name(now or utc_now(), prefix) if to.is_dir() else to
        if target.exists():
            raise BackupFailed(
                f"{target} already exists: give a new file name, or a folder to put a dated "
                "backup in"
            )
        if not target.parent.is_dir():
            raise BackupFailed(f"there is no folder {target.parent} to write {target.name} into")
        started = time.perf_counter()
        partial = target.with_name(target.name + ".partial")
        try:
            self._copy(self.database, partial)
            _fsync(partial)
            os.replace(partial, target)
            _fsync(target.parent)
        except (sqlite3.Error, OSError) as error:
            partial.unlink(missing_ok=True)
            raise BackupFailed(f"the backup to {target} failed: {error}") from None
        copied = time.perf_counter()
        check = check_backup(target)
        done = time.perf_counter()
        return BackupReport(self.name, check, done - started, done - copied)

    def restore(self, source: Path, force: bool = False, now: datetime | None = None
                ) -> BackupReport:
        """Make ``source`` (a checked backup) the store in the data directory."""
        started = time.perf_counter()
        expected = check_backup(source)
        moved_aside = note = None
        if self.database.exists():
            if not force:
                raise BackupFailed(
                    f"{self.data_dir} already holds a central store: restoring would replace "
                    "its data. Add --force to replace it (it is first backed up beside it), or "
                    "restore into an empty --data folder."
                )
            kept = self.data_dir / f"before-restore-{backup_name(now or utc_now())}"
            note = self._keep_as_files(kept)
            moved_aside = str(kept)
        elif not self.data_dir.is_dir():
            try:
                self.data_dir.mkdir(parents=True)
            except OSError as error:
                raise BackupFailed(
                    f"cannot create the data folder {self.data_dir}: {error.strerror}"
                ) from None
        try:
            try:
                self._copy(source, self.database, into_store=True)
            except sqlite3.DatabaseError as error:
                # Corruption only (not a lock or a full disk: OperationalError), and only once
                # the store as it was is kept beside.
                if moved_aside is None or isinstance(error, sqlite3.OperationalError):
                    raise
                # Too damaged for SQLite to write into: it is kept beside; start from nothing.
                self._remove_store_files()
                self._copy(source, self.database, into_store=True)
        except (sqlite3.Error, OSError) as error:
            raise BackupFailed(f"the restore into {self.database} failed: {error}") from None
        copied = time.perf_counter()
        # The backup passed the full check above; the copy is checked for what a copy can
        # get wrong (pages, rows, counts) at about half the cost (figure 9).
        restored = check_backup(self.database, thorough=False, live=True)
        if restored.counts != expected.counts:  # only if something wrote in between
            raise BackupFailed(
                f"the restored store's counts {restored.counts} differ from the backup's "
                f"{expected.counts}: something wrote to {self.data_dir} during the restore; "
                "stop the central store and restore again"
            )
        done = time.perf_counter()
        return BackupReport(self.name, restored, done - started, done - copied, moved_aside,
                            note)

    def _keep_as_files(self, kept: Path) -> str | None:
        """Copy the store as it is (database, -wal, -shm) to ``kept`` byte for byte, and say
        (as a note, never a refusal) when the copy fails SQLite's check."""
        try:
            for suffix in ("", *STORE_SIDE_FILES):
                source = self.database.with_name(self.database.name + suffix)
                if source.exists():
                    shutil.copy2(source, kept.with_name(kept.name + suffix))
        except OSError as error:
            raise BackupFailed(
                f"could not keep a copy of the current store at {kept} ({error.strerror}), so "
                "nothing was restored: free some space in the data folder and try again"
            ) from None
        try:
            check_backup(kept, thorough=False, live=True)
        except BackupFailed as failed:
            return f"the store as it was is kept but did not check out: {failed}"
        return None

    def _remove_store_files(self) -> None:
        for suffix in ("", *STORE_SIDE_FILES):
            self.database.with_name(self.database.name + suffix).unlink(missing_ok=True)

    @staticmethod
    def _copy(source: Path, target: Path, into_store: bool = False) -> None:
        """SQLite's online backup, all pages in one step: one consistent snapshot of the source
        (a step-by-step copy restarts whenever a kiosk's batch commits meanwhile, and under
        steady ingest might never finish). Into a store, the copy goes through a connection
        set up as every store connection is (storage.connect: WAL, synchronous=FULL)."""
        src = _connect_read_only(source) if into_store else _connect(source)
        dst = connect(target).conn if into_store else _connect(target)
        try:
            src.backup(dst)
            if not into_store:
                make_single_file(dst)
        finally:
            dst.close()
            src.close()


def engine_for(data_dir: Path) -> SqliteEngine:
    """The engine holding the store. Only SQLite exists yet; PostgreSQL (``--database-url``,
    backed up with ``pg_dump``) will be chosen here when it arrives."""
    return SqliteEngine(data_dir)
