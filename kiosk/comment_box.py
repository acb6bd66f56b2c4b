"""The comment box as plain state: the kiosk's own on-screen keyboard and the draft. No Kivy.

The keyboard's layouts are keyed by language (``LAYOUTS``), so a language is added by adding
its rows; a language with no layout of its own gets English's. Nothing typed is written
anywhere until the patient taps Send, and then only after ``kiosk.shared.redaction`` has
taken out what could identify someone.
"""

from __future__ import annotations

from kiosk.shared.redaction import redact
from kiosk.shared.wire import MAX_COMMENT_CHARS

SHIFT, BACKSPACE, SPACE = "shift", "backspace", "space"
# Rows of keys; the special keys are named by the constants above.
LAYOUTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "en": (
        tuple("1234567890"),
        tuple("qwertyuiop"),
        tuple("asdfghjkl'"),
        (SHIFT, *"zxcvbnm", ",", ".", BACKSPACE),
        ("?", "!", "-", SPACE),
    ),
}
DEFAULT_LANGUAGE = "en"


def layout_for(language: str) -> tuple[tuple[str, ...], ...]:
    """The rows for ``language`` (a BCP 47 tag such as 'en-GB' uses 'en'), else English's."""
    base = (language or DEFAULT_LANGUAGE).split("-")[0].lower()
    return LAYOUTS.get(base, LAYOUTS[DEFAULT_LANGUAGE])


def characters_of(language: str) -> frozenset[str]:
    """Every character the keyboard for ``language`` can type (either case, and the space)."""
    keys = {key for row in layout_for(language) for key in row
            if key not in (SHIFT, BACKSPACE, SPACE)}
    return frozenset(keys | {key.upper() for key in keys} | {" "})


class CommentDraft:
    """What the patient has typed so far, at most ``MAX_COMMENT_CHARS`` characters."""

    def __init__(self, language: str = DEFAULT_LANGUAGE):
        self.language = language
        self.text = ""
        self.shifted = True  # a comment starts with a capital, as on a phone

    @property
    def rows(self) -> tuple[tuple[str, ...], ...]:
        return layout_for(self.language)

    @property
    def remaining(self) -> int:
        return MAX_COMMENT_CHARS - len(self.text)

    def press(self, key: str) -> str:
        """One key of the on-screen keyboard (one of ``rows``); returns the text so far. Past
        the limit a character is not added (the counter shows 0 left). A key that is not on
        this language's keyboard is refused: what the draft holds is what the screen offers,
        the text the redaction was made and tested for."""
        if key == SHIFT:
            self.shifted = not self.shifted
        elif key == BACKSPACE:
            self.text = self.text[:-1]
        elif key == SPACE:
            self._add(" ")
        elif isinstance(key, str) and any(key in row for row in self.rows):
            self._add(key.upper() if self.shifted else key)
            self.shifted = False
        else:
            raise ValueError(f"{key!r} is not a key of the comment keyboard")
        return self.text

    def _add(self, character: str) -> None:
        if len(self.text) < MAX_COMMENT_CHARS:
            self.text += character

    def cleaned(self) -> str | None:
        """The comment as it may be written: redacted, trimmed; None when nothing is left."""
        text = redact(self.text).strip()
        return text or None
