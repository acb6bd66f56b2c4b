"""The receptionist's screen: check in, the live queue, undo, today's figures, the sync corner.

It shows waits only: nothing here ever says which face a patient pressed.
"""

from __future__ import annotations

from kivy.app import App
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

from kiosk import presenter
from kiosk.i18n import _
from kiosk.screens.widgets import KioskScreen, QueueRow, load_kv

# The sync corner's type, in layout units, largest first: 14 is the smallest still read at a
# glance from the desk on the 7-inch 800x480 panel.
CORNER_FONT_UNITS = (18, 16, 14)


class StaffScreen(KioskScreen):
    clock_text = StringProperty("")
    site_text = StringProperty("")
    figures = ListProperty([("", ""), ("", ""), ("", "")])
    sync_text = StringProperty("")
    corner_font_units = NumericProperty(CORNER_FONT_UNITS[0])
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

    def fit_corner(self, lines: list[str], droppable: list[int]) -> None:
        """Put the sync corner's lines in the top bar: at 18 units if they fit, else in smaller
        type (down to 14), else without the droppable lines, so nothing spills over the queue
        or off the window (the bar's height is fixed; a refused token's sentence wraps)."""
        corner = self.ids.sync_corner
        bar_height = corner.parent.height
        kept = list(lines)
        for drop in [None, *sorted(droppable, reverse=True)]:
            if drop is not None and drop < len(kept):
                del kept[drop]
            self.sync_text = "\n".join(kept)
            for units in CORNER_FONT_UNITS:
                self.corner_font_units = units
                corner.texture_update()
                if corner.texture_size[1] <= bar_height:
                    return

    def refresh(self, flow) -> None:
        settings = flow.settings
        now = flow.clock()
        self.shows_desk = flow.shows_desk
        self.clock_text = presenter.local_clock(now, settings.timezone)
        self.site_text = settings.site
        status = App.get_running_app().sync_status()
        lines = presenter.sync_lines(status, settings.central_url, now, settings.timezone)
        if disk := presenter.disk_line(flow.disk.low):
            lines.insert(0, disk)  # first: the most urgent, and never dropped
        self.sync_trouble = status.trouble or disk is not None
        # The first sync line (when it last went) and the second (what waits) say least when
        # something is wrong: those may go if even the smallest type does not fit the bar.
        first = 1 if disk else 0
        self.fit_corner(lines, droppable=[first, first + 1] if self.sync_trouble else [])
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
