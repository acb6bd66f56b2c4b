"""The throwaway PostgreSQL clusters the central store's tests run against
(``tests/support/postgres.py``): a database per test, a replica that really lags when its replay
is paused, a cluster that stops and starts with its data, run by the ``postgres`` user, and a
start that fails says why. The session's cluster and replica are shared with every other test:
a test here that stops one starts it again."""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.support import postgres
from tests.support.postgres import (
    PostgresCluster,
    PostgresNotInstalled,
    PostgresStartError,
    find_binaries,
    unique_database_name,
)

WANTED_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "300",
    "wal_level": "replica",
    "max_wal_senders": "5",
    "hot_standby": "on",
    "synchronous_commit": "on",
}


@contextmanager
def port_taken(port: int = 0) -> Iterator[int]:
    """Someone else listening on 127.0.0.1:``port`` (0: any free port), as the server would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        # Like the server itself: a port its stopped predecessor left in TIME_WAIT is bindable.
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        yield other.getsockname()[1]


def settings(db: psycopg.Connection, names) -> dict[str, str]:
    rows = db.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(names)])
    return dict(rows.fetchall())


def server_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise LookupError(pid)


def expected_owner() -> int:
    return pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()


def test_a_cluster_of_its_own_skips_a_taken_port_and_leaves_nothing_behind(monkeypatch):
    # First in this module: it starts before the session's cluster and replica exist.
    with port_taken() as busy:
        offered, system_pick = iter([busy]), postgres.free_port
        monkeypatch.setattr(postgres, "free_port", lambda: next(offered, None) or system_pick())
        with PostgresCluster() as cluster:
            assert cluster.port != busy
            assert "Address already in use" in cluster.log_path.read_text()
            assert cluster.query("SELECT current_setting('port')") == [(str(cluster.port),)]
            folder, pid = cluster.folder, cluster.pid
        assert not folder.exists()
        assert not Path(f"/proc/{pid}").exists()


def test_a_durable_cluster_keeps_postgresql_defaults():
    """(The settings reach the server as ``-c`` options; the next test reads them back.)"""
    durable = PostgresCluster(durable=True)
    try:
        found = durable.server_settings()
    finally:
        durable.close()
    assert "fsync" not in found and "full_page_writes" not in found
    assert {name: found[name] for name in WANTED_SETTINGS if name in found} == {
        name: value for name, value in WANTED_SETTINGS.items() if name != "synchronous_commit"
    }


def test_a_database_per_test_in_utf8_with_c_collation(postgres_cluster, postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as db:
        name, collation, encoding = db.execute(
            "SELECT datname, datcollate, pg_encoding_to_char(encoding) FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()
        # RFC 3339 timestamps compare as text: in byte order (a language's would put 'a' first).
        assert db.execute("SELECT 'Z' < 'a'").fetchone() == (True,)
        db.execute("CREATE TABLE visits (id int PRIMARY KEY, at text)")
        db.execute("INSERT INTO visits VALUES (1, '2026-03-01T09:00:00Z')")
        assert db.execute("SELECT at FROM visits").fetchall() == [("2026-03-01T09:00:00Z",)]
        found = settings(db, ["fsync", "full_page_writes", *WANTED_SETTINGS])
    assert name.startswith("t_test_a_database_per_test_in_utf8_with_c")
    assert postgres_url == postgres_cluster.url(name)
    assert (collation, encoding) == ("C", "UTF8")
    assert found == {**WANTED_SETTINGS, "fsync": "off", "full_page_writes": "off"}


def test_dropping_a_database_disconnects_whoever_is_still_on_it(postgres_cluster):
    name = unique_database_name("left open")
    left_open = psycopg.connect(postgres_cluster.create_database(name), autocommit=True)
    try:
        left_open.execute("CREATE TABLE t (x int)")
        postgres_cluster.drop_database(name)
        with pytest.raises(psycopg.OperationalError):
            left_open.execute("SELECT 1")
    finally:
        left_open.close()
    assert postgres_cluster.query("SELECT 1 FROM pg_database WHERE datname = %s", [name]) == []


def test_the_cluster_belongs_to_the_postgres_user_not_root(postgres_cluster):
    owner = expected_owner()
    assert server_uid(postgres_cluster.pid) == owner
    assert postgres_cluster.folder.stat().st_uid == owner
    assert {path.stat().st_uid for path in postgres_cluster.data_dir.rglob("*")} == {owner}
    assert postgres_cluster.query("SELECT current_setting('data_directory')") == [
        (str(postgres_cluster.data_dir),)
    ]


def test_a_row_written_on_the_primary_is_read_on_the_replica(replica_database):
    with psycopg.connect(replica_database.primary_url, autocommit=True) as primary:
        primary.execute("CREATE TABLE ratings (id int PRIMARY KEY, score int)")
        primary.execute("INSERT INTO ratings VALUES (1, 5)")
    replica_database.replica.wait_caught_up()
    with psycopg.connect(replica_database.replica_url, autocommit=True) as replica:
        assert replica.execute("SELECT id, score FROM ratings").fetchall() == [(1, 5)]
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            replica.execute("INSERT INTO ratings VALUES (2, 4)")


def test_paused_replay_is_real_lag(replica_database):
    replica = replica_database.replica
    with psycopg.connect(replica_database.primary_url, autocommit=True) as primary:
        primary.execute("CREATE TABLE ratings (id int PRIMARY KEY)")
        replica.wait_caught_up()
        with psycopg.connect(replica_database.replica_url, autocommit=True) as standby:
            replica.pause_replay()
            try:
                primary.execute("INSERT INTO ratings VALUES (1)")  # committed on the primary
                with pytest.raises(TimeoutError, match="paused"):
                    replica.wait_caught_up(timeout=0.3)
                assert standby.execute("SELECT count(*) FROM ratings").fetchone() == (0,)
            finally:
                replica.resume_replay()
            replica.wait_caught_up()
            assert standby.execute("SELECT count(*) FROM ratings").fetchone() == (1,)


def test_stop_and_start_keep_committed_rows_and_the_replica_follows(
    postgres_cluster, postgres_replica, postgres_url
):
    dbname = postgres_url.rsplit("/", 1)[1]
    try:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("CREATE TABLE t (x int)")
            db.execute("INSERT INTO t VALUES (1)")
        postgres_cluster.stop("immediate")  # no shutdown checkpoint: a crash, as far as it knows
        assert not postgres_cluster.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres_url, connect_timeout=2)
        postgres_cluster.start()
        postgres_cluster.stop("fast")
        postgres_cluster.start()
        with psycopg.connect(postgres_url, autocommit=True) as db:  # the same URL
            assert db.execute("SELECT x FROM t").fetchall() == [(1,)]
            db.execute("INSERT INTO t VALUES (2)")
        postgres_replica.wait_caught_up()
        with psycopg.connect(postgres_replica.url(dbname)) as standby:
            assert standby.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    finally:
        postgres_cluster.start()


def test_a_failed_start_says_why_with_the_tail_of_the_log(postgres_cluster):
    postgres_cluster.stop()
    try:
        with port_taken(postgres_cluster.port), pytest.raises(PostgresStartError) as failed:
            postgres_cluster.start()  # a restart keeps its port: no other one is tried
        assert "last lines of the log" in str(failed.value)
        assert 'could not bind IPv4 address "127.0.0.1": Address already in use' in str(
            failed.value
        )
        assert not postgres_cluster.running
    finally:
        postgres_cluster.start()
    assert postgres_cluster.query("SELECT 1") == [(1,)]


def test_a_missing_postgresql_fails_saying_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(postgres, "POSTGRES_ROOT", tmp_path)
    with pytest.raises(PostgresNotInstalled, match="install Debian's `postgresql` package"):
        PostgresCluster()


def test_the_highest_version_installed_is_used(tmp_path):
    for version in ("9.6", "13", "15"):
        (tmp_path / version / "bin").mkdir(parents=True)
        for program in postgres.PROGRAMS:
            (tmp_path / version / "bin" / program).touch()
    assert find_binaries(tmp_path) == tmp_path / "15" / "bin"


def test_a_stopped_cluster_starts_again_from_its_folder_with_its_data(tmp_path):
    cluster = PostgresCluster()
    try:
        cluster.start()
        cluster.query("CREATE TABLE kept (n integer)")
        cluster.query("INSERT INTO kept VALUES (13)")
        cluster.stop()
        again = PostgresCluster(port=cluster.port, folder=cluster.folder)
        again.start()
        try:
            assert again.query("SELECT n FROM kept") == [(13,)]
        finally:
            again.stop()
    finally:
        cluster.close()
    with pytest.raises(ValueError, match="is not the folder of a kept PostgreSQL server"):
        PostgresCluster(folder=tmp_path)
