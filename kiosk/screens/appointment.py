"""The appointment-time picker: quarter-hour buttons, "No appointment", an hour earlier or later.

Thin over ``kiosk.appointment_picker``: the choices, their labels and what a tap does all live
in the model; this screen only shows them.
"""

from __future__ import annotations

from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

from kiosk.i18n import _
from kiosk.screens.widgets import KioskScreen, load_kv


class AppointmentScreen(KioskScreen):
    title = StringProperty("")
    hint = StringProperty("")
    labels = ListProperty([""] * 8)
    chosen = NumericProperty(-1)
    for_check_in = BooleanProperty(True)
    none_text = StringProperty("")

    def refresh(self, flow) -> None:
        picker = flow.appointment
        if picker is None:
            return
        self.for_check_in = picker.for_check_in
        self.labels = picker.labels()
        index = picker.chosen_index()
        self.chosen = -1 if index is None else index
        if picker.for_check_in:
            self.title = _("Check in: appointment time?")
            self.hint = _("One tap on the time checks the patient in with that appointment.")
            self.none_text = "[b]" + _("No appointment") + "[/b]\n" + _("check in without one")
        else:
            self.title = _("Appointment time for {ticket}", ticket=picker.ticket)
            if picker.current is None:
                self.hint = _("No time recorded yet. One tap on a time saves it; the change "
                              "is logged.")
            else:
                self.hint = _("Recorded now: {time}. One tap on a time saves it; the change "
                              "is logged.", time=picker.label(picker.current))
            self.none_text = "[b]" + _("No appointment") + "[/b]\n" + _("clear the time")


load_kv(__file__)
