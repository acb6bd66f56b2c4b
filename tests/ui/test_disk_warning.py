"""The disk guard's warning on the real staff screen (offscreen window), with a screenshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.disk_guard import CHECK_EVERY, MB

pytestmark = pytest.mark.ui
OUT = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def test_the_staff_screen_says_when_the_disk_is_almost_full(make_kiosk):
    desk = make_kiosk(staff_lock_s=3600)
    desk.type_pin("2468")
    desk.flow.check_in()
    desk.flow.disk.free_bytes = lambda _folder: 12 * MB  # a stand-in for a nearly full disk
    desk.advance(CHECK_EVERY.total_seconds())
    desk.flow.disk.wait(10)  # the check runs on its worker; the next tick shows what it found
    desk.advance(1)
    staff = desk.app.root.manager.current_screen
    assert desk.screen == "staff"
    assert staff.sync_text.startswith("\u26a0 Disk nearly full: tell IT\n")
    assert staff.sync_trouble
    shot = desk.screenshot(OUT / "disk-warning.png")
    assert shot.stat().st_size > 10_000

    desk.flow.disk.free_bytes = lambda _folder: 900 * MB  # IT made room
    desk.advance(CHECK_EVERY.total_seconds())
    desk.flow.disk.wait(10)
    desk.advance(1)
    assert "Disk nearly full" not in staff.sync_text and not staff.sync_trouble
