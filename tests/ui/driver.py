"""Drive the kiosk app in a real (offscreen) window: tap real widgets, tick, take screenshots.

Imported by fixtures only, once the window has been configured.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kivy.app import App
from kivy.base import EventLoop
from kivy.core.window import Window
from kivy.tests.common import UnitTestTouch
from kivy.uix.behaviors import ButtonBehavior

from kiosk.config import load_settings
from kiosk.launcher import build_kiosk


class KioskDriver:
    def __init__(self, app, clock):
        self.app = app
        self.clock = clock
        self.flow = app.flow
        self.store = app.flow.store

    @classmethod
    def start(cls, data_dir: Path, clock, hasher, pin: str | None = "2468", sync_runner=None,
              enrolment=None, machine=None, service=None, **overrides):
        if enrolment is None:  # an enrolling kiosk takes its site and name from the store
            overrides.setdefault("device_name", "desk-1")
            overrides.setdefault("site", "Riverside Dental")
        settings = load_settings(environ={}, data_dir=str(data_dir), **overrides)
        app = build_kiosk(settings, clock=clock, hasher=hasher, sync_runner=sync_runner,
                          enrolment=enrolment, machine=machine, service=service)
        if pin is not None:
            app.flow.pin.set_pin(pin)
            app.flow._pin_set = True
        app._run_prepare()
        EventLoop.ensure_window()
        driver = cls(app, clock)
        driver.idle()
        return driver

    def close(self) -> None:
        self.app.dispatch("on_stop")
        for child in list(Window.children):
            Window.remove_widget(child)
        App._running_app = None
        self.app.flow.disk.wait(10)  # as the launcher does: a check under way ends first
        self.store.close()

    # -- time and frames ---------------------------------------------------------------------

    def idle(self, frames: int = 2) -> None:
        for _ in range(frames):
            EventLoop.idle()

    def advance(self, seconds: float) -> None:
        """Move the fake clock, then let the kiosk's once-a-second tick see it."""
        self.clock.advance(seconds=seconds)
        self.app.tick()
        self.idle()

    # -- finding and tapping real widgets -------------------------------------------------------

    @property
    def screen(self) -> str:
        return self.app.root.manager.current

    def buttons(self):
        """Every tappable widget on the current screen and the banner."""
        roots = [self.app.root.manager.current_screen, self.app.root.ids.banner]
        found = []
        for root in roots:
            for widget in root.walk(restrict=True):
                if isinstance(widget, ButtonBehavior) and not widget.disabled:
                    found.append(widget)
        return found

    def button(self, text: str):
        matches = [b for b in self.buttons() if _words(b) == text]
        if not matches:
            matches = [b for b in self.buttons() if text in _words(b)]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} buttons say {text!r} on {self.screen}: "
                              f"{[_words(b) for b in self.buttons()]}")
        return matches[0]

    def button_exact(self, text: str):
        """The one button whose words are exactly ``text`` (a key of a keyboard)."""
        matches = [b for b in self.buttons() if _words(b) == text]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} buttons say exactly {text!r} on {self.screen}")
        return matches[0]

    def tap(self, target, frames: int = 1) -> None:
        widget = self.button(target) if isinstance(target, str) else target
        touch = UnitTestTouch(*widget.to_window(*widget.center))
        touch.touch_down()
        touch.touch_up()
        self.idle(frames)

    def row(self, ticket: str, text: str):
        """The button saying ``text`` in the queue row of ``ticket``."""
        from kiosk.screens.widgets import QueueRow

        screen = self.app.root.manager.current_screen
        for row in screen.walk(restrict=True):
            if isinstance(row, QueueRow) and row.ticket == ticket:
                for widget in row.walk(restrict=True):
                    if isinstance(widget, ButtonBehavior) and text in _words(widget):
                        return widget
        raise LookupError(f"no {text!r} button in the row of {ticket}")

    def whole_visit(self) -> tuple[str, str]:
        """Check in, call in and check out one visit by tapping; (visit id, ticket)."""
        self.tap("Check in")
        visit_id = [e for e in self.flow.desk.queue() if e.status == "waiting"][-1].visit_id
        ticket = self.store.visit(visit_id)["ticket"]
        self.tap(self.row(ticket, "Call in"))
        self.tap(self.row(ticket, "Check out"))
        return visit_id, ticket

    def corner(self):
        from kiosk.screens.widgets import CornerArea

        screen = self.app.root.manager.current_screen
        return next(w for w in screen.walk(restrict=True) if isinstance(w, CornerArea))

    def type_pin(self, pin: str) -> None:
        for digit in pin:
            self.tap(digit)
        self.tap("OK")

    def banner(self) -> str:
        return self.app.root.ids.banner.text

    # -- screenshots ----------------------------------------------------------------------------

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.idle(2)
        Window.dispatch("on_draw")
        written = Window.screenshot(name=str(path))
        shutil.move(written, path)
        return path


def _words(widget) -> str:
    texts = [getattr(widget, "text", "")]
    for child in widget.walk(restrict=True):
        if child is not widget and hasattr(child, "text"):
            texts.append(child.text)
    return " ".join(t for t in texts if t)
