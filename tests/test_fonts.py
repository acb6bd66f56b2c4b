"""Every character of every catalog is in the font its label picks (no boxes), and the
subsets stay small."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po
from fontTools.ttLib import TTFont

from kiosk import i18n
from kiosk.screens import fonts
from kiosk.shared.languages import LANGUAGES, catalog_name

DIGITS = "0123456789"


def cmaps(family: str) -> list[set[int]]:
    return [set(TTFont(str(path)).getBestCmap()) for path in fonts.FAMILIES[family]]


CMAPS = {family: cmaps(family) for family in fonts.FAMILIES}


class Filler(dict):
    """Any placeholder's value as the screens may fill it: a ticket code, a time, digits."""

    def __missing__(self, key: str) -> str:
        return "A-017 12:05 " + DIGITS


def shown_texts(tag: str) -> list[str]:
    """What the screens show in ``tag``: each translation with its numbers filled in, and the
    language's own name on its button."""
    with open(i18n.catalog_path(tag), "rb") as handle:
        catalog = read_po(handle, locale=catalog_name(tag))
    texts = [LANGUAGES[tag].native_name]
    for message in catalog:
        if message.id:
            text = message.string or message.id
            texts.append(text.format_map(Filler()))
    return [i18n.for_display(text, tag) for text in texts]


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_every_glyph_of_every_catalog_is_in_the_font_its_label_picks(tag):
    missing = {}
    for text in shown_texts(tag):
        family = fonts.family_for(text)
        for weight, cmap in zip(("regular", "bold"), CMAPS[family], strict=True):
            lacking = {c for c in text if not c.isspace() and ord(c) not in cmap}
            if lacking:
                missing[(family, weight, text)] = "".join(sorted(lacking))
    assert missing == {}, "run `python assets/make_fonts.py` after changing a catalog"


@pytest.mark.parametrize("family", list(fonts.FAMILIES))
def test_every_font_has_the_digits_and_the_marks_drawn_beside_words(family):
    for cmap in CMAPS[family]:
        assert all(ord(c) in cmap for c in DIGITS + "\u2713")


def test_the_label_picks_its_font_and_direction_from_its_script():
    arabic = i18n.translate("ar", "Thank you!")
    assert (fonts.family_for(arabic), fonts.direction_for(arabic)) == ("kiosk-arabic", "rtl")
    assert fonts.script_tag_for(arabic) == "Arab"
    chinese = i18n.translate("zh-Hans", "Thank you!")
    assert (fonts.family_for(chinese), fonts.direction_for(chinese)) == ("kiosk-cjk", "ltr")
    assert (fonts.family_for("A-017"), fonts.direction_for("A-017")) == ("kiosk-latin", "ltr")


def test_the_subset_fonts_stay_small():
    sizes = {path.name: path.stat().st_size for family in ("kiosk-arabic", "kiosk-cjk")
             for path in fonts.FAMILIES[family]}
    assert all(size < 300_000 for size in sizes.values()), sizes


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_the_comment_keyboards_special_keys_are_drawn_in_every_language(tag):
    """The arrows beside the translated key words are not in any catalog: check them here."""
    from kiosk import presenter

    i18n.use(tag)
    try:
        words = [presenter.key_word(key) for key in presenter.KEY_WORDS]
    finally:
        i18n.use("en")
    for word in words:
        family = fonts.family_for(word)
        for cmap in CMAPS[family]:
            assert all(ord(c) in cmap for c in word if not c.isspace()), (tag, word, family)


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_the_arrows_and_signs_drawn_beside_words_in_the_kv_files_are_in_the_fonts(tag):
    """Back, Next and the appointment picker's hour buttons put a mark beside a translated
    word (left out, or a hyphen, in right-to-left languages, as the .kv files say)."""
    rtl = LANGUAGES[tag].rtl
    texts = [i18n.translate(tag, "1 hour"), i18n.translate(tag, "Back"),
             i18n.translate(tag, "Next"), i18n.translate(tag, "Back to the queue")]
    if rtl:
        texts += ["- " + i18n.translate(tag, "1 hour")]
    else:
        texts += ["\u2212 " + texts[0], "\u2190  " + texts[1], texts[2] + "  \u2192",
                  "\u2190  " + texts[3]]
    for text in texts:
        family = fonts.family_for(text)
        for cmap in CMAPS[family]:
            assert all(ord(c) in cmap for c in text if not c.isspace()), (tag, text, family)
