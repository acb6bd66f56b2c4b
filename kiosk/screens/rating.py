"""The patient's question: one tap on a face. Big, calm, each face with its word."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk import presenter
from kiosk.screens import theme
from kiosk.screens.widgets import FaceButton, KioskScreen, load_kv


class RatingScreen(KioskScreen):
    countdown_text = StringProperty("")
    heading = StringProperty("")
    subheading = StringProperty("")
    fft = BooleanProperty(False)  # the NHS FFT: its words, and a "Don't know" button
    dont_know_words = StringProperty(presenter.DONT_KNOW_WORDS)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._shown: tuple[str, int] | None = None

    def refresh(self, flow) -> None:
        survey, scale = flow.settings.survey, flow.rating.scale
        if (survey, scale) != self._shown:
            row = self.ids.faces
            row.clear_widgets()
            for score, word, image in presenter.survey_faces(survey, scale):
                row.add_widget(FaceButton(score=score, word=word,
                                          source=str(theme.FACES_DIR / f"{image}.png")))
            self.heading, self.subheading = presenter.question(survey)
            self.fft = survey == "fft"
            self._shown = (survey, scale)
        self.countdown_text = presenter.patient_countdown(
            "ask", flow.rating.remaining(), flow.settings.role
        )


load_kv(__file__)
