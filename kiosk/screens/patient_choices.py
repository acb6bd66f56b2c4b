"""The patient's row of choices under the faces and the follow-up tags: the site's languages,
each named in its own script, and larger text. Rebuilt only when the site's languages change."""

from __future__ import annotations

from kiosk.i18n import for_display
from kiosk.screens.widgets import LanguageButton, LargeTextButton
from kiosk.shared.languages import LANGUAGES


class PatientChoicesFiller:
    """Keeps one ``PatientChoices`` row in step with the flow."""

    def __init__(self, row):
        self.row = row
        self._languages: tuple[str, ...] | None = None
        self._buttons: dict[str, LanguageButton] = {}
        self._large = LargeTextButton(size_hint=(None, 1))

    def refresh(self, flow, u: float) -> None:
        languages = flow.settings.languages
        if languages != self._languages:
            self.row.clear_widgets()
            self._buttons = {}
            if len(languages) > 1:  # one language: nothing to choose, no row of one button
                for tag in languages:
                    button = LanguageButton(
                        tag=tag, size_hint=(None, 1),
                        native_name=for_display(LANGUAGES[tag].native_name, tag),
                    )
                    self._buttons[tag] = button
                    self.row.add_widget(button)
            self.row.add_widget(self._large)
            self._languages = languages
        width = u * (190 if len(self._buttons) <= 4 else 150)
        for tag, button in self._buttons.items():
            button.selected = tag == flow.rating.language
            button.width = width
        self._large.width = u * 190
        self._large.selected = flow.rating.large_text
