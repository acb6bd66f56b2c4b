"""A central store filled once per module and engine, handed to each test as a copy of its own.

A module whose tests all start from the same filled store (thousands of events ingested) and
may change it would otherwise fill it again for every test, on both engines, and the calendar
sweep runs some such modules at each of its instants. Here the filling is done once: SQLite's
data directory is copied (the store closed first, so its file is whole), PostgreSQL's
database is made with ``CREATE DATABASE ... TEMPLATE`` the filled one. A copy is the store
exactly as filled (events, projections, rollups, sites, devices), and what a test changes
stays in its copy. The caches keyed by a store (its file, or its database) never meet a copy's.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from psycopg import sql

from sync.central.storage import CentralStore
from tests.support.postgres import PostgresCluster, unique_database_name

Fill = Callable[[CentralStore], None]


class FilledStores:
    """``copy(engine, folder, request)`` gives a test its copy; ``close()`` drops the originals
    (a module fixture's teardown)."""

    def __init__(self, fill: Fill, tmp_path_factory: pytest.TempPathFactory):
        self._fill = fill
        self._tmp_path_factory = tmp_path_factory
        self._sqlite_original: Path | None = None
        self._postgres_original: tuple[PostgresCluster, str] | None = None

    @contextmanager
    def copy(self, engine: str, folder: Path, request: pytest.FixtureRequest
             ) -> Iterator[CentralStore]:
        if engine == "sqlite":
            directory = folder / "store"
            shutil.copytree(self._sqlite_directory(), directory)
            store = CentralStore(directory)
            try:
                yield store
            finally:
                store.close()
            return
        cluster = request.getfixturevalue("postgres_cluster")
        original = self._postgres_database(cluster)
        name = unique_database_name(request.node.name)
        cluster.query(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(original)))
        try:
            store = CentralStore(folder, database_url=cluster.url(name))
            try:
                yield store
            finally:
                store.close()
        finally:
            cluster.drop_database(name)

    def close(self) -> None:
        if self._postgres_original is not None:
            cluster, name = self._postgres_original
            cluster.drop_database(name)
            self._postgres_original = None

    def _sqlite_directory(self) -> Path:
        if self._sqlite_original is None:
            directory = self._tmp_path_factory.mktemp("filled-sqlite")
            self._filled(CentralStore(directory))
            self._sqlite_original = directory
        return self._sqlite_original

    def _postgres_database(self, cluster: PostgresCluster) -> str:
        if self._postgres_original is None:
            name = unique_database_name("filled")
            url = cluster.create_database(name)
            try:
                folder = self._tmp_path_factory.mktemp("filled-postgres")
                self._filled(CentralStore(folder, database_url=url))
            except BaseException:
                cluster.drop_database(name)  # the next test fills afresh (and fails the same)
                raise
            self._postgres_original = (cluster, name)
        return self._postgres_original[1]

    def _filled(self, store: CentralStore) -> None:
        try:
            self._fill(store)
        finally:
            store.close()  # a template must have no one connected; a file, no open writer
