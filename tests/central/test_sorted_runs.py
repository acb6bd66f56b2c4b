"""The bounded cache every kept run lives in (``hour_runs.SortedRuns``)."""

from __future__ import annotations

from sync.central.hour_runs import SortedRuns


def test_a_run_is_given_back_only_under_the_signature_it_was_kept_with():
    runs = SortedRuns()
    runs.put(("site", "2026-03-02T09"), (3, 7), (1.0, 2.0, 4.0))
    assert runs.get(("site", "2026-03-02T09"), (3, 7)) == (1.0, 2.0, 4.0)
    assert runs.get(("site", "2026-03-02T09"), (3, 8)) is None  # a change since
    assert runs.get(("site", "2026-03-02T10"), (3, 7)) is None


def test_the_oldest_runs_go_first_and_each_run_costs_its_entry_too():
    cost = SortedRuns.ENTRY_COST
    runs = SortedRuns(max_values=3 * (1 + cost))  # room for three one-value runs
    for hour in range(4):
        runs.put(("site", hour), (1, 0), (float(hour),))
    assert len(runs) == 3
    assert runs.get(("site", 0), (1, 0)) is None
    assert runs.get(("site", 3), (1, 0)) == (3.0,)
    runs.put(("site", 3), (2, 1), (3.0, 5.0))  # replaced: its old cost given back
    assert len(runs) == 2 and runs.get(("site", 1), (1, 0)) is None
