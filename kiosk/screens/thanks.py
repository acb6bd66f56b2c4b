"""Thank you, then back to the start by itself. It never shows which face was pressed."""

from __future__ import annotations

from kivy.properties import StringProperty

from kiosk import presenter
from kiosk.screens.widgets import KioskScreen, load_kv


class ThanksScreen(KioskScreen):
    countdown_text = StringProperty("")

    def refresh(self, flow) -> None:
        self.countdown_text = presenter.patient_countdown(
            "thanks", flow.rating.remaining(), flow.settings.role
        )


load_kv(__file__)
