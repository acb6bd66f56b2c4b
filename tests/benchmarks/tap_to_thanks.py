"""What one tap on a face costs: `python tests/benchmarks/tap_to_thanks.py [taps]`.

A ratings-tablet kiosk (no follow-up, so a face goes straight to "thank you") in an offscreen
1280x800 window over a real on-disk store (WAL, synchronous=FULL). For each tap it measures,
from the moment the touch is released (the face's on_release handler runs synchronously):

- handler -> thanks screen current: the durable commit + the screen switch + the redraw of
  the screen's properties (what the UI thread is blocked for);
- handler -> frame drawn: the same plus one full frame (software GL here, so a pessimistic
  upper bound: a tablet GPU draws a frame in a few ms);
- the bare `store.record()` of a rating (one durable commit), for comparison.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.update(KIVY_NO_ARGS="1", KIVY_NO_CONFIG="1", KIVY_NO_FILELOG="1",
                  KIVY_NO_CONSOLELOG="1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def main(taps: int = 50) -> None:
    from kivy.config import Config

    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    from kivy.core.window import Window
    from kivy.tests.common import UnitTestTouch

    from tests.support.clock import FakeClock
    from tests.ui.driver import KioskDriver

    clock = FakeClock()
    data = ROOT / "test-output" / "bench"  # on the project disk, not a tmpfs: real fsyncs
    data.mkdir(parents=True, exist_ok=True)
    kiosk = KioskDriver.start(Path(tempfile.mkdtemp(dir=data)), clock, None, pin=None,
                              role="ratings", followup_for="never")
    kiosk.flow._pin_set = True  # straight to the faces; the PIN is not what is measured
    kiosk.app.refresh()
    kiosk.idle(3)
    to_screen, to_frame = [], []
    for _ in range(taps):
        face = kiosk.button("Very good")
        touch = UnitTestTouch(*face.to_window(*face.center))
        touch.touch_down()
        start = time.perf_counter()
        touch.touch_up()
        assert kiosk.screen == "thanks", kiosk.screen
        to_screen.append(time.perf_counter() - start)
        Window.dispatch("on_draw")
        Window.flip()
        to_frame.append(time.perf_counter() - start)
        kiosk.advance(kiosk.flow.settings.thanks_s)
        assert kiosk.screen == "rating"
        kiosk.idle(1)
    commits = []
    for _ in range(taps):
        start = time.perf_counter()
        kiosk.store.record("rating.submitted", {"score": 5, "scale": 5, "tags": [],
                                                "misuse": False})
        commits.append(time.perf_counter() - start)
    saved = kiosk.store._query("SELECT COUNT(*) AS n FROM ratings")[0]["n"]
    kiosk.close()

    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        return f"median {statistics.median(values) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms"

    print(f"{taps} taps, {saved} ratings stored")
    print(f"tap -> thanks screen current: {ms(to_screen)}")
    print(f"tap -> thanks frame drawn:    {ms(to_frame)}")
    print(f"one durable commit alone:     {ms(commits)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
