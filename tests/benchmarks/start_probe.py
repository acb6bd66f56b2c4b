"""Run in a fresh process by figure 2: start an app, and at its first frame print one JSON line
``{"first_frame_s": ..., "rss_mb": ...}`` and exit at once.

``python -m tests.benchmarks.start_probe kiosk|bare DATA_DIR``; ``BENCH_T0`` is the parent's
``time.time()`` just before it spawned us, so the figure includes interpreter start-up and every
import, as a person switching the kiosk on would wait for them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

WINDOW_SIZE = (1280, 800)  # the kiosk's own windowed size; the bare app gets the same window


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _report_first_flip() -> None:
    from kivy.core.window import Window

    def on_flip(*_args) -> None:
        elapsed = time.time() - float(os.environ["BENCH_T0"])
        print(json.dumps({"first_frame_s": elapsed, "rss_mb": _rss_mb()}), flush=True)
        # Nothing after the first frame is being measured; a clean Kivy shutdown only adds time.
        os._exit(0)

    Window.bind(on_flip=on_flip)


def bare_app():
    from kivy.config import Config

    Config.set("graphics", "width", str(WINDOW_SIZE[0]))
    Config.set("graphics", "height", str(WINDOW_SIZE[1]))
    from kivy.app import App
    from kivy.uix.label import Label

    class BareApp(App):
        def build(self):
            _report_first_flip()
            return Label(text="Hello")

    return BareApp()


def kiosk_app(data_dir: Path):
    # What `main.py kiosk --windowed --data DIR` does, up to app.run().
    from kiosk.config import load_settings
    from kiosk.launcher import build_kiosk, configure_kivy
    from kiosk.store import Store

    # A site offering as many languages as it may, Arabic and Chinese among them; every other
    # catalog and the Arabic and Chinese fonts are loaded before the first frame too (below).
    settings = load_settings(environ={}, data_dir=str(data_dir),
                             languages="en,es,fr,de,ar,zh-Hans")
    store = Store(settings.database_path)
    configure_kivy(windowed=True)
    app = build_kiosk(settings, store=store)
    original_build = app.build

    def build():
        root = original_build()
        _load_every_catalog_and_font()
        _report_first_flip()
        return root

    app.build = build
    return app


def _load_every_catalog_and_font() -> None:
    """Every catalog compiled and every font family opened by FreeType: the most a kiosk can
    hold for its languages (Kivy opens a font only when a label first draws with it)."""
    from kivy.core.text import Label as CoreLabel

    from kiosk import i18n
    from kiosk.screens import fonts
    from kiosk.shared.languages import LANGUAGES

    for tag in LANGUAGES:
        i18n.translations(tag)
    for tag in ("en", "ar", "zh-Hans"):
        # The catalog's words as they are: the Arabic shaper is imported by the first Arabic
        # screen (a patient's tap, in figure 9), not at start.
        text = i18n.translations(tag).gettext("Thank you!")
        for bold in (False, True):
            CoreLabel(text=text, font_name=fonts.family_for(text), bold=bold,
                      font_direction=fonts.direction_for(text),
                      font_script_name=fonts.script_tag_for(text)).refresh()


def main(argv: list[str]) -> int:
    which, data_dir = argv[0], Path(argv[1])
    app = kiosk_app(data_dir) if which == "kiosk" else bare_app()
    app.run()
    return 1  # on_flip exits the process; getting here means no frame was ever drawn


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
