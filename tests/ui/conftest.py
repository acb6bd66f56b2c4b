"""Real-window UI tests: one offscreen Kivy window per process, a fresh app per test.

Kivy is imported only inside fixtures, so collecting the logic tests never loads it. The
window size comes from KIOSK_TEST_SIZE (default 1280x800): a process can have one window
only, so other sizes run in a subprocess (see test_screenshots.py).
"""

from __future__ import annotations

import itertools
import os
import tempfile

import pytest

from tests.support.clock import FakeClock

os.environ.update(
    KIVY_NO_ARGS="1", KIVY_NO_CONFIG="1", KIVY_NO_FILELOG="1", KIVY_NO_CONSOLELOG="1"
)
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def window_size() -> tuple[int, int]:
    width, height = os.environ.get("KIOSK_TEST_SIZE", "1280x800").split("x")
    return int(width), int(height)


@pytest.fixture(scope="session")
def window():
    from kivy.config import Config

    width, height = window_size()
    Config.set("graphics", "fullscreen", "0")
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "0")
    from kivy.core.window import Window

    Window.size = (width, height)
    return Window


@pytest.fixture
def ui_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_kiosk(window, tmp_path, ui_clock, fast_hasher):
    """Build a kiosk app on the shared window; `make_kiosk(role="ratings", pin="2468")`
    (``sync_runner=`` starts and stops with the app, as the launcher's does)."""
    from tests.ui.driver import KioskDriver

    drivers = []
    count = itertools.count()

    def make(pin: str | None = "2468", **overrides) -> KioskDriver:
        if drivers:
            drivers.pop().close()  # one app on the window at a time
        data_dir = tmp_path / f"kiosk-{next(count)}"
        driver = KioskDriver.start(data_dir, ui_clock, fast_hasher, pin=pin, **overrides)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.close()
