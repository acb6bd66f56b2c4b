"""Fix a forgotten time with +/- minute steps; the change is kept as an audited correction."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk.i18n import N_, _
from kiosk.screens.widgets import KioskScreen, load_kv

# Whole sentences per field (not a field word glued to "time"), so each language can order them.
WAS_WORDS = {"checked_in_at": N_("Checked-in time, was {was}"),
             "called_at": N_("Called-in time, was {was}")}
AS_RECORDED_WORDS = {"checked_in_at": N_("Checked-in time as recorded"),
                     "called_at": N_("Called-in time as recorded")}


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
        self.was_text = (_(WAS_WORDS[fix.field], was=was) if fix.changed
                         else _(AS_RECORDED_WORDS[fix.field]))


load_kv(__file__)
