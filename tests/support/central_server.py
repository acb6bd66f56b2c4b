"""A real central store on 127.0.0.1 (a port the system picks), for any test that needs one.

The one way tests start a central server in their own process: the ``central_server`` fixture
(re-export it from a conftest.py:
``from tests.support.central_server import central_server  # noqa: F401``) or
``with running_central(tmp_dir) as server: ...`` (a given port to restart on, limits,
trusted proxies: the options of ``sync.central.embedded.start_embedded``). The server has
started and answers before either hands it over; nothing sleeps and hopes. A test that must
kill the store for real runs it as a separate process: ``tests.reliability.helpers.CentralProcess``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sync.central import auth
from sync.central.embedded import EmbeddedCentral, start_embedded
from sync.central.sites import update_site
from sync.central.storage import connect_to

DEFAULT_SITE = "Test Clinic"


@dataclass(frozen=True)
class DeviceCredentials:
    device_id: str
    token: str
    site: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class LiveCentral:
    """What a test gets: the server's ``base_url`` and ``data_dir``, and admin shortcuts."""

    base_url: str
    data_dir: Path
    embedded: EmbeddedCentral
    database_url: str | None = None  # PostgreSQL's, when the store runs on it

    def url(self, path: str) -> str:
        return self.base_url + path

    def store_args(self) -> list[str]:
        """The admin commands' options naming this server's store (either engine)."""
        database = ["--database-url", self.database_url] if self.database_url else []
        return ["--data", str(self.data_dir), *database]

    def add_device(self, site: str = DEFAULT_SITE, name: str = "Desk 1") -> DeviceCredentials:
        with self.embedded.store.write() as db:
            device, token = auth.add_device(db, site, name)
        return DeviceCredentials(device.id, token, device.site)

    def add_reporting_token(self, name: str = "reports") -> str:
        with self.embedded.store.write() as db:
            return auth.add_reporting_token(db, name)[1]

    def revoke_device(self, device_id: str) -> None:
        with self.embedded.store.write() as db:
            auth.revoke_device(db, device_id)

    def set_site(self, site: str = DEFAULT_SITE, **settings) -> None:
        with self.embedded.store.write() as db:
            update_site(db, site, **settings)

    def rows(self, sql: str, params: tuple | list = ()) -> list[dict]:
        """Read what the server actually stored (a fresh connection: only committed data)."""
        db = connect_to(self.data_dir, self.database_url)
        try:
            return list(db.query(sql, params))
        finally:
            db.close()

    def post_events(self, device: DeviceCredentials, events: list[dict]) -> requests.Response:
        return requests.post(
            self.url("/api/v1/events"), json={"events": events}, headers=device.headers, timeout=10
        )

    def metrics(self, token: str, **params) -> requests.Response:
        return requests.get(
            self.url("/api/v1/metrics"),
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )


@contextmanager
def running_central(data_dir: Path, port: int = 0, **options) -> Iterator[LiveCentral]:
    """A started server over ``data_dir``; ``options`` go to ``start_embedded``
    (``database_url`` for a store on PostgreSQL)."""
    embedded = start_embedded(Path(data_dir), host="127.0.0.1", port=port, **options)
    try:
        yield LiveCentral(embedded.url, Path(data_dir), embedded, options.get("database_url"))
    finally:
        embedded.stop()


@pytest.fixture
def central_server(tmp_path, central_database_url) -> Iterator[LiveCentral]:
    """A started central store over a fresh data directory (and, for the PostgreSQL run of
    the engine suites, a fresh database); stopped after the test."""
    with running_central(tmp_path / "central", database_url=central_database_url) as server:
        yield server
