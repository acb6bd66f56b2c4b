"""The group-commit writer: batches share a transaction, yet each stays atomic on its own."""

from __future__ import annotations

import threading

import pytest

from sync.central.group_commit import GroupCommitWriter, WriterClosed
from sync.central.storage import CentralStore


class BatchFailed(Exception):
    """A batch's own failure, raised on purpose."""


@pytest.fixture
def store(tmp_path):
    store = CentralStore(tmp_path / "central")
    with store.write() as db:
        db.execute("CREATE TABLE t (name TEXT)")
    yield store
    store.close()


def _insert(name: str, fail: bool = False):
    def work(db):
        db.execute("INSERT INTO t (name) VALUES (?)", [name])
        if fail:
            raise BatchFailed(name)
        return name
    return work


def _names(store: CentralStore) -> list[str]:
    return [row[0] for row in store.db.execute("SELECT name FROM t ORDER BY name")]


def test_a_failing_batch_is_rolled_back_alone_and_the_rest_of_its_group_commits(store):
    writer = GroupCommitWriter(store)
    try:
        # Holding the write lock keeps the writer waiting, so all three land in one group.
        with store.write_lock:
            futures = [writer.submit(_insert("a")), writer.submit(_insert("b", fail=True)),
                       writer.submit(_insert("c"))]
        assert futures[0].result(10) == "a"
        with pytest.raises(BatchFailed):
            futures[1].result(10)
        assert futures[2].result(10) == "c"
    finally:
        writer.close()
    assert _names(store) == ["a", "c"]


def test_an_answer_comes_only_after_the_commit(store):
    writer = GroupCommitWriter(store)
    try:
        future = writer.submit(_insert("a"))
        future.result(10)
        # Another connection (another thread's) sees it: it is committed, not just written.
        seen: list[str] = []
        reader = threading.Thread(target=lambda: seen.extend(_names(store)))
        reader.start()
        reader.join()
        assert seen == ["a"]
    finally:
        writer.close()


def test_a_closed_writer_takes_no_more_batches(store):
    writer = GroupCommitWriter(store)
    writer.close()
    with pytest.raises(WriterClosed):
        writer.submit(_insert("a"))
