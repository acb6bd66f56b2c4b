"""Which errors mean "PostgreSQL is out of reach" (answered 503, logged in one line)."""

import sqlite3
import threading
import time

import psycopg
from psycopg_pool import PoolTimeout

from sync.central import postgres
from sync.central.database_down import is_database_unreachable
from sync.central.storage import CentralStore, StoreUnavailable
from tests.support.postgres import PostgresCluster


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def test_a_lost_connection_or_an_empty_pool_is_out_of_reach():
    lost = _chained(sqlite3.OperationalError("server closed the connection unexpectedly"),
                    psycopg.OperationalError("server closed the connection unexpectedly"))
    assert is_database_unreachable(lost)
    try:
        try:
            raise _chained(sqlite3.OperationalError("couldn't get a connection"),
                           PoolTimeout("couldn't get a connection after 30.00 sec"))
        except sqlite3.OperationalError:
            raise StoreUnavailable("cannot open the database") from None
    except StoreUnavailable as error:
        assert is_database_unreachable(error)  # found through the suppressed context


def test_sqlite_errors_and_other_postgresql_errors_are_not():
    assert not is_database_unreachable(sqlite3.OperationalError("database is locked"))
    assert not is_database_unreachable(sqlite3.OperationalError("database or disk is full"))
    assert not is_database_unreachable(
        _chained(sqlite3.OperationalError("syntax error"), psycopg.ProgrammingError("syntax")))
    assert not is_database_unreachable(
        _chained(sqlite3.IntegrityError("duplicate key"), psycopg.IntegrityError("duplicate")))


def _connection_in_a_new_thread(store: CentralStore) -> tuple[float, BaseException | None]:
    """How long a new thread waits for its connection, and the error it met, if any."""
    outcome: dict = {}

    def ask() -> None:
        started = time.monotonic()
        try:
            store.db.execute("SELECT 1")
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join(60)
    return outcome["seconds"], outcome.get("error")


def test_a_stopped_server_is_answered_at_once_and_a_busy_pool_is_still_waited_for(tmp_path):
    """A PostgreSQL that is down is found by a new connection after about a second (not after
    the pool's 30 s wait for a busy pool); a pool that is only busy is still waited for."""
    with PostgresCluster() as cluster:
        store = CentralStore(tmp_path, database_url=cluster.create_database("down"),
                             pool_size=1)
        try:
            held = store.db  # this thread holds the pool's one connection
            release = threading.Timer(2 * postgres.DOWN_CHECK_AFTER_S,
                                      lambda: store._release(held))
            release.start()
            seconds, error = _connection_in_a_new_thread(store)
            release.join()
            assert error is None, error  # busy, not down: waited past the check, then served
            assert seconds >= 2 * postgres.DOWN_CHECK_AFTER_S * 0.9

            cluster.stop("immediate")
            seconds, error = _connection_in_a_new_thread(store)
            assert isinstance(error, StoreUnavailable) and is_database_unreachable(error)
            assert seconds < postgres.POOL_WAIT_S / 2, seconds
            cluster.start()
            seconds, error = _connection_in_a_new_thread(store)
            assert error is None, error
        finally:
            store.close()


def test_a_server_at_its_connection_limit_is_busy_not_down(tmp_path):
    """Every pooled connection lent out and the server at max_connections: the check's new
    connection is refused with "too many clients", which says the server is up. The request
    waits for a pooled connection (as for any busy pool) instead of being answered 503."""
    settings = {"max_connections": "4", "superuser_reserved_connections": "0",
                "max_wal_senders": "0", "wal_level": "minimal"}
    with PostgresCluster(settings=settings) as cluster:
        url = cluster.create_database("full")
        store = CentralStore(tmp_path, database_url=url, pool_size=3)
        try:
            held = [store.db]  # this thread's connection, then two more threads'
            lent = threading.Barrier(3)
            done = threading.Event()

            def hold() -> None:
                held.append(store.db)
                lent.wait()
                done.wait(30)

            holders = [threading.Thread(target=hold) for _ in range(2)]
            for thread in holders:
                thread.start()
            lent.wait()
            extra = psycopg.connect(url)  # the server's fourth and last connection
            try:
                release = threading.Timer(3 * postgres.DOWN_CHECK_AFTER_S,
                                          lambda: store._release(held[0]))
                release.start()
                seconds, error = _connection_in_a_new_thread(store)
                release.join()
            finally:
                extra.close()
                done.set()
                for thread in holders:
                    thread.join()
            assert error is None, error
            assert seconds >= 3 * postgres.DOWN_CHECK_AFTER_S * 0.9
        finally:
            store.close()
