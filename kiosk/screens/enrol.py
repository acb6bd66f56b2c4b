"""First start without a device token: the central store's address, then the code to approve.

Layout only; the words come from ``presenter.enrolment_view`` and every key is one call into
the flow (``enrol_key``, ``enrol_next`` ...).
"""

from __future__ import annotations

from kivy.app import App
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk import presenter
from kiosk.screens.qr import qr_texture
from kiosk.screens.widgets import KioskButton, KioskScreen, load_kv

KEY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl:", "zxcvbnm./-")


class AddressKey(KioskButton):
    """One key of the address keyboard."""


class EnrolPanel(BoxLayout):
    """What the screen shows under its words; only the current one is in the window, so a
    hidden panel's buttons can never take a touch."""

    screen = ObjectProperty(None, rebind=True)


class KeyboardPanel(EnrolPanel):
    """The address as typed, backspace, Next, and a key for every letter, digit and : / . -"""


class CodePanel(EnrolPanel):
    """The QR code, the code in large letters, how long it lasts, another address."""


class RetryPanel(EnrolPanel):
    """New code, or another address: after a denial, an expiry or a store that is down."""


class EnrolScreen(KioskScreen):
    title = StringProperty("")
    explanation = StringProperty("")
    reason = StringProperty("")
    status = StringProperty("")
    address = StringProperty("")
    code = StringProperty("")
    panel = StringProperty("keyboard")
    is_error = BooleanProperty(False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._qr_link = ""
        self.panels = {"keyboard": KeyboardPanel(screen=self), "code": CodePanel(screen=self),
                       "retry": RetryPanel(screen=self)}
        keys = self.panels["keyboard"].ids.address_keys
        for row in KEY_ROWS:
            for key in row:
                button = AddressKey(text=key)
                button.bind(on_release=self._typed)
                keys.add_widget(button)

    @staticmethod
    def _typed(button) -> None:
        app = App.get_running_app()
        app.act(app.flow.enrol_key, button.text)

    def refresh(self, flow) -> None:
        model = flow.enrolment.model
        view = presenter.enrolment_view(model)
        self.title = view["title"]
        self.reason = view["reason"]
        self.is_error = bool(model.error) and view["panel"] == "keyboard"
        self.explanation = model.error if self.is_error else view["explanation"]
        self.status = view["status"] if not self.is_error else ""
        self.address = view["address"]
        self.code = view["code"]
        if view["panel"] != self.panel or not self.ids.panel_area.children:
            self.ids.panel_area.clear_widgets()
            if view["panel"] in self.panels:
                self.ids.panel_area.add_widget(self.panels[view["panel"]])
        self.panel = view["panel"]
        if model.qr_link and model.qr_link != self._qr_link:
            self.panels["code"].ids.qr.texture = qr_texture(model.qr_link)
            self._qr_link = model.qr_link


load_kv(__file__)
