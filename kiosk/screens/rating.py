"""The patient's question: one tap on a face. Big, calm, each face with its word."""

from __future__ import annotations

from kivy.app import App
from kivy.properties import BooleanProperty, StringProperty

from kiosk import presenter
from kiosk.screens import theme
from kiosk.screens.patient_choices import PatientChoicesFiller
from kiosk.screens.widgets import FaceButton, KioskScreen, load_kv
from kiosk.shared.languages import is_rtl

FACE_WIDTH = 214  # design px, as rating.kv lays the faces out


class RatingScreen(KioskScreen):
    countdown_text = StringProperty("")
    heading = StringProperty("")
    subheading = StringProperty("")
    fft = BooleanProperty(False)  # the NHS FFT: its words, and a "Don't know" button
    dont_know_words = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._layout: tuple[str, int, bool] | None = None
        self._faces: dict[int, FaceButton] = {}
        self._choices: PatientChoicesFiller | None = None

    def refresh(self, flow) -> None:
        # Happiest face first in reading order: on the left, or on the right in Arabic.
        layout = (flow.settings.survey, flow.rating.scale, is_rtl(flow.language()))
        faces = presenter.survey_faces(layout[0], layout[1])
        if layout != self._layout:
            row = self.ids.faces
            row.clear_widgets()
            self._faces = {}
            for score, word, image in reversed(faces) if layout[2] else faces:
                self._faces[score] = FaceButton(score=score, word=word,
                                                source=str(theme.FACES_DIR / f"{image}.png"))
                row.add_widget(self._faces[score])
            self._layout = layout
        for score, word, _image in faces:
            self._faces[score].word = word
        self._fit_words()
        self.heading, self.subheading = presenter.question(flow.settings.survey)
        self.fft = flow.settings.survey == "fft"
        self.dont_know_words = presenter.dont_know_words()
        if self._choices is None:
            self._choices = PatientChoicesFiller(self.ids.choices.ids.row)
        self._choices.refresh(flow, App.get_running_app().u)
        self.countdown_text = presenter.patient_countdown(
            "ask", flow.rating.remaining(), flow.settings.role
        )

    def _fit_words(self) -> None:
        """One size for every face's word, the largest (up to the usual, or larger text's) at
        which no single word is wider than its face: a long word ("Schlecht" in larger text)
        would otherwise be split across two lines."""
        from kivy.core.text import Label as CoreLabel

        from kiosk.screens import fonts

        app = App.get_running_app()
        wanted = app.u * 32 * app.text_scale
        words = [word for face in self._faces.values() for word in face.word.split()]
        room = app.u * (FACE_WIDTH - 2 * 12) * 0.97  # a face's width less its padding
        size = wanted
        for word in words:
            label = CoreLabel(font_name=fonts.family_for(word), bold=True, font_size=wanted,
                              font_direction=fonts.direction_for(word),
                              font_script_name=fonts.script_tag_for(word))
            width = label.get_extents(word)[0]
            if width > room > 0:
                size = min(size, wanted * room / width)
        for face in self._faces.values():
            face.word_size = size if size < wanted else 0


load_kv(__file__)
