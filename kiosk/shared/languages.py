"""The languages the kiosk's screens are written in: one home for the kiosk and the central
store, so ``site set --languages`` refuses exactly what a kiosk could not show.

Tags are BCP 47 (``zh-Hans``), as the wire format carries them; a catalog's folder under
``kiosk/locale`` is the gettext spelling of the same tag (``zh_Hans``). Each language is named
in its own script, because that is how a patient who does not read the local language finds it.
Pure values: no gettext, no Kivy (tests/test_translations.py checks the catalogs match).
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Language(NamedTuple):
    tag: str           # BCP 47, as in rating.submitted's "lang" and GET /api/v1/config
    native_name: str   # the button's words: the language named in its own script
    english_name: str  # for admins' messages and the README
    rtl: bool = False  # written right to left


LANGUAGES: dict[str, Language] = {
    language.tag: language
    for language in (
        Language("en", "English", "English"),
        Language("es", "Español", "Spanish"),
        Language("fr", "Français", "French"),
        Language("de", "Deutsch", "German"),
        Language("pl", "Polski", "Polish"),
        Language("pt", "Português", "Portuguese"),
        Language("tr", "Türkçe", "Turkish"),
        Language("ar", "العربية", "Arabic", rtl=True),
        Language("zh-Hans", "中文", "Chinese (Simplified)"),
    )
}
DEFAULT_LANGUAGES = ("en",)
# A site offers at most this many: one row on the rating screen holds them and the larger-text
# button, each wide enough for its name at a readable size and at least 20 mm (TOUCH_MIN).
MAX_SITE_LANGUAGES = 6
# BCP 47's shape (language, then optional script/region subtags); the wire format checks it.
BCP47_PATTERN = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}")


class UnknownLanguage(ValueError):
    """A language tag the kiosk has no catalog for; the message lists the ones it has."""


def catalog_name(tag: str) -> str:
    """The catalog folder of a BCP 47 tag: 'zh-Hans' -> 'zh_Hans'."""
    return tag.replace("-", "_")


def is_rtl(tag: str) -> bool:
    language = LANGUAGES.get(tag)
    return bool(language and language.rtl)


def check_languages(value: object) -> tuple[str, ...]:
    """A site's languages, first one the default: a list (or a comma-separated text) of tags
    the kiosk ships a catalog for, each once. Raises ``UnknownLanguage`` with a sentence."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise UnknownLanguage(
            "give at least one language, the default first, e.g. 'en,es,ar'"
        )
    known = ", ".join(LANGUAGES)
    tags: list[str] = []
    for tag in value:
        # Only text can name a language; a list or table inside the list (unhashable) too
        # is refused with the sentence, not a TypeError from the lookup.
        if not isinstance(tag, str) or tag not in LANGUAGES:
            raise UnknownLanguage(
                f"language {tag!r} has no catalog; the kiosk is written in {known}"
            )
        if tag in tags:
            raise UnknownLanguage(f"language {tag!r} is listed twice")
        tags.append(tag)
    if len(tags) > MAX_SITE_LANGUAGES:
        raise UnknownLanguage(f"{len(tags)} languages are too many: at most {MAX_SITE_LANGUAGES}")
    return tuple(tags)
