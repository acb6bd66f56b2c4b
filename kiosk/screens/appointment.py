"""The appointment-time picker: quarter-hour buttons, "No appointment", an hour earlier or later.

Thin over ``kiosk.appointment_picker``: the choices, their labels and what a tap does all live
in the model; this screen only shows them.
"""

from __future__ import annotations

from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

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
            self.title = "Check in: appointment time?"
            self.hint = "One tap on the time checks the patient in with that appointment."
            self.none_text = "[b]No appointment[/b]\ncheck in without one"
        else:
            self.title = f"Appointment time for {picker.ticket}"
            now = "none" if picker.current is None else picker.label(picker.current)
            self.hint = f"Recorded now: {now}. One tap on a time saves it; the change is logged."
            self.none_text = "[b]No appointment[/b]\nclear the time"


load_kv(__file__)
