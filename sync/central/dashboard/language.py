"""The dashboard's language: English or Spanish, chosen per login, and gettext for its pages.

A login's choice (Account page) is kept in ``users.language``; before login (the login and
set-password pages) the browser's Accept-Language decides. The words come from the
``dashboard`` gettext catalog beside the kiosk's (``kiosk/locale/<lang>/LC_MESSAGES/
dashboard.po``; ``python3 main.py translations`` extracts the templates and the ``N_()``
strings of the dashboard's Python), compiled the same way the kiosk's are. Numbers, dates and
data (site and desk names) are shown as they are, in every language.
"""

from __future__ import annotations

import gettext as gettext_module
import io
from functools import cache
from pathlib import Path

from jinja2 import pass_context
from starlette.requests import Request

from kiosk.i18n import LOCALE_DIR, compiled_catalog
from kiosk.shared.languages import catalog_name

DOMAIN = "dashboard"
# The languages a login may choose, each named in itself (the Account page's select).
LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT = "en"


def catalog_path(tag: str) -> Path:
    return LOCALE_DIR / catalog_name(tag) / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(tag: str) -> gettext_module.NullTranslations:
    """The compiled catalog of ``tag``; English is the source text and needs none."""
    if tag not in LANGUAGES:
        raise ValueError(f"the dashboard has no {tag!r} catalog; known: {', '.join(LANGUAGES)}")
    if tag == DEFAULT:
        return gettext_module.NullTranslations()
    return gettext_module.GNUTranslations(io.BytesIO(compiled_catalog(catalog_path(tag))))


def check_choice(tag: str) -> str:
    """A language a login may choose, or a sentence saying which ones there are."""
    if tag not in LANGUAGES:
        choices = ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
        raise ValueError(f"The language {tag!r} is not offered; choose one of {choices}.")
    return tag


def from_accept_language(header: str | None) -> str:
    """The first language of the browser's list (by q-value) that the dashboard has."""
    choices = []
    for position, part in enumerate((header or "").split(",")):
        fields = part.strip().split(";")
        quality = 1.0
        for field in fields[1:]:
            name, _, value = field.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        choices.append((-quality, position, fields[0].strip().lower()))
    for quality, _, tag in sorted(choices):
        primary = tag.split("-")[0]
        if quality < 0 and primary in LANGUAGES:
            return primary
    return DEFAULT


def of_request(request: Request) -> str:
    """The language of the page being made: the login's choice, else the browser's."""
    session = getattr(request.state, "session", None)
    if session is not None and session.user.language in LANGUAGES:
        return session.user.language
    return from_accept_language(request.headers.get("accept-language"))


def page_context(request: Request) -> dict:
    """Every template's ``lang`` (a Starlette context processor)."""
    return {"lang": of_request(request), "languages": LANGUAGES}


def translate(tag: str, message: str) -> str:
    return translations(tag if tag in LANGUAGES else DEFAULT).gettext(message)


@pass_context
def gettext(context, message: str) -> str:
    return translate(context.get("lang", DEFAULT), message)


@pass_context
def ngettext(context, singular: str, plural: str, count: int) -> str:
    tag = context.get("lang", DEFAULT)
    return translations(tag if tag in LANGUAGES else DEFAULT).ngettext(singular, plural, count)


@pass_context
def tr(context, message: str | None) -> str | None:
    """A sentence made in Python (a note, an error, a nav label marked with ``N_``) in the
    page's language; one with no translation (it names a value) is shown as it is."""
    if not isinstance(message, str) or not message:
        return message  # an error's detail may be a structure, shown as it is
    return translate(context.get("lang", DEFAULT), message)


def N_(message: str) -> str:
    """Marks a Python string shown on a page for extraction; the page translates it (``tr``)."""
    return message


def install(env) -> None:
    """Jinja's i18n extension on the dashboard's environment, with this module's gettext."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True)
    env.globals["tr"] = tr
