"""One visit's less common actions, one step away from the queue: fix a time, no-show, cancel."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk import presenter
from kiosk.screens.widgets import KioskScreen, load_kv


class VisitScreen(KioskScreen):
    ticket = StringProperty("")
    status_text = StringProperty("")
    is_waiting = BooleanProperty(False)
    in_queue = BooleanProperty(False)

    def refresh(self, flow) -> None:
        entry = flow.open_visit_entry()
        self.in_queue = entry is not None
        if entry is None:
            visit = flow.store.visit(flow.open_visit_id) or {}
            self.ticket = visit.get("ticket", "")
            self.status_text = "This visit has left the queue."
            self.is_waiting = False
            return
        self.ticket = entry.ticket
        self.is_waiting = entry.status == "waiting"
        visit = flow.store.visit(entry.visit_id) or {}
        appointment = presenter.appointment_text(visit.get("appointment_at"),
                                                 flow.settings.timezone)
        if self.is_waiting:
            self.status_text = (f"Waiting {presenter.clock_minutes(entry.wait_min)} \u00b7 "
                                f"{presenter.level_text(entry.level)} \u00b7 {appointment}")
        else:
            self.status_text = (f"In the chair {presenter.clock_minutes(entry.chair_min or 0)}"
                                f" \u00b7 waited {presenter.whole_minutes(entry.wait_min)}"
                                f" \u00b7 {appointment}")


load_kv(__file__)
