"""``_`` for .kv files: the same catalogs as ``kiosk.i18n._``, and every kv rule that calls it
is evaluated again when the language changes.

Kivy's kv compiler watches any rule containing ``_(`` by binding to the name ``_``
(kivy/lang/parser.py), so this object answers ``fbind("_", ...)`` and calls those rules back on
``switch``. ``_.rtl`` is a real property: a rule such as ``halign: "right" if _.rtl else
"left"`` follows the language too. In a .kv file::

    #:import _ kiosk.screens.translate._
    Label:
        text: _("How was your visit today?")
"""

from __future__ import annotations

import itertools

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, StringProperty

from kiosk import i18n
from kiosk.shared.languages import is_rtl


class KvTranslator(EventDispatcher):
    lang = StringProperty(i18n.current())
    rtl = BooleanProperty(False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._observers: dict[int, tuple] = {}
        self._uids = itertools.count(1)

    def __call__(self, message: str, **values: object) -> str:
        return i18n.translate(self.lang, message, **values)

    def switch(self, tag: str) -> bool:
        """Show every screen in ``tag``; False (and nothing redrawn) when it already is."""
        if tag == self.lang:
            return False
        i18n.use(tag)
        self.lang = tag
        self.rtl = is_rtl(tag)
        for func, args in list(self._observers.values()):
            func(args, None, None)
        return True

    # -- what the kv compiler calls for rules containing "_(" ---------------------------------

    def fbind(self, name, func, *args, **kwargs):
        if name != "_":
            return super().fbind(name, func, *args, **kwargs)
        uid = next(self._uids)
        self._observers[uid] = (func, args[0] if args else None)
        return uid

    def funbind(self, name, func, *args, **kwargs):
        if name != "_":
            return super().funbind(name, func, *args, **kwargs)
        for uid, (known, _args) in list(self._observers.items()):
            if known is func:
                del self._observers[uid]

    def unbind_uid(self, name, uid):
        if name != "_":
            return super().unbind_uid(name, uid)
        self._observers.pop(uid, None)


_ = KvTranslator()
