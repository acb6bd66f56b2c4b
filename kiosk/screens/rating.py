"""The patient's question: one tap on a face. Big, calm, each face with its word."""

from __future__ import annotations

from kivy.app import App
from kivy.properties import StringProperty

from kiosk import presenter
from kiosk.screens import theme
from kiosk.screens.patient_choices import PatientChoicesFiller
from kiosk.screens.widgets import FaceButton, KioskScreen, load_kv
from kiosk.shared.languages import is_rtl


class RatingScreen(KioskScreen):
    countdown_text = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._layout: tuple[int, bool] | None = None
        self._faces: dict[int, FaceButton] = {}
        self._choices: PatientChoicesFiller | None = None

    def refresh(self, flow) -> None:
        # Happiest face first in reading order: on the left, or on the right in Arabic.
        layout = (flow.settings.rating_scale, is_rtl(flow.language()))
        faces = presenter.faces(layout[0])
        if layout != self._layout:
            row = self.ids.faces
            row.clear_widgets()
            self._faces = {}
            for score, word, image in reversed(faces) if layout[1] else faces:
                self._faces[score] = FaceButton(score=score, word=word,
                                                source=str(theme.FACES_DIR / f"{image}.png"))
                row.add_widget(self._faces[score])
            self._layout = layout
        for score, word, _image in faces:
            self._faces[score].word = word
        if self._choices is None:
            self._choices = PatientChoicesFiller(self.ids.choices.ids.row)
        self._choices.refresh(flow, App.get_running_app().u)
        self.countdown_text = presenter.patient_countdown(
            "ask", flow.rating.remaining(), flow.settings.role
        )


load_kv(__file__)
