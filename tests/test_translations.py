"""The catalogs: one per language, up to date with the code, every string translated, every
placeholder kept; Arabic comes out joined with its numbers in reading order."""

from __future__ import annotations

import re
import shutil
import string

import pytest
from babel.messages.pofile import read_po

from kiosk import catalogs, i18n
from kiosk.shared.languages import LANGUAGES, catalog_name, is_rtl

TRANSLATED = [tag for tag in LANGUAGES if tag != "en"]  # English is the source text


def read_catalog(tag: str):
    with open(i18n.catalog_path(tag), "rb") as handle:
        return read_po(handle, locale=catalog_name(tag))


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_there_is_one_catalog_per_language_and_no_other():
    folders = {path.name for path in i18n.LOCALE_DIR.iterdir() if path.is_dir()}
    assert folders == {catalog_name(tag) for tag in LANGUAGES}


def test_the_catalogs_hold_exactly_the_strings_of_the_code():
    """`python3 main.py translations` was run after the last string changed."""
    stale = [path.name for path, content in catalogs.updated_catalogs().items()
             if not path.exists() or path.read_bytes() != content]
    assert stale == [], (
        f"{stale} out of date: run `python3 main.py translations` and translate the new entries"
    )


def test_the_kv_files_strings_are_extracted_too():
    template = catalogs.template()
    message = template.get("What could we do better?")
    assert message is not None
    assert ("kiosk/screens/followup.kv", message.locations[0][1]) == message.locations[0]
    assert template.get("Very good") is not None  # N_() in a table of presenter.py


@pytest.mark.parametrize("tag", TRANSLATED)
def test_every_string_is_translated_and_keeps_its_placeholders(tag):
    catalog = read_catalog(tag)
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert untranslated == [], f"{tag} lacks a translation of {untranslated}"
    for message in catalog:
        if message.id:
            assert fields(message.string) == fields(message.id), (tag, message.id)
            assert message.string.count("\n") == message.id.count("\n"), (tag, message.id)


@pytest.mark.parametrize("tag", TRANSLATED)
def test_a_translation_is_used_and_filled(tag):
    text = i18n.translate(tag, "Back to the start in {seconds} s.", seconds=12)
    assert text != "Back to the start in 12 s."
    assert ("21" if is_rtl(tag) else "12") in text and "{" not in text


def test_english_and_the_left_to_right_languages_are_shown_as_written():
    assert i18n.translate("en", "Thank you!") == "Thank you!"
    assert i18n.for_display("A-017", "es") == "A-017"


def test_arabic_is_joined_and_its_numbers_survive_the_right_to_left_pass():
    text = i18n.translate("ar", "Back to the start in {seconds} s.", seconds=12)
    assert is_rtl("ar")
    # Joined: every letter in its contextual (presentation) form, none left isolated.
    assert not re.search("[\u0621-\u064a]", text)
    # The label reverses the whole line; the number is stored reversed, so it reads 12.
    assert "21" in text and "12" not in text


def test_an_unknown_language_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="has no catalog; known: en, es"):
        i18n.use("xx")


def test_the_check_option_fails_on_a_stale_catalog(tmp_path, monkeypatch, capsys):
    """``translations --check`` (for CI) reports a catalog that lacks a new string. On a copy
    of the catalogs: the real ones are read by tests running at the same time."""
    locale = tmp_path / "kiosk" / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale)
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale)
    monkeypatch.setattr(catalogs, "LOCALE_DIR", locale)
    monkeypatch.setattr(catalogs, "SOURCE_DIR", locale.parent)  # where it names files from
    assert catalogs.main(["--check"]) == 0
    path = i18n.catalog_path("es")
    assert path.is_relative_to(tmp_path)
    stale = path.read_bytes().replace(b'msgid "Thank you!"', b'msgid "Thanks!"')
    path.write_bytes(stale)
    assert catalogs.main(["--check"]) == 1
    assert path.read_bytes() == stale  # --check changes nothing
    assert "es/LC_MESSAGES/kiosk.po is out of date" in capsys.readouterr().out


# --- the dashboard's catalog (sync/central/dashboard; same machinery, domain "dashboard") ------

DASHBOARD = next(domain for domain in catalogs.DOMAINS if domain.name == "dashboard")


def _python_fields(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", text))


def test_the_dashboards_templates_and_python_strings_are_extracted():
    template = catalogs.template(DASHBOARD)
    today = template.get("Today")
    places = {path for path, _ in today.locations}
    assert "sync/central/dashboard/templates/today.html" in places  # {{ _("Today") }}
    assert "sync/central/dashboard/pages.py" in places  # N_("Today") in the nav
    assert template.get("Happy Index") is not None  # a tile caption
    assert template.get(("%(num)s open alert", "%(num)s open alerts")) is not None  # ngettext
    assert template.get("The two new passwords differ; nothing was changed.") is not None


@pytest.mark.parametrize("tag", [tag for tag in DASHBOARD.languages])
def test_every_dashboard_string_is_translated_and_keeps_its_placeholders(tag):
    path = catalogs.domain_catalog_path(DASHBOARD, tag)
    with open(path, "rb") as handle:
        catalog = read_po(handle, locale=catalog_name(tag))
    untranslated = [m.id for m in catalog
                    if m.id and (not all(m.string) if isinstance(m.string, tuple)
                                 else not m.string or m.fuzzy)]
    assert untranslated == [], f"dashboard {tag} lacks a translation of {untranslated}"
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            assert _python_fields(text) == _python_fields(ids[-1]), (tag, message.id)
            assert text.count("%%") == ids[-1].count("%%"), (tag, message.id)


@pytest.fixture
def spanish_staff_side():
    """The staff language set as the app sets it (``_.switch``), put back afterwards."""
    before = i18n.current()
    i18n.use("es")
    yield
    i18n.use(before)


def test_the_pin_lockout_and_the_undo_button_follow_the_staff_language(spanish_staff_side):
    from kiosk import presenter

    assert presenter.lockout_text(29.4) == "Demasiados PIN incorrectos. Inténtelo de nuevo en 30 s."
    assert presenter.lockout_text(125) == (
        "Demasiados PIN incorrectos. Inténtelo de nuevo en 2 min.")
    assert presenter.undo_text(None, 0) == "Nada que deshacer"


def test_the_desks_banner_and_undo_label_are_whole_translated_sentences(
        spanish_staff_side, desk):
    from kiosk.errors import NothingToUndo

    visit = desk.check_in()
    assert desk.undo_label() == f"Deshacer la llegada de {visit['ticket']}"
    desk.undo()
    with pytest.raises(NothingToUndo, match="^Nada que deshacer: la última acción"):
        desk.undo()
