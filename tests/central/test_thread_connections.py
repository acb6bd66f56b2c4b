"""A thread's connection lives as long as the thread: the server's thread pool retires idle
threads and starts new ones all day, and a connection kept for each of them would run a
PostgreSQL pool dry (every request then waits and fails) and leak SQLite file handles."""

from __future__ import annotations

import threading

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
