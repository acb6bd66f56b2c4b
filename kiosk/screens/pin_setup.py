"""First start: staff choose the PIN (typed twice) before anything else can be used."""

from __future__ import annotations

from kivy.properties import StringProperty

from kiosk import presenter
from kiosk.screens.widgets import KioskScreen, load_kv


class PinSetupScreen(KioskScreen):
    title = StringProperty("")
    explanation = StringProperty("")
    dots = StringProperty("")

    def refresh(self, flow) -> None:
        if flow.setup.stage == "choose":
            self.title = "Set up the staff PIN"
            self.explanation = (
                "Choose a PIN of 4 to 8 digits. Staff type it to open the desk screen "
                "and to close the kiosk. Patients never need it."
            )
        else:
            self.title = "Type the PIN again"
            self.explanation = "Type the same PIN once more, so a slip of the finger is caught."
        self.dots = presenter.pin_dots(len(flow.pad.digits))


load_kv(__file__)
