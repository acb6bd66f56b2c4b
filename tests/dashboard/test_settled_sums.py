"""``local_sums.SettledSums``: kept only under the signature it was read with, bounded by the
values it holds, and emptied of older cuts when the cut moves on (no database needed)."""

from __future__ import annotations

import threading

from sync.central.dashboard.local_sums import LocalSums, SettledSums


def sums(days: int) -> LocalSums:
    return LocalSums({f"2026-01-{d + 1:02d}": (d, 1, 2) for d in range(days)}, {"09": (1, 2, 3)})


def test_a_kept_part_is_given_only_under_its_signature():
    cache = SettledSums()
    cache.put(("a",), (10, 4), sums(3), "2026-02-01T00")
    assert cache.get(("a",), (10, 4)) == sums(3)
    assert cache.get(("a",), (10, 5)) is None
    assert cache.get(("b",), (10, 4)) is None


def test_the_least_recently_used_go_first_beyond_the_capacity():
    one = SettledSums.ENTRY_COST + 4 * 5  # 3 days and 1 hour of the day, 3 counts + 2 each
    cache = SettledSums(capacity=3 * one)
    for name in "abc":
        cache.put((name,), (1,), sums(3), "2026-02-01T00")
    assert cache.cost == 3 * one
    cache.get(("a",), (1,))  # used: b is now the oldest
    cache.put(("d",), (1,), sums(3), "2026-02-01T00")
    assert cache.cost == 3 * one
    assert [cache.get((n,), (1,)) is not None for n in "abcd"] == [True, False, True, True]
    cache.put(("a",), (2,), sums(3), "2026-02-01T00")  # read again: replaced, not added
    assert cache.cost == 3 * one


def test_a_new_cut_drops_the_older_cuts_parts_and_an_older_one_is_not_kept():
    cache = SettledSums()
    cache.put(("a",), (1,), sums(2), "2026-02-01T00")
    cache.put(("b",), (1,), sums(2), "2026-02-02T00")
    assert cache.get(("a",), (1,)) is None and cache.get(("b",), (1,)) is not None
    cache.put(("c",), (1,), sums(2), "2026-02-01T00")  # a request from before midnight
    assert cache.get(("c",), (1,)) is None
    assert cache.cost == SettledSums.ENTRY_COST + 3 * 5


def test_threads_putting_and_getting_at_once_never_fail():
    cache = SettledSums(capacity=10 * (SettledSums.ENTRY_COST + 25))
    failures = []

    def work(offset: int) -> None:
        try:
            for n in range(3000):
                key = ((n + offset) % 37,)
                if cache.get(key, (1,)) is None:
                    cache.put(key, (1,), sums(4), "2026-02-01T00")
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n * 7,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert cache.cost <= cache.capacity
