"""The Kivy App: builds the screens, routes every tap into the ``KioskFlow``, ticks its timers.

Nothing else lives here. Each tap is ``app.act(flow_method, *args)``: the method runs, a
refusal (``ModelError``) or a storage problem (``StoreError``, e.g. a full disk) becomes a
sentence in the banner instead of a crash, and the screen is redrawn from the flow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.logger import Logger
from kivy.properties import NumericProperty

from kiosk.errors import ModelError
from kiosk.flow import KioskFlow
from kiosk.screens import theme
from kiosk.service_notify import ServiceNotifier
from kiosk.store import StoreError
from kiosk.sync_status import SyncStatus

TICK_S = 1.0


def register_fonts() -> None:
    """A font family per script (kiosk/screens/fonts.py); DejaVu Sans is the default."""
    from kiosk.screens import fonts

    fonts.register()


class KioskApp(App):
    u = NumericProperty(1.0)  # window size / design size: every length in the .kv uses it
    text_scale = NumericProperty(1.0)  # 1.25 while a patient has chosen larger text

    def __init__(
        self,
        flow: KioskFlow,
        sync_status: Callable[[], SyncStatus] | None = None,
        site_settings: Callable[[], dict[str, Any] | None] | None = None,
        service: ServiceNotifier | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.flow = flow
        self.sync_status = sync_status or flow.store.sync_status
        # The site's settings as last fetched from the central store (None: not yet, or none).
        self.site_settings = site_settings or (lambda: None)
        self.start_hooks: list[Callable[[], None]] = []
        self.stop_hooks: list[Callable[[], None]] = []
        self.title = "Clinic front desk"
        self._ticker = None
        # systemd, when it started the kiosk as a notify service (None otherwise).
        self.service = service if service is not None else ServiceNotifier.from_environ()
        self._watchdog = None

    def build(self):
        from kivy.core.window import Window

        register_fonts()
        from kiosk import i18n
        from kiosk.screens.root import KioskRoot

        # The site's catalogs are compiled now, so a patient's first tap on a language does
        # not wait for one (a language the site adds later is compiled at its first use).
        for tag in {*self.flow.settings.languages, self.flow.settings.staff_screen_language}:
            i18n.translations(tag)

        Window.bind(on_resize=self._rescale, on_request_close=self._on_request_close,
                    on_touch_down=self._on_any_touch)
        self._rescale(Window, *Window.size)
        return KioskRoot()

    def on_start(self) -> None:
        for hook in self.start_hooks:
            hook()
        self._ticker = Clock.schedule_interval(self.tick, TICK_S)
        self.refresh()
        self._tell_service_manager()

    def on_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.service is not None:
            self.service.stopping()
        from kivy.core.window import Window

        Window.unbind(on_resize=self._rescale, on_request_close=self._on_request_close,
                      on_touch_down=self._on_any_touch, on_flip=self._first_frame)
        for hook in self.stop_hooks:
            hook()

    # -- the only two ways anything changes: a tap, or the clock -----------------------------

    def act(self, action: Callable[..., Any], *args: Any) -> None:
        try:
            action(*args)
        except (ModelError, StoreError) as error:
            self.flow.notify(str(error))
        except Exception as error:  # a kiosk must not crash in front of a patient
            Logger.exception(f"Kiosk: {action.__name__} failed: {error}")
            self.flow.notify("Something went wrong; the last tap may not have been saved. "
                             "If it happens again, call IT.")
        self.refresh()

    def tick(self, _dt: float = 0) -> None:
        self.act(self._tick)

    def _tick(self) -> None:
        self.flow.offer_site_settings(self.site_settings())
        self.flow.tick()

    def refresh(self) -> None:
        if self.root is not None:
            from kiosk.screens.translate import _

            # The language first: the screens' words and layout direction follow it.
            _.switch(self.flow.language())
            self.text_scale = self.flow.text_scale()
            self.root.show(self.flow)

    def leave(self) -> None:
        if not self.flow.can_leave():
            raise ModelError("Unlock the staff screen to close the kiosk.")
        self.stop()

    # -- systemd (kiosk/service_notify.py) ----------------------------------------------------

    def _tell_service_manager(self) -> None:
        """READY=1 once the first frame is on the glass (not when the process merely started:
        a kiosk stuck before its first frame is not ready), then WATCHDOG=1 from Kivy's clock,
        which runs on the UI thread: a hung UI stops the pings and systemd restarts it."""
        if self.service is None:
            return
        from kivy.core.window import Window

        Window.bind(on_flip=self._first_frame)
        if (interval := self.service.watchdog_interval_s) is not None:
            self._watchdog = Clock.schedule_interval(lambda _dt: self.service.ping(), interval)

    def _first_frame(self, window, *_args) -> None:
        window.unbind(on_flip=self._first_frame)
        self.service.ready()

    # -- window events -----------------------------------------------------------------------

    def _on_any_touch(self, _window, _touch) -> None:
        self.flow.touched()

    def _on_request_close(self, *_args, **_kwargs) -> bool:
        """True keeps the window open: closing (Escape, Alt+F4) needs the staff screen open."""
        return not self.flow.can_leave()

    def _rescale(self, _window, width: int, height: int) -> None:
        self.u = theme.scale_for(width, height)
