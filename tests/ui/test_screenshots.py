"""Screenshots of every screen at 1280x800 and 800x480, and the touch-target size check.

The screenshots go to test-output/screenshots/<size>/ (not committed) to be looked at.
A window's size is fixed per process, so the 800x480 set is taken by a child pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.ui.conftest import window_size
from tests.ui.tour import tour

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "screenshots"
# 20 mm on the 10-inch 1280x800 design panel: sqrt(1280² + 800²) / 10 = 150.9 px per inch,
# so 20 / 25.4 * 150.9 = 118.8 px, rounded up.
TOUCH_MIN_PX = 119


def test_every_screen_is_shot_and_every_button_is_big_enough(make_kiosk, ui_clock):
    width, height = window_size()
    folder = OUT / f"{width}x{height}"
    shutil.rmtree(folder, ignore_errors=True)  # only this run's screens are there to look at
    seen, too_small = set(), []
    for name, driver in tour(make_kiosk, ui_clock):
        seen.add(driver.screen)
        shot = driver.screenshot(folder / f"{name}.png")
        assert shot.stat().st_size > 10_000, f"{shot} looks empty"
        if (width, height) == (1280, 800):
            too_small += [
                f"{name}: {_label(button)} is {button.width:.0f}x{button.height:.0f}"
                for button in driver.buttons()
                if button.opacity > 0 and min(button.size) < TOUCH_MIN_PX
            ]
    assert seen == {"pin_setup", "pin", "staff", "visit", "fix", "appointment", "rating",
                    "followup", "thanks"}
    assert not too_small, "touch targets under 20 mm:\n" + "\n".join(too_small)


def test_the_same_screens_at_the_other_size():
    """A process has one window size: a child pytest shoots the other one (800x480 from the
    default 1280x800, 1280x800 when this process already runs at 800x480)."""
    other = (800, 480) if window_size() != (800, 480) else (1280, 800)
    folder = OUT / f"{other[0]}x{other[1]}"
    shutil.rmtree(folder, ignore_errors=True)
    env = dict(os.environ, KIOSK_TEST_SIZE=f"{other[0]}x{other[1]}")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"{__file__}::test_every_screen_is_shot_and_every_button_is_big_enough"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout, result.stdout[-3000:]
    shots = list(folder.glob("*.png"))
    assert len(shots) >= 12 and all(shot.stat().st_size > 10_000 for shot in shots)


def _label(widget) -> str:
    return repr(getattr(widget, "text", "") or type(widget).__name__)
