"""What runs beside the kiosk's screens: the sync loop, and for `python main.py` an embedded
central store on this machine, so a newcomer sees the whole loop (tap -> central -> dashboard).

``KioskSync`` is the launcher's ``SyncRunner``: started and stopped with the app, its
``status()`` feeds the staff screen's sync corner without touching the network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk.config import Settings
from kiosk.launcher import SyncStartFailed
from kiosk.store import Store
from kiosk.sync_status import SyncStatus
from sync.loop import SyncLoop, sync_loop_for

EMBEDDED_PORT = 8700
# The embedded store's daily backups kept (in <its folder>/backups): a week's, so a damaged
# file has a recent copy to put back (the sentence of EmbeddedStoreFailed says how).
EMBEDDED_BACKUP_KEEP = 7
# Every sync pass would otherwise print its HTTP requests in the kiosk's console log.
for _chatty in ("urllib3", "asyncio"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)


class EmbeddedStoreFailed(SyncStartFailed):
    """The embedded central store could not start; the message says why and what to do."""


class KioskSync:
    """The sync loop for a kiosk. With ``embedded`` and no central URL configured, an embedded
    central store is started first (data in ``<data_dir>/central``, or ``embedded_data_dir``)
    and the kiosk enrols itself in it."""

    def __init__(
        self,
        embedded: bool = False,
        embedded_data_dir: Path | None = None,
        port: int = EMBEDDED_PORT,
        announce: Callable[[str], None] = print,
    ):
        self.embedded = embedded
        self.embedded_data_dir = embedded_data_dir
        self.port = port
        self.announce = announce
        self.central = None
        self._token: str | None = None  # this kiosk's token in the embedded store
        self.loop: SyncLoop | None = None
        self.dashboard_link: str | None = None

    def prepare(self, settings: Settings) -> Settings:
        """Start the embedded central store now, if it is this kiosk's store, and return the
        settings that name it: the launcher calls this before the window opens, so a store
        that cannot start (a damaged file, one written by a newer version, no free port) is
        a sentence at the command line (``EmbeddedStoreFailed``), not a traceback from inside
        the window. Otherwise the settings as they are. Asked again (``start`` asks), the
        store already running is named, not started twice."""
        if not self.embedded or settings.central_url is not None:
            return settings
        if self.central is None:
            self._token = self._start_embedded(settings)
        return replace(settings, central_url=self.central.url, central_token=self._token)

    def start(self, store: Store, settings: Settings) -> None:
        settings = self.prepare(settings)
        self.loop = sync_loop_for(store, settings)
        self.loop.start()

    def _start_embedded(self, settings: Settings) -> str:
        """Start the embedded store, enrol this kiosk in it, print the dashboard's link; the
        kiosk's token."""
        import sqlite3

        from sync.central.embedded import EmbeddedStartFailed
        from sync.central.migrations import SchemaTooNew
        from sync.central.storage import StoreUnavailable

        if self.embedded_data_dir is None:
            self.embedded_data_dir = settings.data_dir / "central"
        try:
            token = self._start_and_enrol(settings)
        except (StoreUnavailable, SchemaTooNew, EmbeddedStartFailed, sqlite3.Error,
                OSError) as error:  # OSError: PortUnavailable, a folder it may not write to
            if self.central is not None:
                self.central.stop()
                self.central = None
            raise EmbeddedStoreFailed(_why_not(self.embedded_data_dir, error)) from error
        from sync.central.dashboard import one_time_login_url

        self.dashboard_link = one_time_login_url(self.embedded_data_dir, self.central.url)
        self.announce(
            f"Central store running at {self.central.url} (data in {self.embedded_data_dir}).\n"
            f"Dashboard: open this one-time login link within a few minutes:\n"
            f"  {self.dashboard_link}"
        )
        return token

    def _start_and_enrol(self, settings: Settings) -> str:
        # Imported here: a kiosk that syncs to a remote store never loads the server.
        from sync.central.embedded import start_embedded
        from sync.central.retention_schedule import RetentionPolicy

        # The kiosk's own retention governs its store's copy: purged on both sides alike.
        retention = RetentionPolicy(settings.retention_days, settings.comment_retention_days)
        self.central = start_embedded(self.embedded_data_dir, port=self.port,
                                      retention=retention, backup_keep=EMBEDDED_BACKUP_KEEP)
        self.central.seed_site(settings)
        return self.central.enrol(settings.site, settings.device_name)

    def enrolment_service(self, settings: Settings):
        """The HTTP side of enrolment by code, or None where the kiosk enrols itself (an
        embedded store with no central URL configured)."""
        if self.embedded and settings.central_url is None:
            return None
        from sync.enrol_client import EnrolmentClient

        return EnrolmentClient(ca_file=settings.ca_file)

    def drain(self, store: Store, url: str, token: str, ca_file: str | None,
              passes: int = 20) -> int:
        """Send ``store``'s unsent events under another kiosk's token (a copied disk's, see
        kiosk.enrolment_start); returns how many are still unsent. No heartbeat is sent: this
        machine must not look like that kiosk on the dashboard."""
        from sync.client import SyncClient

        client = SyncClient(store, url, token, ca_file=ca_file, timeouts=(3.05, 10.0))
        try:
            for _ in range(passes):
                result = client.sync_once()
                if not result.ok or result.sent == 0:
                    break
        finally:
            client.close()
        return store.sync_status().backlog

    def site_config(self) -> dict[str, Any] | None:
        """The site's settings as last fetched from the central store, None before that."""
        return self.loop.site_config() if self.loop is not None else None

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        if self.central is not None:
            self.central.stop()

    def status(self) -> SyncStatus:
        """What the staff screen's sync corner shows; "not configured" before ``start``."""
        return self.loop.status() if self.loop is not None else SyncStatus()


def _why_not(data_dir: Path, error: Exception) -> str:
    """The sentence for an embedded store that did not start: what happened, and what to do
    when it is the store's file (the kiosk's own database is another file, untouched)."""
    import sqlite3

    from sync.central.backup_schedule import BACKUP_FOLDER
    from sync.central.storage import DATABASE_FILE, StoreUnavailable

    reason = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
    sentence = f"the embedded central store in {data_dir} cannot start: {reason}."
    if isinstance(error, (StoreUnavailable, sqlite3.DatabaseError)):
        sentence += (f" If {data_dir / DATABASE_FILE} is damaged, move it aside or put a backup "
                     f"back (python3 main.py restore --from FILE --data {data_dir} --force; "
                     f"the daily ones are in {data_dir / BACKUP_FOLDER}), then start again.")
    return sentence + " Nothing the kiosk recorded was touched."
