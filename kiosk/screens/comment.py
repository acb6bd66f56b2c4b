"""The optional comment box (only where the site turned it on): the kiosk's own keyboard,
a line asking for no names or personal details, and Skip always at the top, one tap away."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk import i18n, presenter
from kiosk.comment_box import BACKSPACE, SHIFT, SPACE
from kiosk.screens.widgets import KeyButton, KioskScreen, load_kv

# Widths of the wider keys, in key widths.
WIDE_KEYS = {SHIFT: 1.5, BACKSPACE: 2, SPACE: 6}


class CommentScreen(KioskScreen):
    heading = StringProperty("")
    privacy_text = StringProperty("")
    draft = StringProperty("")
    counter_text = StringProperty("")
    countdown_text = StringProperty("")
    shifted = BooleanProperty(False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._language: tuple[str, str] | None = None

    def refresh(self, flow) -> None:
        comment = flow.rating.comment
        # The keys' rows follow the draft's language and their words the screen's.
        language = (comment.language, i18n.current())
        if language != self._language:
            self._build_keys(comment.rows)
            self._language = language
        self.heading = presenter.comment_heading()
        self.privacy_text = presenter.comment_privacy()
        self.draft = comment.text
        if comment.shifted != self.shifted:
            self.shifted = comment.shifted
            for row in self.ids.keyboard.children:
                for key in row.children:
                    key.shifted = comment.shifted
        self.counter_text = presenter.comment_counter(comment.remaining)
        self.countdown_text = presenter.patient_countdown(
            "comment", flow.rating.remaining(), flow.settings.role
        )

    def _build_keys(self, rows) -> None:
        from kivy.uix.boxlayout import BoxLayout

        board = self.ids.keyboard
        board.clear_widgets()
        for keys in rows:
            row = BoxLayout(spacing=board.spacing)
            for key in keys:
                row.add_widget(KeyButton(key=key, word=presenter.key_word(key),
                                         size_hint_x=WIDE_KEYS.get(key, 1)))
            board.add_widget(row)


load_kv(__file__)
