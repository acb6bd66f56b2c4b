"""A central store running inside the kiosk's process, for a practice with a single desk.

``python main.py`` with no central URL configured calls :func:`start_embedded`, enrols the
local kiosk with :meth:`EmbeddedCentral.enrol`, and calls :meth:`EmbeddedCentral.stop` when the
kiosk stops. uvicorn runs in a daemon thread, so a crash of the kiosk never leaves it behind.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from sync.central import audit
from sync.central.app import create_app
from sync.central.auth import add_device, token_digest
from sync.central.backup_schedule import DailyBackups
from sync.central.retention_schedule import RetentionPolicy
from sync.central.serving import PORT_TRIES, bind_socket, bound_port, make_server, url_for

ENROLMENT_FILE = "local-kiosk-enrolment.json"
STARTUP_TIMEOUT_S = 15.0


class EmbeddedStartFailed(RuntimeError):
    """The embedded central store did not start; the message says what happened."""


class EmbeddedCentral:
    """A running embedded store: ``url``, ``port``, ``enrol()`` and ``stop()``."""

    def __init__(self, data_dir: Path, host: str, port: int, server, thread, app):
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.url = url_for(host, port)
        self.app = app
        self._server = server
        self._thread = thread

    @property
    def store(self):
        return self.app.state.store

    def seed_site(self, settings) -> None:
        """A site this store does not know yet takes the local kiosk's settings, so the kiosk
        and its embedded store agree from the first start; later changes are `site set`'s."""
        from sync.central.sites import UnknownSite, get_site, update_site

        with self.store.write() as db:
            try:
                get_site(db, settings.site)
            except UnknownSite:
                update_site(
                    db,
                    settings.site,
                    timezone=settings.timezone,
                    target_wait_min=settings.target_wait_min,
                    rating_scale=settings.rating_scale,
                    followup_tags=list(settings.followup_tags),
                    idle_timeout_s=settings.idle_timeout_s,
                    survey=settings.survey,
                    comments=settings.comments,
                )

    def enrol(self, site: str, name: str) -> str:
        """The local kiosk's device token, enrolled once and reused on every later start.

        The token is kept in a file beside the database (readable by this user only) because
        the database holds only its hash. A revoked or deleted device, or a new site, gets a
        fresh enrolment.
        """
        path = self.data_dir / ENROLMENT_FILE
        saved = _read_enrolment(path)
        if saved and saved.get("site") == site and self._still_valid(saved):
            return saved["token"]
        with self.store.write() as db:
            device, token = add_device(db, site, name)
            # Recorded as `device add` records it: the account running the embedded store.
            audit.record(db, audit.command_actor(), "device.add", device.id, device.site, None,
                         {"site": device.site, "name": device.name, "by": "embedded store"})
        _write_private(
            path, {"device_id": device.id, "token": token, "site": device.site, "name": name}
        )
        return token

    def _still_valid(self, saved: dict) -> bool:
        token = saved.get("token")
        if not isinstance(token, str):
            return False
        row = self.store.db.execute(
            "SELECT revoked FROM devices WHERE id = ? AND token_sha256 = ?",
            [saved.get("device_id"), token_digest(token)],
        ).fetchone()
        return row is not None and not row[0]

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> EmbeddedCentral:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _read_enrolment(path: Path) -> dict | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def _write_private(path: Path, content: dict) -> None:
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(content, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def start_embedded(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8700,
    log_level: str = "warning",
    startup_timeout: float = STARTUP_TIMEOUT_S,
    proxies: tuple[str, ...] = (),
    limits=None,
    database_url: str | None = None,
    read_database_url: str | None = None,
    retention: RetentionPolicy | None = None,
    backup_keep: int = 0,
) -> EmbeddedCentral:
    """Serve the store over ``data_dir`` on ``port`` (or the next free one; 0 = any) and return
    once it accepts requests. Raises EmbeddedStartFailed or serving.PortUnavailable.
    ``proxies`` and ``limits``: as for ``serving.make_server`` (the kiosk's own store listens
    on 127.0.0.1 and needs neither; tests use them). ``retention``: the daily purge to run
    while serving (``python main.py`` gives the kiosk's own retention settings);
    ``backup_keep``: a daily backup into ``<data_dir>/backups`` keeping the newest N (0: none)."""
    data_dir = Path(data_dir)
    backups = None
    if backup_keep and database_url is None:
        backups = DailyBackups(data_dir, keep=backup_keep)
    app = create_app(data_dir, database_url=database_url, read_database_url=read_database_url,
                     retention=retention, backups=backups)
    sock = bind_socket(host, port, tries=PORT_TRIES)
    actual_port = bound_port(sock)
    server = make_server(
        app, host, actual_port, log_level=log_level, proxies=proxies, limits=limits
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="embedded-central", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise EmbeddedStartFailed("the embedded central store stopped while starting")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise EmbeddedStartFailed(
                f"the embedded central store did not start within {startup_timeout:.0f} s"
            )
        time.sleep(0.01)  # polling a flag uvicorn sets; this is not a guess at a duration
    return EmbeddedCentral(data_dir, host, actual_port, server, thread, app)
