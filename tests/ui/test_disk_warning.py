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


def test_the_sync_corner_fits_the_top_bar_with_every_warning_at_once(make_kiosk):
    """The worst corner: the disk warning, refused events, a refused token and a backlog. It
    must stay inside the top bar at this window's size (1280x800 here; 800x480 in a child)."""
    from datetime import timedelta

    from kiosk.sync_status import SyncStatus

    desk = make_kiosk(staff_lock_s=3600)
    desk.type_pin("2468")
    now = desk.flow.clock()
    desk.app.sync_status = lambda: SyncStatus(
        backlog=1284, rejected=12, last_synced_at=now - timedelta(hours=3), configured=True,
        running=True, consecutive_failures=0, token_refused=True,
    )
    desk.flow.disk.free_bytes = lambda _folder: 12 * MB
    desk.advance(CHECK_EVERY.total_seconds())
    desk.flow.disk.wait(10)
    desk.advance(1)
    staff = desk.app.root.manager.current_screen
    corner = next(w for w in staff.walk() if getattr(w, "text", None) == staff.sync_text)
    bar = corner.parent
    assert "Disk nearly full" in corner.text and "enrol it again" in corner.text
    from kivy.core.window import Window

    shot = desk.screenshot(OUT / f"sync-corner-worst-{Window.width}x{Window.height}.png")
    assert shot.stat().st_size > 10_000
    # The text as drawn (texture) stays within the bar: nothing spills over the queue below
    # or off the top of the window.
    text_top = corner.center_y + corner.texture_size[1] / 2
    text_bottom = corner.center_y - corner.texture_size[1] / 2
    assert text_bottom >= bar.y - 1 and text_top <= bar.top + 1, (
        f"the corner's text ({text_bottom:.0f}-{text_top:.0f}) spills out of the top bar "
        f"({bar.y:.0f}-{bar.top:.0f})"
    )


def test_the_sync_corner_fits_at_the_other_size():
    """A process has one window size: the same check in a child at the other one."""
    import os
    import subprocess
    import sys

    from tests.ui.conftest import window_size

    other = (800, 480) if window_size() != (800, 480) else (1280, 800)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"{__file__}::"
         "test_the_sync_corner_fits_the_top_bar_with_every_warning_at_once"],
        cwd=OUT.parents[1], env=dict(os.environ, KIOSK_TEST_SIZE=f"{other[0]}x{other[1]}"),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-3000:]
