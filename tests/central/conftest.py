"""The live central server for these tests, and a central store opened without a server."""

from __future__ import annotations

import pytest

from sync.central.storage import CentralStore
from tests.support.central_server import central_server  # noqa: F401  (a fixture)


@pytest.fixture
def central_store(tmp_path, central_database_url):
    opened = CentralStore(tmp_path / "central-store", database_url=central_database_url)
    yield opened
    opened.close()
