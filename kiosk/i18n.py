"""Translations: one ``_()`` for every string a person reads on the kiosk. No Kivy.

How to add a string: write ``_("Tap a face.")`` in Python (``_("In {seconds} s.",
seconds=n)`` with values), or ``_("Tap a face.")`` in a .kv file (``#:import _
kiosk.screens.translate._`` at its top redraws it when the language changes); then run
``python3 main.py translations`` and fill the empty entries of each catalog. A test fails while
any catalog lacks a translation or its font lacks a glyph (README, "Translations").

The catalogs are gettext .po files under ``kiosk/locale/<lang>/LC_MESSAGES/kiosk.po``,
compiled by Babel when a language is first used after the .po changed (the .mo beside it is
build output, not in the repository): nothing generated has to be rebuilt by hand.

Right-to-left text (Arabic) comes out of ``_()`` ready to draw: letters in their joined forms
(arabic-reshaper) and in logical order, so Kivy wraps lines in reading order; the label then
lays each line right to left with SDL_ttf's HarfBuzz (see ``kiosk/screens/fonts.py``). Runs of
digits and Latin letters are stored reversed, because that right-to-left pass reverses them back.
"""

from __future__ import annotations

import gettext
import io
import os
import re
import string
from functools import cache
from pathlib import Path

from kiosk.shared.languages import DEFAULT_LANGUAGES, LANGUAGES, catalog_name, is_rtl

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "kiosk"
_LTR_RUN = re.compile(r"[0-9A-Za-z][0-9A-Za-z.:,%/+-]*(?: [0-9A-Za-z][0-9A-Za-z.:,%/+-]*)*")

_current = DEFAULT_LANGUAGES[0]


def catalog_path(tag: str) -> Path:
    return LOCALE_DIR / catalog_name(tag) / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(tag: str) -> gettext.NullTranslations:
    """The compiled catalog of a language (English is the source: no catalog needed)."""
    if tag not in LANGUAGES:
        raise ValueError(f"language {tag!r} has no catalog; known: {', '.join(LANGUAGES)}")
    path = catalog_path(tag)
    if tag == "en" and not path.exists():
        return gettext.NullTranslations()
    return gettext.GNUTranslations(io.BytesIO(compiled_catalog(path)))


def compiled_catalog(po_path: Path) -> bytes:
    """The .mo form of a catalog: compiled by Babel when the .po is newer than the .mo beside
    it (the first start after a change), else read as it is, so a start does not pay for
    Babel. The .mo files are build output (.gitignore); a folder that cannot be written
    (an installed copy) is compiled in memory each start instead."""
    mo_path = po_path.with_suffix(".mo")
    try:
        if mo_path.stat().st_mtime_ns >= po_path.stat().st_mtime_ns:
            return mo_path.read_bytes()
    except OSError:
        pass
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(po_path, "rb") as handle:
        catalog = read_po(handle, locale=po_path.parent.parent.name)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    data = compiled.getvalue()
    try:
        temporary = mo_path.with_suffix(f".mo.{os.getpid()}")
        temporary.write_bytes(data)
        os.replace(temporary, mo_path)  # whole or not at all: two kiosks may start at once
    except OSError:
        pass
    return data


def use(tag: str) -> None:
    """Make ``tag`` the language ``_()`` answers in (the screen on show decides which)."""
    global _current
    translations(tag)  # fail here, not halfway through drawing a screen
    _current = tag


def current() -> str:
    return _current


def _(message: str, **values: object) -> Displayed:
    """``message`` in the current language, with ``{name}`` filled from ``values``."""
    return translate(_current, message, **values)


class Displayed(str):
    """Text already made ready for a label by ``_()``: put into another translation as a
    value, it is used as it is (shaping it twice would turn its numbers back around)."""


def translate(tag: str, message: str, **values: object) -> Displayed:
    template = translations(tag).gettext(message)
    if not is_rtl(tag):
        return Displayed(template.format(**values) if values else template)
    # Right to left: the words of the translation and each value are shaped on their own, so
    # a value that is itself a translation (already shaped) is left as it is.
    parts = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        parts.append(shape_rtl(literal))
        if field is not None:
            value = values[field]
            if conversion:
                value = repr(value) if conversion == "r" else str(value)
            shown = format(value, spec or "")
            parts.append(shown if isinstance(value, Displayed) else shape_rtl(shown))
    return Displayed("".join(parts))


def for_display(text: str, tag: str) -> Displayed:
    """Text ready for a label in language ``tag`` (a no-op but for right-to-left languages)."""
    if isinstance(text, Displayed) or not is_rtl(tag):
        return Displayed(text)
    return Displayed(shape_rtl(text))


def shape_rtl(text: str) -> str:
    joined = _reshaper().reshape(text)
    return _LTR_RUN.sub(lambda run: run.group(0)[::-1], joined)


@cache
def _reshaper():
    import arabic_reshaper

    # Keep the vowel marks the translations write (a tanween, a shadda): HarfBuzz places them.
    return arabic_reshaper.ArabicReshaper(configuration={"delete_harakat": False})


def N_(message: str) -> str:
    """Marks a string for extraction where it is translated later (tables of words)."""
    return message
