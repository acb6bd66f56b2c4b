"""Which errors mean "PostgreSQL is out of reach" (answered 503, logged in one line)."""

import sqlite3

import psycopg
from psycopg_pool import PoolTimeout

from sync.central.database_down import is_database_unreachable
from sync.central.storage import StoreUnavailable


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
