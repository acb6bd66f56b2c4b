"""The receptionist's screen: check in, the live queue, undo, today's figures, the sync corner.

It shows waits only: nothing here ever says which face a patient pressed.
"""

from __future__ import annotations

from kivy.app import App
from kivy.properties import BooleanProperty, ListProperty, StringProperty

from kiosk import presenter
from kiosk.i18n import _
from kiosk.screens.widgets import KioskScreen, QueueRow, load_kv


class StaffScreen(KioskScreen):
    clock_text = StringProperty("")
    site_text = StringProperty("")
    figures = ListProperty([("", ""), ("", ""), ("", "")])
    sync_text = StringProperty("")
    sync_trouble = BooleanProperty(False)
    undo_text = StringProperty("")
    can_undo = BooleanProperty(False)
    waiting_title = StringProperty("Waiting")
    chair_title = StringProperty("In the chair")
    shows_desk = BooleanProperty(True)
    waiting_empty = BooleanProperty(True)
    chair_empty = BooleanProperty(True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._rows: dict[str, dict[str, QueueRow]] = {"waiting": {}, "in_chair": {}}

    def refresh(self, flow) -> None:
        settings = flow.settings
        now = flow.clock()
        self.shows_desk = flow.shows_desk
        self.clock_text = presenter.local_clock(now, settings.timezone)
        self.site_text = settings.site
        status = App.get_running_app().sync_status()
        lines = presenter.sync_lines(status, settings.central_url, now, settings.timezone)
        if disk := presenter.disk_line(flow.disk.low):
            lines.insert(0, disk)  # first: the corner drops lines that do not fit, not this
        self.sync_text = "\n".join(lines)
        self.sync_trouble = status.trouble or disk is not None
        if not self.shows_desk:
            return
        queue = flow.desk.queue()
        waiting = [e for e in queue if e.status == "waiting"]
        in_chair = [e for e in queue if e.status == "in_chair"]
        self.waiting_title = _("Waiting \u00b7 {count}", count=len(waiting))
        self.chair_title = _("In the chair \u00b7 {count}", count=len(in_chair))
        self.waiting_empty, self.chair_empty = not waiting, not in_chair
        self._fill(self.ids.waiting_list, "waiting", waiting)
        self._fill(self.ids.chair_list, "in_chair", in_chair)
        self.figures = presenter.summary_parts(flow.desk.staff_summary(), settings.target_wait_min)
        self.can_undo = flow.desk.undo_label() is not None
        self.undo_text = presenter.undo_text(flow.desk.undo_label(), flow.desk.undo_remaining())

    def _fill(self, container, kind: str, entries) -> None:
        """Update rows in place (the timers tick every second); rebuild only when visits change."""
        rows = self._rows[kind]
        if [e.visit_id for e in entries] != list(rows):
            container.clear_widgets()
            rows = {e.visit_id: rows.get(e.visit_id) or QueueRow(visit_id=e.visit_id)
                    for e in entries}
            for row in rows.values():
                container.add_widget(row)
            self._rows[kind] = rows
        for entry in entries:
            row = rows[entry.visit_id]
            row.ticket = entry.ticket
            if kind == "waiting":
                row.timer_text = presenter.clock_minutes(entry.wait_min)
                row.detail_text = presenter.level_text(entry.level)
                row.level = entry.level
                row.action, row.action_text = "call_in", _("Call in")
            else:
                row.timer_text = presenter.clock_minutes(entry.chair_min or 0)
                row.detail_text = presenter.waited_text(entry.wait_min)
                row.level = "neutral"
                row.action, row.action_text = "check_out", _("Check out")


load_kv(__file__)
