"""Figure 9: one tap on a language button until the screen is drawn in that language.

A ratings tablet offering six languages (Arabic and Chinese among them) in an offscreen
1280x800 window, as a patient sees it. Each tap goes through the real path: the touch, the
button's on_release, ``app.act`` (the flow's choice, then the refresh that switches every
kv rule and the face words and lays Arabic out right to left), then one full frame. The taps
cycle through the languages, so every one is a real switch; the very first tap of each language
is included. The baseline is the same tap and frame on the language already shown, right after
each switch: the cost of a tap and a redraw with no switch. The GL here is Mesa's software
renderer, whose 1280x800 frame alone takes 50-200 ms on this shared machine (a tablet's GPU
draws one in a few ms). So two figures: the tap's own work until the screen is ready to draw
(every new text rendered and its texture uploaded, ``glFinish``-ed), which the target applies
to, and the same plus the software-drawn frame, for information.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from tests.benchmarks.common import ROOT, median, percentile, row

LANGUAGES = "en,es,ar,zh-Hans,fr,de"
TARGET_P95_MS = 100.0


def _kivy_env() -> None:
    os.environ.update(KIVY_NO_ARGS="1", KIVY_NO_CONFIG="1", KIVY_NO_FILELOG="1",
                      KIVY_NO_CONSOLELOG="1")
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def _timed_tap(button) -> tuple[float, float]:
    """(the tap's own work: the flow, the kv rules, the new texts rendered and uploaded; and
    that plus the frame, drawn to the end).

    ``glFinish`` before and after: the GL driver here is Mesa's software renderer, which queues
    frames and draws them later. Without it a tap that uploads a texture waits for every frame
    still queued (seen as 0.5-0.8 s on this shared machine), and a tap that uploads none is
    timed before its frame is drawn at all; with it each tap pays for exactly its own frame."""
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.graphics.opengl import glFinish
    from kivy.tests.common import UnitTestTouch

    glFinish()
    touch = UnitTestTouch(*button.to_window(*button.center))
    touch.touch_down()
    start = time.perf_counter()
    touch.touch_up()
    Clock.tick_draw()  # every label whose words changed renders its text here
    for widget in Window.children[0].walk(restrict=True):
        _ = getattr(widget, "texture", None)  # ... and uploads it when first asked for
    glFinish()
    work = time.perf_counter() - start
    Window.dispatch("on_draw")
    Window.flip()
    glFinish()
    return work, time.perf_counter() - start


def _title(kiosk):
    from kivy.uix.label import Label

    screen = kiosk.app.root.manager.current_screen
    return max((w for w in screen.walk(restrict=True) if isinstance(w, Label) and w.text),
               key=lambda label: label.font_size)


def measure(taps: int) -> tuple[list[float], list[float]]:
    _kivy_env()
    from kivy.config import Config

    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    from kiosk import i18n
    from kiosk.screens.widgets import LanguageButton
    from tests.support.clock import FakeClock
    from tests.ui.driver import KioskDriver

    data = ROOT / "test-output" / "bench"
    data.mkdir(parents=True, exist_ok=True)
    kiosk = KioskDriver.start(Path(tempfile.mkdtemp(dir=data)), FakeClock(), None, pin=None,
                              role="ratings", languages=LANGUAGES)
    kiosk.flow._pin_set = True
    kiosk.app.refresh()
    kiosk.idle(3)
    order = LANGUAGES.split(",")
    switches, same = [], []
    try:
        for index in range(taps):
            tag = order[(index + 1) % len(order)]
            buttons = {b.tag: b for b in kiosk.buttons() if isinstance(b, LanguageButton)}
            switches.append(_timed_tap(buttons[tag]))
            title = _title(kiosk)
            # Drawn, not only set: the texture on screen holds the new language's words.
            assert title.text == i18n.translate(tag, "How was your visit today?")
            assert title._label.text == title.text, "the frame drew a stale texture"
            same.append(_timed_tap(buttons[tag]))
            kiosk.idle(1)
    finally:
        kiosk.close()
    return switches, same


def run(quick: bool) -> list[dict]:
    switches, same = measure(60 if quick else 300)
    taps = len(switches)
    work = [w * 1000 for w, _total in switches]
    work_base = [w * 1000 for w, _total in same]
    total = [t * 1000 for _work, t in switches]
    total_base = [t * 1000 for _work, t in same]
    work_p95 = percentile(work, 0.95)
    return [
        row(f"12. language switch, tap to screen ready to draw, median ({taps} taps)",
            median(work), "ms", median(work_base), "(information)", None),
        row(f"12. language switch, tap to screen ready to draw, p95 ({taps} taps)",
            work_p95, "ms", percentile(work_base, 0.95), f"<= {TARGET_P95_MS:g} ms",
            work_p95 <= TARGET_P95_MS),
        row(f"12. language switch, tap to redrawn screen, median ({taps} taps)",
            median(total), "ms", median(total_base), "(information: software GL)", None),
        # The issue's own figure: tap to the redrawn frame. Measured as it is, against the
        # issue's 100 ms, with no allowance: on this machine's software GL even a tap that
        # changes no language takes longer than that to draw, which the baseline shows.
        row(f"12. language switch, tap to redrawn screen, p95 ({taps} taps)",
            percentile(total, 0.95), "ms", percentile(total_base, 0.95),
            f"<= {TARGET_P95_MS:g} ms (software GL)",
            percentile(total, 0.95) <= TARGET_P95_MS),
    ]


if __name__ == "__main__":
    for line in run(quick=False):
        print(line)
