"""The patient's question: one tap on a face. Big, calm, each face with its word."""

from __future__ import annotations

from kivy.properties import StringProperty

from kiosk import presenter
from kiosk.screens import theme
from kiosk.screens.widgets import FaceButton, KioskScreen, load_kv


class RatingScreen(KioskScreen):
    countdown_text = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._scale: int | None = None

    def refresh(self, flow) -> None:
        scale = flow.settings.rating_scale
        if scale != self._scale:
            row = self.ids.faces
            row.clear_widgets()
            for score, word, image in presenter.faces(scale):
                row.add_widget(FaceButton(score=score, word=word,
                                          source=str(theme.FACES_DIR / f"{image}.png")))
            self._scale = scale
        self.countdown_text = presenter.patient_countdown(
            "ask", flow.rating.remaining(), flow.settings.role
        )


load_kv(__file__)
