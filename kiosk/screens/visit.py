"""One visit's less common actions, one step away from the queue: fix a time, no-show, cancel."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk import presenter
from kiosk.i18n import _
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
            self.status_text = _("This visit has left the queue.")
            self.is_waiting = False
            return
        self.ticket = entry.ticket
        self.is_waiting = entry.status == "waiting"
        visit = flow.store.visit(entry.visit_id) or {}
        appointment = presenter.appointment_text(visit.get("appointment_at"),
                                                 flow.settings.timezone)
        if self.is_waiting:
            self.status_text = _("Waiting {timer} \u00b7 {level}",
                                 timer=presenter.clock_minutes(entry.wait_min),
                                 level=presenter.level_text(entry.level))
            self.status_text += f" \u00b7 {appointment}"
        else:
            self.status_text = _("In the chair {timer} \u00b7 {waited}",
                                 timer=presenter.clock_minutes(entry.chair_min or 0),
                                 waited=presenter.waited_text(entry.wait_min))
            self.status_text += f" \u00b7 {appointment}"


load_kv(__file__)
