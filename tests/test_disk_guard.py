"""The disk guard on a real, small filesystem (a tmpfs of a few MB, mounted as root; where
mounting is not allowed, the same steps through the free-space seam): synced data beyond the
retention period goes first, an unsynced event never, and the staff screen is told when that
was not enough."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.config import ConfigError, load_settings
from kiosk.disk_guard import MB, DiskGuard
from kiosk.flow import KioskFlow
from kiosk.presenter import disk_line
from kiosk.store import Store
from tests.reliability.test_kiosk_faults import _fill, _tiny_disk
from tests.support.clock import FakeClock

RETENTION_DAYS = 30
OLD_EVENTS = 12000


def fill_store(store: Store, clock: FakeClock) -> tuple[set[str], set[str]]:
    """Old synced events (purgeable), old unsynced ones and today's: (unsynced ids, all ids)."""
    old = clock() - timedelta(days=RETENTION_DAYS + 10)
    payload = {"backlog": 0, "version": "x" * 200}  # a few hundred bytes an event
    synced = [store.record("device.heartbeat", payload, occurred_at=old).id
              for _ in range(OLD_EVENTS)]
    store.mark_synced(synced)
    unsynced = {store.record("device.heartbeat", payload, occurred_at=old).id for _ in range(50)}
    unsynced |= {store.record("device.heartbeat", payload).id for _ in range(50)}
    return unsynced, {e["id"] for e in store.events()}


@pytest.fixture
def small_disk(tmp_path):
    with _tiny_disk(tmp_path / "disk", size="16m") as mounted:
        yield mounted  # None when this machine does not let the test mount a tmpfs


def free_space_of(small_disk: Path | None, room_after_fill: list[int]):
    """The real statvfs on the tmpfs, or a stand-in disk with ``room_after_fill`` bytes free."""
    if small_disk is not None:
        return None  # the guard's default: shutil.disk_usage
    return lambda _folder: room_after_fill[0]


def test_low_disk_purges_synced_data_beyond_retention_and_never_an_unsynced_event(
    small_disk, tmp_path
):
    clock = FakeClock()
    data_dir = small_disk or tmp_path / "fallback"
    store = Store(data_dir / "kiosk.sqlite", clock=clock)
    unsynced, before = fill_store(store, clock)
    database_bytes = store.path.stat().st_size
    room = [1 * MB]
    if small_disk is not None:
        _fill(small_disk, leave_bytes=room[0])
    wanted_mb = 2  # more than is free, less than the old synced events take
    assert database_bytes > 2 * wanted_mb * MB
    seam = free_space_of(small_disk, room)
    guard = DiskGuard(store, wanted_mb, RETENTION_DAYS, clock, **({"free_bytes": seam} if seam
                                                                  else {}))
    assert guard.room() < wanted_mb * MB

    assert guard.check() is None  # the purge made enough room: no warning
    left = {e["id"] for e in store.events()}
    assert unsynced <= left, "an unsynced event was deleted"
    assert len(before - left) >= OLD_EVENTS - 1  # the newest event always stays
    assert store.reusable_bytes() > wanted_mb * MB  # room inside the file, reused first
    store.close()


def test_when_the_purge_is_not_enough_the_staff_screen_is_told(small_disk, tmp_path):
    clock = FakeClock()
    data_dir = small_disk or tmp_path / "fallback"
    settings = load_settings(environ={}, data_dir=str(data_dir), min_free_mb=64,
                             retention_days=RETENTION_DAYS)
    store = Store(settings.database_path, clock=clock)
    unsynced, _ = fill_store(store, clock)
    room = [1 * MB]
    if small_disk is not None:
        _fill(small_disk, leave_bytes=room[0])
    flow = KioskFlow(store, settings, clock=clock)
    if seam := free_space_of(small_disk, room):
        flow.disk.free_bytes = seam

    flow.tick()  # the guard starts from the kiosk's tick, on a worker
    flow.disk.wait(30)
    low = flow.disk.low
    assert low is not None and low.wanted_bytes == 64 * MB and low.free_bytes < 64 * MB
    assert disk_line(low) == "\u26a0 Disk nearly full: tell IT"
    assert unsynced <= {e["id"] for e in store.events()}

    # Checked about once a minute, not every tick; the warning goes once there is room.
    flow.disk.wanted_bytes = 1 * MB
    clock.advance(seconds=30)
    flow.tick()
    flow.disk.wait(30)
    assert flow.disk.low is not None
    clock.advance(seconds=31)
    flow.tick()
    flow.disk.wait(30)
    assert flow.disk.low is None and disk_line(None) is None
    store.close()


def test_min_free_mb_is_validated_and_zero_turns_the_guard_off(tmp_path):
    with pytest.raises(ConfigError, match="'min_free_mb' = -1 is not allowed: use a whole"):
        load_settings(environ={}, min_free_mb=-1)
    with pytest.raises(ConfigError, match="min_free_mb"):
        load_settings(environ={"KIOSK_MIN_FREE_MB": "lots"})
    clock = FakeClock()
    store = Store(tmp_path / "kiosk.sqlite", clock=clock)
    guard = DiskGuard(store, 0, RETENTION_DAYS, clock, free_bytes=lambda _folder: 0)
    assert guard.check_if_due() is None and guard.checked_at is None
    store.close()


def test_a_disk_that_cannot_be_measured_does_not_stop_the_kiosk(tmp_path):
    clock = FakeClock()
    store = Store(tmp_path / "kiosk.sqlite", clock=clock)

    def unmeasurable(_folder):
        raise OSError(5, "Input/output error")

    guard = DiskGuard(store, 10, RETENTION_DAYS, clock, free_bytes=unmeasurable)
    assert guard.check() is None  # logged; the kiosk goes on
    store.close()


def test_the_check_and_its_purge_never_run_on_the_ui_thread(tmp_path):
    """tick() runs on the UI thread; a purge of months of data there would freeze the screen
    (and stop the watchdog's pings). The tick must return while the check is still measuring."""
    clock = FakeClock()
    settings = load_settings(environ={}, data_dir=str(tmp_path), min_free_mb=64,
                             retention_days=RETENTION_DAYS)
    store = Store(settings.database_path, clock=clock)
    flow = KioskFlow(store, settings, clock=clock)
    measuring, release = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []

    def slow_free_bytes(_folder) -> int:
        threads.append(threading.current_thread())
        measuring.set()
        release.wait(10)
        return 1 * MB

    flow.disk.free_bytes = slow_free_bytes
    flow.tick()  # returns at once ...
    assert measuring.wait(10) and not release.is_set()
    assert threading.main_thread() not in threads  # ... the check runs elsewhere
    assert flow.disk.low is None  # the UI reads the last result; none yet
    flow.tick()  # a check under way is not started twice
    release.set()
    flow.disk.wait(10)
    assert flow.disk.low is not None and len(threads) == 2  # room() before and after the purge
    store.close()
