"""The window's content: a message banner above one screen manager holding every screen."""

from __future__ import annotations

from kivy.properties import StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.screens.appointment import AppointmentScreen
from kiosk.screens.comment import CommentScreen
from kiosk.screens.enrol import EnrolScreen
from kiosk.screens.fix import FixScreen
from kiosk.screens.followup import FollowupScreen
from kiosk.screens.pin import PinScreen
from kiosk.screens.pin_setup import PinSetupScreen
from kiosk.screens.rating import RatingScreen
from kiosk.screens.staff import StaffScreen
from kiosk.screens.thanks import ThanksScreen
from kiosk.screens.visit import VisitScreen
from kiosk.screens.widgets import load_kv

SCREENS = {
    "enrol": EnrolScreen,
    "pin_setup": PinSetupScreen,
    "pin": PinScreen,
    "staff": StaffScreen,
    "visit": VisitScreen,
    "fix": FixScreen,
    "appointment": AppointmentScreen,
    "rating": RatingScreen,
    "followup": FollowupScreen,
    "comment": CommentScreen,
    "thanks": ThanksScreen,
}


class Banner(BoxLayout):
    """Errors and confirmations in words; it goes away by itself after a few seconds."""

    text = StringProperty("")
    level = StringProperty("info")


class KioskRoot(BoxLayout):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # No animation between screens: a tap answers at once, and nothing slides at a patient.
        self.manager = ScreenManager(transition=NoTransition())
        for name, screen_class in SCREENS.items():
            self.manager.add_widget(screen_class(name=name))
        self.add_widget(self.manager)

    def show(self, flow) -> None:
        """Put up the screen the flow asks for, with its current content."""
        notice = flow.banner()
        self.ids.banner.text = notice.text if notice else ""
        self.ids.banner.level = notice.level if notice else "info"
        name = flow.screen()
        if self.manager.current != name:
            self.manager.current = name
        self.manager.current_screen.refresh(flow)


load_kv(__file__)
