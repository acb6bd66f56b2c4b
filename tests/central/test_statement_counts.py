"""Each dashboard page and metrics call reads in a fixed number of statements, whatever the
number of sites and desks: on PostgreSQL every statement is a round trip (benchmark figure 16),
and a 20-site, 80-desk group once cost a page hundreds of them.

Two groups in one store, each desk with the same booked morning (``morning_events``): two
sites of one desk, and five sites of three desks; each group has a site in a half-hour zone
(Asia/Kolkata), whose windows are read from the rows rather than the hourly rollups. Every
read is counted cold (the per-hour caches emptied first, as every read is on PostgreSQL).
"""

from __future__ import annotations

from datetime import timedelta

from sync.central import auth
from sync.central.dashboard import panels, readers
from sync.central.dashboard.windows import windows
from sync.central.ingest import ingest_batch
from sync.central.metrics_query import MetricsQuery, compute_metrics
from sync.central.permissions import Scope
from sync.central.sites import get_site, update_site
from tests.benchmarks.statement_counts import CountingDb, clear_caches
from tests.support.appointments import morning_events
from tests.support.wire_events import MORNING, WireEvents, at

NOW = MORNING + timedelta(hours=3)
DAY = MORNING.date()
ZONES = ("Europe/London", "Asia/Kolkata", "Europe/Dublin", "Europe/London", "Europe/Dublin")


def _group(store, prefix: str, sites: int, desks: int) -> tuple[list, dict[str, str]]:
    names = {}
    for index in range(sites):
        site = f"{prefix} {index}"
        with store.write() as db:
            update_site(db, site, timezone=ZONES[index])
            made = [auth.add_device(db, site, f"Desk {n}")[0] for n in range(desks)]
        for n, device in enumerate(made):
            ingest_batch(store, device, morning_events(), NOW)
            names[device.id] = f"{site} · Desk {n}"
    return [get_site(store.db, f"{prefix} {index}") for index in range(sites)], names


def _reads(sites, names) -> dict:
    scope = Scope(frozenset(site.name for site in sites))
    return {
        "today": lambda db: (panels.today(db, sites, None, NOW),
                             panels.live_queue(db, sites, None, NOW)),
        "trends": lambda db: panels.trends(db, sites, DAY - timedelta(days=27), DAY, None),
        "rating by wait": lambda db: panels.rating_by_wait(db, sites, DAY, DAY, None),
        "reasons": lambda db: panels.followup_reasons(db, sites, DAY, DAY, None),
        "compare": lambda db: panels.compare(db, sites, DAY - timedelta(days=1), DAY, names),
        # Partial hours at both ends: the rows' reads as well as the rollups'.
        "metrics": lambda db: compute_metrics(db, MetricsQuery(
            MORNING - timedelta(minutes=30), NOW + timedelta(minutes=20), scope=scope), NOW),
    }


def _counts(db, sites, names) -> dict[str, int]:
    counts = {}
    for name, read in _reads(sites, names).items():
        clear_caches()
        counting = CountingDb(db)
        read(counting)
        counts[name] = counting.statements
    clear_caches()
    return counts


def test_the_pages_statements_do_not_grow_with_sites_and_desks(central_store):
    small = _group(central_store, "Small", sites=2, desks=1)
    large = _group(central_store, "Large", sites=5, desks=3)
    small_counts = _counts(central_store.db, *small)
    large_counts = _counts(central_store.db, *large)
    assert large_counts == small_counts
    # A handful each (the figures' kinds of read), not one per site or desk.
    assert max(large_counts.values()) <= 20, large_counts


def test_the_figures_are_the_same_with_and_without_the_caches(central_store):
    """The batched reads give what they gave cold once the per-hour caches are warm."""
    sites, names = _group(central_store, "Warm", sites=3, desks=2)
    for name, read in _reads(sites, names).items():
        clear_caches()
        cold = read(central_store.db)
        assert read(central_store.db) == cold, name
    clear_caches()


def test_trends_reads_the_visit_rollup_once_when_its_groups_are_cached(central_store):
    """Trends' waits, visit counts and appointments come from one read of the per-site
    ``site_visit_hours`` grouped by local day and hour (``readers.visit_local_sums``), not one
    each: on PostgreSQL each read of a 90-day range costs tens of milliseconds (benchmark
    figure 16). Cold, the waits of the groups not cached yet need their hours too (a second
    read, of the per-desk ``visit_hours`` the hourly wait cache is checked against); warm,
    the sums alone say every group's cached waits still hold, and no hour is read. These
    windows are long settled: warm, the per-site rollups are read for their signatures only
    (``local_sums.SETTLED``), cold, for the signatures and then the sums."""
    sites, names = _group(central_store, "Rollup", sites=3, desks=2)
    clear_caches()
    cold = CountingDb(central_store.db)
    _reads(sites, names)["trends"](cold)
    warm = CountingDb(central_store.db)
    _reads(sites, names)["trends"](warm)
    clear_caches()
    def reads_of(table, sqls):
        return sum(f" {table} " in sql for sql in sqls)

    assert (reads_of("site_visit_hours", cold.sql), reads_of("visit_hours", cold.sql)) == (2, 1)
    assert (reads_of("site_visit_hours", warm.sql), reads_of("visit_hours", warm.sql)) == (1, 0)
    assert all("COUNT(*)" in sql for sql in warm.sql if " site_visit_hours " in sql), warm.sql
    assert reads_of("site_rating_hours", warm.sql) == 1, warm.sql
    assert reads_of("rating_hours", warm.sql) == 0, warm.sql


def _by_local_time(db, wins, sums) -> tuple:
    return (readers.wait_lists_by(db, wins, ("day", "hour", "all"), None, sums),
            readers.visit_counts_by(db, wins, ("day", "hour", "all"), None, sums),
            readers.appointment_counts_in(db, wins, "day", None, sums),
            readers.appointment_counts_in(db, wins, "hour", None, sums))


def test_the_readers_give_the_same_from_the_shared_rollup_read(central_store):
    """Fed ``visit_local_sums``, the readers give what their own reads give: cold, with the
    waits cached by either path, and once new visits change the cached hours (a
    whole-hour zone and a half-hour one, whose windows are read from the rows)."""
    sites, _ = _group(central_store, "Shared", sites=3, desks=1)
    db = central_store.db
    wins = windows(sites, DAY - timedelta(days=2), DAY)
    clear_caches()
    own = _by_local_time(db, wins, None)
    clear_caches()
    shared = _by_local_time(db, wins, readers.visit_local_sums(db, wins))
    assert shared == own
    assert _by_local_time(db, wins, None) == own  # the waits cached by the shared read
    with central_store.write() as writing:
        device = auth.add_device(writing, sites[0].name, "Late desk")[0]
    ingest_batch(central_store, device, morning_events(), NOW)
    warm = _by_local_time(db, wins, readers.visit_local_sums(db, wins))
    clear_caches()
    assert warm == _by_local_time(db, wins, None) != own
    clear_caches()


def test_compare_adds_each_site_up_from_its_desks_read(central_store):
    """Compare reads each figure once per desk and adds a window's desks up to its site: the
    same as reading per site (a whole-hour zone and a half-hour one, whose rows are read)."""
    sites, _ = _group(central_store, "Sum", sites=3, desks=2)
    db = central_store.db
    for site in sites:  # ratings at a tablet of each site, the day before and the day itself
        with central_store.write() as writing:
            tablet = auth.add_device(writing, site.name, "Tablet")[0]
        kiosk = WireEvents()
        answers = ingest_batch(central_store, tablet, [
            kiosk.rating(4, at(-24 * 60)), kiosk.rating(2, at(30)), kiosk.rating(5, at(31))], NOW)
        assert {answer["status"] for answer in answers} == {"stored"}
    wins = windows(sites, DAY - timedelta(days=1), DAY)
    for both, one in ((readers.rating_groups_of_desks_and_sites, readers.rating_groups),
                      (readers.visit_counts_of_desks_and_sites, readers.visit_counts),
                      (readers.appointment_counts_of_desks_and_sites,
                       readers.appointment_counts_in)):
        desks, per_site = both(db, wins)
        assert desks == one(db, wins, "device")
        assert per_site == one(db, wins, "site") != {}
