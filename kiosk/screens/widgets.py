"""The few building blocks every screen shares: buttons, cards, queue rows, faces, the keypad.

Widgets hold what they show and nothing else; what a tap does is written in the .kv as one
call into the app's ``KioskFlow``.
"""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    NumericProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from kiosk.screens import theme


def load_kv(module_file: str) -> None:
    """Load the .kv beside a screen module (once per process: modules import once)."""
    Builder.load_file(str(Path(module_file).with_suffix(".kv")))


class KioskScreen(Screen):
    """A screen that redraws itself from the flow after every tap and every tick."""

    def refresh(self, flow) -> None:
        """Copy what this screen shows from ``flow`` (a ``KioskFlow``) into its properties."""


class KioskButton(ButtonBehavior, Label):
    """A large, flat, rounded button; darker while pressed so a tap is felt."""

    bg = ColorProperty(theme.rgba("quiet"))
    fg = ColorProperty(theme.rgba("ink"))


class KeyButton(KioskButton):
    """A key of the comment box's keyboard: ``key`` is what it types (or shift/backspace/space)."""

    key = StringProperty("")
    word = StringProperty("")
    shifted = BooleanProperty(False)  # letters shown as capitals


class TagButton(KioskButton):
    tag = StringProperty("")
    word = StringProperty("")
    selected = BooleanProperty(False)


class LanguageButton(KioskButton):
    """One language of the patient's row, named in its own script; no flags (a flag is a
    country, not a language)."""

    tag = StringProperty("")
    native_name = StringProperty("")
    selected = BooleanProperty(False)


class LargeTextButton(KioskButton):
    """Larger words on the patient screens, for this patient only."""

    selected = BooleanProperty(False)


class CornerArea(ButtonBehavior, Widget):
    """An invisible patch in a corner of the patient screens: three taps lead to the PIN."""


class Card(BoxLayout):
    bg = ColorProperty(theme.rgba("card"))


class Heading(Label):
    pass


class Caption(Label):
    pass


class QueueRow(BoxLayout):
    """One visit in the waiting or in-chair list: ticket, live timer, level, one-tap action."""

    visit_id = StringProperty("")
    ticket = StringProperty("")
    timer_text = StringProperty("")
    detail_text = StringProperty("")
    action_text = StringProperty("")
    level = StringProperty("ok")  # "ok" | "near" | "over" | "neutral"
    action = StringProperty("call_in")  # the flow method the big button calls


class FaceButton(ButtonBehavior, BoxLayout):
    score = NumericProperty(0)
    word = StringProperty("")
    source = StringProperty("")
    word_size = NumericProperty(0)  # the word's font size; 0: the usual one


class Keypad(GridLayout):
    locked = BooleanProperty(False)


load_kv(__file__)
