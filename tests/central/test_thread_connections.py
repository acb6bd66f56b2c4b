"""A thread's connection lives as long as the thread: the server's thread pool retires idle
threads and starts new ones all day, and a connection kept for each of them would run a
PostgreSQL pool dry (every request then waits and fails) and leak SQLite file handles."""

from __future__ import annotations

import gc
import threading
import time

from sync.central import postgres
from sync.central.storage import CentralStore


def test_connections_of_ended_threads_are_handed_back(tmp_path, central_database_url):
    store = CentralStore(tmp_path, database_url=central_database_url, pool_size=3)
    try:
        answers = []

        def read_once() -> None:
            answers.append(store.db.execute("SELECT 1").fetchone()[0])

        for _ in range(12):  # four times the pool: each thread must give its connection back
            thread = threading.Thread(target=read_once)
            thread.start()
            thread.join(30)
        assert answers == [1] * 12
        assert len(store._all) <= 2  # this thread's (opened by the migration) and none kept
    finally:
        store.close()


def test_a_broken_postgresql_connection_is_replaced_in_the_same_thread(postgres_url, tmp_path):
    store = CentralStore(None, database_url=postgres_url, pool_size=3)
    try:
        first = store.db
        first.conn.raw.close()  # as a server restart or a failover leaves it
        assert store.db is not first
        assert store.db.execute("SELECT 1").fetchone()[0] == 1
    finally:
        store.close()


def test_a_thread_that_waited_for_its_connection_still_hands_it_back(postgres_url, tmp_path):
    """A thread that found the pool busy waited past the first second (its pool's timeout
    was caught, the server checked): once it ends, its connection is back in the pool at once,
    not when the cyclic garbage collector gets round to it (switched off here, as it may as
    well not run for a long while)."""
    store = CentralStore(None, database_url=postgres_url, pool_size=1)
    collecting = gc.isenabled()
    gc.disable()
    try:
        taken = threading.Event()
        release = threading.Event()

        def hold_then_end() -> None:
            store.db.execute("SELECT 1")
            taken.set()
            release.wait(30)

        # The pool's one connection is lent to a thread (the migration's went back with it).
        store._release(store.db)
        holder = threading.Thread(target=hold_then_end)
        holder.start()
        taken.wait(30)
        threading.Timer(2 * postgres.DOWN_CHECK_AFTER_S, release.set).start()
        answers = []
        waiter = threading.Thread(
            target=lambda: answers.append(store.db.execute("SELECT 2").fetchone()[0]))
        waiter.start()
        waiter.join(60)
        holder.join(30)
        assert answers == [2]
        started = time.monotonic()
        after = threading.Thread(
            target=lambda: answers.append(store.db.execute("SELECT 3").fetchone()[0]))
        after.start()
        after.join(60)
        assert answers == [2, 3]
        assert time.monotonic() - started < postgres.DOWN_CHECK_AFTER_S
    finally:
        if collecting:
            gc.enable()
        store.close()
