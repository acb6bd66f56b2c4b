"""The refusals of the kiosk's own rules, in one place.

Every one is a ``ModelError`` whose message is a sentence for the person at the desk: the app
shows it in the banner instead of crashing. Storage problems are ``kiosk.store.StoreError``.
"""

from __future__ import annotations

from kiosk.presenter import lockout_text


class ModelError(ValueError):
    """An action the kiosk refuses; the message says why in words for the desk."""


class InvalidTransition(ModelError):
    """The visit is not in a state where that action makes sense."""


class NothingToUndo(ModelError):
    """There is no recent action left to undo."""


class PinError(ModelError):
    """A PIN was wrong, malformed, or entered while locked out."""


class PinLocked(PinError):
    """Too many wrong PINs: entry is locked for a while."""

    def __init__(self, seconds_left: float):
        self.seconds_left = seconds_left
        super().__init__(lockout_text(seconds_left))
