"""Fix a forgotten time with +/- minute steps; the change is kept as an audited correction."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk.screens.widgets import KioskScreen, load_kv

FIELD_WORDS = {"checked_in_at": "Checked in", "called_at": "Called in"}


class FixScreen(KioskScreen):
    ticket = StringProperty("")
    field = StringProperty("")
    time_text = StringProperty("")
    was_text = StringProperty("")
    has_called = BooleanProperty(False)
    changed = BooleanProperty(False)

    def refresh(self, flow) -> None:
        fix = flow.fix
        if fix is None:
            return
        self.ticket = fix.ticket
        self.field = fix.field
        self.has_called = "called_at" in fix.fields
        self.time_text = fix.local()
        self.changed = fix.changed
        was = fix.local(fix.original[fix.field])
        self.was_text = (f"{FIELD_WORDS[fix.field]} time, was {was}" if fix.changed
                         else f"{FIELD_WORDS[fix.field]} time as recorded")


load_kv(__file__)
