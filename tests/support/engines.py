"""The central store's two engines, for the suites that run on both.

The central, sync, dashboard and reliability suites run every test that uses a central store
(``central_store``, ``central_server``, or ``central_database_url`` directly) once per engine:
SQLite (a file in the test's folder) and PostgreSQL (a fresh database in the session's
throwaway cluster, ``tests.support.postgres``); the test ids end in ``[sqlite]`` or
``[postgres]``. Other suites use SQLite only. ``--central-engines sqlite`` (or ``postgres``)
runs one engine, e.g. while working on a single module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ENGINES = ("sqlite", "postgres")
# The suites the issue names: what a store's engine can change is exercised here.
ENGINE_SUITES = ("central", "sync", "dashboard", "reliability")
TESTS_ROOT = Path(__file__).resolve().parents[1]


def add_option(parser: pytest.Parser) -> None:
    parser.addoption(
        "--central-engines", default=",".join(ENGINES), metavar="sqlite,postgres",
        help="the central store engines the engine suites run on (default: both)",
    )


def engines_for(config: pytest.Config, test_path: Path) -> list[str]:
    chosen = [name.strip() for name in config.getoption("--central-engines").split(",")
              if name.strip()]
    unknown = set(chosen) - set(ENGINES)
    if unknown:
        raise pytest.UsageError(f"--central-engines: unknown engine(s) {sorted(unknown)}; "
                                f"choose from {', '.join(ENGINES)}")
    try:
        suite = Path(test_path).resolve().relative_to(TESTS_ROOT).parts[0]
    except ValueError:
        suite = ""
    if suite in ENGINE_SUITES:
        return chosen
    return ["sqlite"] if "sqlite" in chosen else chosen[:1]


def parametrize(metafunc: pytest.Metafunc) -> None:
    if "central_engine" in metafunc.fixturenames:
        metafunc.parametrize(
            "central_engine", engines_for(metafunc.config, metafunc.definition.path),
            indirect=True, scope="function",
        )


@pytest.fixture
def central_engine(request) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def central_database_url(central_engine, request) -> str | None:
    """None on SQLite (the store is the data directory's file); a fresh PostgreSQL database's
    URL on PostgreSQL, dropped after the test."""
    if central_engine == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


class StoreAt:
    """Where a test's store is, on either engine: its data directory and, on PostgreSQL, its
    database's URL; ``connect()`` for a one-off connection, ``open()`` for a CentralStore."""

    def __init__(self, path: Path, database_url: str | None = None):
        self.path = Path(path)
        self.database_url = database_url

    def connect(self):
        from sync.central.storage import connect_to

        return connect_to(self.path, self.database_url)

    def open(self):
        from sync.central.storage import CentralStore

        return CentralStore(self.path, database_url=self.database_url)

    def __repr__(self) -> str:
        return f"StoreAt({self.path}, {self.database_url})"


def parametrize_session(metafunc: pytest.Metafunc, name: str) -> None:
    """A session-scoped engine fixture ``name`` (a suite that fills one store for the whole
    session, as the dashboard's does): all its tests run on one engine, then on the other."""
    if name in metafunc.fixturenames:
        metafunc.parametrize(name, engines_for(metafunc.config, metafunc.definition.path),
                             indirect=True, scope="session")
