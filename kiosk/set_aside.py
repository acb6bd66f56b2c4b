"""Databases set aside from a copied or moved disk, still holding events that were not sent.

When a kiosk finds its disk was enrolled on another machine (``kiosk.enrolment_start``), it
first sends what it recorded under that kiosk's token. If the central store cannot be
reached then, those events would be stranded in the set-aside database: so the old
enrolment is kept beside it (``kiosk.sqlite.copied-<stamp>.enrolment.json``, mode 0600),
and the kiosk tries again at each start and every few minutes while it runs (``Sender``),
until the backlog is 0; then the set-aside database and its enrolment are removed. The
central store keeps each event of a device once, so a retry never counts anything twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk import enrolment_file
from kiosk.enrolment_file import EnrolmentFileError, KioskEnrolment
from kiosk.store import Store

log = logging.getLogger(__name__)

ENROLMENT_SUFFIX = ".enrolment.json"
RETRY_S = 300.0
# Sends a store's unsent events under (url, token); returns how many are still unsent.
Drain = Callable[[Store, str, str], int]


@dataclass(frozen=True)
class Sent:
    database: Path
    unsent: int  # still unsent after this try (0: the database and its enrolment are gone)


def enrolment_beside(database: Path) -> Path:
    return database.with_name(database.name + ENROLMENT_SUFFIX)


def keep_enrolment(database: Path, enrolment: KioskEnrolment) -> Path:
    """Keep the enrolment the set-aside events were recorded under, beside them (0600)."""
    return enrolment_file.save_to(enrolment_beside(database), enrolment)


def waiting(data_dir: Path) -> list[Path]:
    """The set-aside databases that still have an enrolment to send their events under."""
    return sorted(path.with_name(path.name.removesuffix(ENROLMENT_SUFFIX))
                  for path in Path(data_dir).glob(f"*{ENROLMENT_SUFFIX}")
                  if path.name != enrolment_file.FILE_NAME)


def send_waiting(data_dir: Path, drain: Drain) -> list[Sent]:
    """One try for every waiting database; those with nothing left unsent are removed."""
    results = []
    for database in waiting(data_dir):
        beside = enrolment_beside(database)
        if not database.exists():
            beside.unlink(missing_ok=True)  # removed by hand: nothing to send any more
            continue
        try:
            enrolment = enrolment_file.load_from(beside)
        except EnrolmentFileError as error:
            log.warning("%s", error)
            continue
        store = Store(database)
        try:
            unsent = store.sync_status().backlog
            if unsent:
                unsent = drain(store, enrolment.central_url, enrolment.token)
        finally:
            store.close()
        if unsent == 0:
            for suffix in ("", "-wal", "-shm"):
                Path(str(database) + suffix).unlink(missing_ok=True)
            beside.unlink(missing_ok=True)
        results.append(Sent(database, unsent))
    return results


class Sender:
    """Tries ``send_waiting`` on a thread of its own, now and every ``every_s`` seconds,
    until nothing is waiting; ``say`` is told each outcome (the launcher prints it)."""

    def __init__(self, data_dir: Path, drain: Drain, say: Callable[[str], None],
                 every_s: float = RETRY_S):
        self.data_dir, self.drain, self.say, self.every_s = data_dir, drain, say, every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if waiting(self.data_dir):
            self._thread = threading.Thread(target=self._run, name="set-aside", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                results = send_waiting(self.data_dir, self.drain)
            except Exception:  # a retry must never stop the kiosk
                log.exception("sending a set-aside database failed")
                results = []
            for result in results:
                self.say(f"{result.database.name}: all its events are sent; it was removed"
                         if result.unsent == 0 else
                         f"{result.database.name}: {result.unsent} events are still unsent; "
                         f"trying again in {int(self.every_s)} s")
            if not waiting(self.data_dir):
                return
            self._stop.wait(self.every_s)
