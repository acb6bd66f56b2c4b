"""One optional question after a face: what could we do better? Up to six tags, no free text."""

from __future__ import annotations

from kivy.app import App
from kivy.properties import StringProperty

from kiosk import presenter
from kiosk.screens.patient_choices import PatientChoicesFiller
from kiosk.screens.widgets import KioskScreen, TagButton, load_kv


class FollowupScreen(KioskScreen):
    countdown_text = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._tags: tuple[str, ...] | None = None
        self._buttons: dict[str, TagButton] = {}
        self._choices: PatientChoicesFiller | None = None

    def refresh(self, flow) -> None:
        tags = flow.settings.followup_tags
        if tags != self._tags:
            grid = self.ids.tags
            grid.clear_widgets()
            self._buttons = {tag: TagButton(tag=tag, word=presenter.tag_word(tag)) for tag in tags}
            for button in self._buttons.values():
                grid.add_widget(button)
            self._tags = tags
        for tag, button in self._buttons.items():
            button.selected = tag in flow.rating.tags
            button.word = presenter.tag_word(tag)
        if self._choices is None:
            self._choices = PatientChoicesFiller(self.ids.choices.ids.row)
        self._choices.refresh(flow, App.get_running_app().u)
        self.countdown_text = presenter.patient_countdown(
            "followup", flow.rating.remaining(), flow.settings.role
        )


load_kv(__file__)
