"""The staff PIN: opens the desk screen; counts wrong PINs and shows the pause they cause."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk import presenter
from kiosk.screens.widgets import KioskScreen, load_kv


class PinScreen(KioskScreen):
    dots = StringProperty("")
    lock_text = StringProperty("")
    locked = BooleanProperty(False)
    can_go_back = BooleanProperty(False)

    def refresh(self, flow) -> None:
        seconds = flow.pin.seconds_locked()
        self.locked = seconds > 0
        self.lock_text = presenter.lockout_text(seconds) if self.locked else ""
        self.dots = presenter.pin_dots(len(flow.pad.digits))
        self.can_go_back = flow.settings.role == "ratings"


load_kv(__file__)
