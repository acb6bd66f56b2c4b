"""The patient screens in every language, in a real window: one tap switches, the rating
records it, the choice ends with the patient; Arabic is shaped, right to left and wrapped in
reading order; no label overflows or leaves the screen, every target stays 20 mm and every
text is 7:1 on what is behind it, also with larger text; faces carry words and drawings.

Screenshots of the rating, follow-up and thanks screens in each language (and the staff screen
in Spanish and Arabic) go to test-output/screenshots/languages/<size>/ to be looked at; the
other window size is taken by a child pytest, as in test_screenshots.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import i18n
from kiosk.shared.languages import LANGUAGES, MAX_SITE_LANGUAGES
from tests.ui.conftest import window_size

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "screenshots" / "languages"
TOUCH_MIN_DESIGN_PX = 119  # 20 mm on the 10-inch 1280x800 panel (see test_screenshots.py)
# The longest names first, so the row is as wide as a site's can be.
WIDEST_ROW = ("pt", "fr", "tr", "de", "es", "ar", "pl", "zh-Hans", "en")


def offered_with(tag: str) -> str:
    """``tag`` first (the site's default) and the widest other names, as many as allowed."""
    others = [other for other in WIDEST_ROW if other != tag]
    return ",".join([tag, *others][:MAX_SITE_LANGUAGES])


def language_button(driver, tag: str):
    from kiosk.screens.widgets import LanguageButton

    return next(b for b in driver.buttons() if isinstance(b, LanguageButton) and b.tag == tag)


def large_text_button(driver):
    from kiosk.screens.widgets import LargeTextButton

    return next(b for b in driver.buttons() if isinstance(b, LargeTextButton))


def face_button(driver, score: int):
    from kiosk.screens.widgets import FaceButton

    return next(b for b in driver.buttons() if isinstance(b, FaceButton) and b.score == score)


def shown(widget) -> bool:
    """Not hidden by itself or by a part of the screen around it (opacity 0)."""
    while widget is not None:
        if widget.opacity == 0:
            return False
        widget = widget.parent if widget.parent is not widget else None
    return True


def labels(driver):
    from kivy.uix.label import Label

    screen = driver.app.root.manager.current_screen
    return [w for w in screen.walk(restrict=True)
            if isinstance(w, Label) and w.text and shown(w)]


def title_of(driver) -> str:
    return max(labels(driver), key=lambda label: label.font_size).text


def rating_events(driver) -> list[dict]:
    return [json.loads(row["data"]) for row in driver.store.db.query(
        "SELECT data FROM events WHERE type = 'rating.submitted' ORDER BY device_seq")]


def broken_word(label) -> str | None:
    """A word Kivy had to split across two lines because it is wider than the label (Chinese
    has no spaces and breaks between characters as it should, so it is not asked)."""
    from kiosk.screens import fonts

    text = re.sub(r"\[/?[a-z]+(?:=[^\]]*)?\]", "", label.text) if label.markup else label.text
    if fonts.script_of(text) == "cjk":
        return None
    lines = ["".join(word.text for word in line.words) for line in label._label._cached_lines]
    for word in text.split():
        if not any(word in line for line in lines):
            return word
    return None


def problems_on_screen(driver, name: str, small_ok=lambda button: False) -> list[str]:
    """Labels whose drawn text is larger than their box or splits a word; anything off the
    screen; targets under 20 mm on the panel (except those ``small_ok`` names, each for a
    stated reason)."""
    driver.idle(3)
    u = driver.app.u
    found = []
    for label in labels(driver):
        texture_w, texture_h = label.texture_size
        if texture_w > label.width + 1 or texture_h > label.height + 1:
            found.append(f"{name}: {label.text!r} needs {texture_w:.0f}x{texture_h:.0f}, "
                         f"has {label.width:.0f}x{label.height:.0f}")
    for label in labels(driver):
        if broken := broken_word(label):
            found.append(f"{name}: {label.text!r} breaks the word {broken!r} across lines")
    window_w, window_h = driver.app.root.size
    buttons = [button for button in driver.buttons() if shown(button)]
    for widget in labels(driver) + buttons:
        left, bottom = widget.to_window(widget.x, widget.y)
        if left < -1 or bottom < -1 or left + widget.width > window_w + 1 or (
                bottom + widget.height > window_h + 1):
            found.append(f"{name}: {getattr(widget, 'text', widget)!r} is off the screen")
    for button in buttons:
        if min(button.size) / u < TOUCH_MIN_DESIGN_PX and not small_ok(button):
            found.append(f"{name}: {getattr(button, 'text', button)!r} is "
                         f"{button.width / u:.0f}x{button.height / u:.0f} design px")
    return found


def palette_name(rgba) -> str:
    from kiosk.screens import theme

    for name in theme.PALETTE:
        if all(abs(a - b) < 0.002 for a, b in zip(theme.rgba(name), rgba, strict=False)):
            return name
    raise AssertionError(f"colour {tuple(rgba)} is not in the theme's palette")


def background_name(widget) -> str:
    """The palette colour under a label: its button's, a face's card, else the screen's paper."""
    from kiosk.screens.widgets import FaceButton

    while widget is not None:
        if hasattr(widget, "bg"):
            return palette_name(widget.bg)
        if isinstance(widget, FaceButton):
            return "card"
        widget = widget.parent if widget.parent is not widget else None
    return "paper"


def contrast_problems(driver, name: str) -> list[str]:
    """Every label's text colour on what is behind it, computed from the drawn widgets."""
    from kiosk.screens import theme

    found = []
    for label in labels(driver):
        text, background = palette_name(label.color), background_name(label)
        ratio = theme.contrast(theme.PALETTE[text], theme.PALETTE[background])
        if ratio < 7:
            found.append(f"{name}: {label.text!r} is {text} on {background}, {ratio:.1f}:1")
    return found


# -- one patient, one language -----------------------------------------------------------------


def test_one_tap_switches_the_language_for_this_patient_and_the_rating_records_it(make_kiosk):
    kiosk = make_kiosk(role="ratings", languages="en,es,ar", thanks_s=3)
    assert title_of(kiosk) == "How was your visit today?"

    kiosk.tap(language_button(kiosk, "es"))
    assert title_of(kiosk) == i18n.translate("es", "How was your visit today?")
    assert face_button(kiosk, 5).word == "Muy bien"
    kiosk.tap(face_button(kiosk, 5))
    assert kiosk.screen == "thanks" and title_of(kiosk) == "¡Gracias!"
    assert rating_events(kiosk)[-1]["lang"] == "es"

    kiosk.advance(3)  # the thanks is over: the next patient starts in the site's default
    assert kiosk.screen == "rating" and title_of(kiosk) == "How was your visit today?"
    assert language_button(kiosk, "en").selected


def test_larger_text_is_one_tap_for_this_patient_and_still_fits(make_kiosk):
    kiosk = make_kiosk(role="ratings", languages="en,es", followup_for="all", thanks_s=3)
    normal = max(label.font_size for label in labels(kiosk))
    kiosk.tap(large_text_button(kiosk))
    assert max(label.font_size for label in labels(kiosk)) == pytest.approx(normal * 1.25)
    assert problems_on_screen(kiosk, "rating, larger") == []
    kiosk.tap(face_button(kiosk, 4))
    assert kiosk.screen == "followup" and large_text_button(kiosk).selected
    assert problems_on_screen(kiosk, "follow-up, larger") == []
    kiosk.tap("Send")
    kiosk.advance(3)
    assert not kiosk.flow.rating.large_text
    assert max(label.font_size for label in labels(kiosk)) == pytest.approx(normal)


def test_arabic_is_joined_right_to_left_with_the_faces_mirrored(make_kiosk):
    kiosk = make_kiosk(role="ratings", languages="en,ar")
    kiosk.tap(language_button(kiosk, "ar"))
    subtitle = next(label for label in labels(kiosk) if label.text == i18n.translate(
        "ar", "Tap a face. It takes one second and it is anonymous."))
    assert (subtitle.font_name, subtitle.font_direction) == ("kiosk-arabic", "rtl")
    assert subtitle.font_script_name == "Arab"
    # The happiest face is first in reading order: on the right.
    xs = [face_button(kiosk, score).x for score in (5, 4, 3, 2, 1)]
    assert xs == sorted(xs, reverse=True)
    # A ticket code on the same kiosk stays Latin and left to right.
    assert language_button(kiosk, "en").font_direction == "ltr"


def test_wrapped_arabic_keeps_its_line_order(make_kiosk):
    """A known Kivy pitfall: reordering a paragraph for display before wrapping puts its last
    words on the first line. Here lines are broken in reading order, then each is laid right to
    left, so the first words of the sentence are on the top line."""
    from kivy.uix.label import Label

    kiosk = make_kiosk(role="ratings", languages="en,ar")
    sentence = i18n.translate(
        "ar", "Visits are logged at the desk. Close the kiosk here, or hand the tablet back "
        "to patients.")
    label = Label(text=sentence, font_size=32, text_size=(360, None))
    kiosk.app.root.add_widget(label)
    try:
        kiosk.idle(2)
        lines = [" ".join(word.text for word in line.words).strip()
                 for line in label._label._cached_lines]
        lines = [line for line in lines if line]
        assert len(lines) >= 3
        assert sentence.startswith(lines[0]) and sentence.rstrip().endswith(lines[-1])
        assert " ".join(lines) == " ".join(sentence.split())
        assert label.font_direction == "rtl"
    finally:
        kiosk.app.root.remove_widget(label)


# -- every language: fits, big enough, screenshots ---------------------------------------------


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_every_language_fits_at_this_size_and_is_shot(make_kiosk, tag):
    width, height = window_size()
    folder = OUT / f"{width}x{height}"
    kiosk = make_kiosk(role="ratings", languages=offered_with(tag), followup_for="all")
    problems = []
    for large in (False, True):
        if large:
            kiosk.tap(large_text_button(kiosk))
        suffix = "-larger" if large else ""
        assert kiosk.screen == "rating" and title_of(kiosk) == i18n.translate(
            tag, "How was your visit today?")
        problems += problems_on_screen(kiosk, f"{tag} rating{suffix}")
        problems += contrast_problems(kiosk, f"{tag} rating{suffix}")
        faces = [face_button(kiosk, score) for score in (5, 4, 3, 2, 1)]
        # Each face says its word and has its own drawing: never colour alone.
        assert len({face.word for face in faces}) == 5 and all(face.word for face in faces)
        assert len({face.source for face in faces}) == 5
        kiosk.screenshot(folder / f"{tag}-1-rating{suffix}.png")
        kiosk.tap(face_button(kiosk, 2))
        kiosk.tap(kiosk.button(i18n.translate(tag, "Waiting time")))
        problems += problems_on_screen(kiosk, f"{tag} follow-up{suffix}")
        problems += contrast_problems(kiosk, f"{tag} follow-up{suffix}")
        kiosk.screenshot(folder / f"{tag}-2-followup{suffix}.png")
        kiosk.tap(kiosk.button(i18n.translate(tag, "Send")))
        assert kiosk.screen == "thanks"
        problems += problems_on_screen(kiosk, f"{tag} thanks{suffix}")
        problems += contrast_problems(kiosk, f"{tag} thanks{suffix}")
        kiosk.screenshot(folder / f"{tag}-3-thanks{suffix}.png")
        kiosk.advance(kiosk.flow.settings.thanks_s)
    assert problems == []
    assert [event["lang"] for event in rating_events(kiosk)] == [tag, tag]


def keyboard_key(button) -> bool:
    """The comment box's keys: a full keyboard (five rows of up to eleven keys) cannot have
    20 mm keys on a 10-inch panel and still show the draft, so they are as large as a phone's
    keyboard instead; every other button on the comment screen (Skip, Send) is held to 20 mm."""
    from kiosk.screens.widgets import KeyButton

    return isinstance(button, KeyButton)


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_the_fft_question_and_the_comment_box_fit_in_every_language(make_kiosk, tag):
    from kiosk import presenter

    width, height = window_size()
    folder = OUT / f"{width}x{height}"
    kiosk = make_kiosk(role="ratings", languages=offered_with(tag), survey="fft",
                       comments=True, followup_for="never")
    problems = []
    for large in (False, True):
        if large:
            kiosk.tap(large_text_button(kiosk))
        suffix = "-larger" if large else ""
        assert kiosk.screen == "rating" and title_of(kiosk) == i18n.translate(
            tag, "Overall, how was your experience of our service?")
        words = [face_button(kiosk, score).word for score in (5, 4, 3, 2, 1)]
        assert words == [i18n.translate(tag, presenter.FFT_WORDS[score])
                         for score in (5, 4, 3, 2, 1)]
        assert kiosk.button(i18n.translate(tag, "Don't know"))
        problems += problems_on_screen(kiosk, f"{tag} fft{suffix}")
        problems += contrast_problems(kiosk, f"{tag} fft{suffix}")
        kiosk.screenshot(folder / f"{tag}-4-fft{suffix}.png")
    kiosk.tap(face_button(kiosk, 3))
    assert kiosk.screen == "comment"
    screen = kiosk.app.root.manager.current_screen
    assert screen.heading == i18n.translate(tag, "Is there anything you would like to tell us?")
    assert screen.counter_text == i18n.translate(
        tag, "{n} characters left", n=kiosk.flow.rating.comment.remaining)
    problems += problems_on_screen(kiosk, f"{tag} comment", small_ok=keyboard_key)
    problems += contrast_problems(kiosk, f"{tag} comment")
    kiosk.screenshot(folder / f"{tag}-5-comment.png")
    kiosk.tap(kiosk.button(i18n.translate(tag, "Send")))
    assert kiosk.screen == "thanks"
    assert problems == []
    assert [event["lang"] for event in rating_events(kiosk)] == [tag]


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_the_staff_and_visit_screens_in_every_language(make_kiosk, tag):
    width, height = window_size()
    kiosk = make_kiosk(staff_language=tag, staff_lock_s=3600)
    assert kiosk.screen == "pin"
    words = " ".join(label.text for label in labels(kiosk))
    assert i18n.translate(tag, "Staff PIN") in words
    assert i18n.translate(tag, "Type the PIN to open the desk screen.") in words
    assert problems_on_screen(kiosk, f"{tag} pin") == []
    kiosk.screenshot(OUT / f"{width}x{height}" / f"{tag}-pin.png")
    kiosk.type_pin("2468")
    check_in = i18n.translate(tag, "Check in")
    kiosk.tap(check_in)
    first = kiosk.store.visit(kiosk.flow.desk.queue()[0].visit_id)["ticket"]
    assert kiosk.banner() == i18n.translate(tag, "Checked in: ticket {ticket}.", ticket=first)
    assert i18n.translate(tag, "Undo check-in of {ticket}", ticket=first) in (
        kiosk.app.root.manager.current_screen.undo_text)
    kiosk.tap(check_in)
    ticket = kiosk.store.visit(kiosk.flow.desk.queue()[0].visit_id)["ticket"]
    kiosk.tap(kiosk.row(ticket, i18n.translate(tag, "Call in")))
    kiosk.advance(2)
    assert kiosk.screen == "staff"
    words = " ".join(label.text for label in labels(kiosk))
    assert i18n.translate(tag, "In the chair \u00b7 {count}", count=1) in words
    assert ticket in words  # the ticket code itself is never translated
    assert problems_on_screen(kiosk, f"{tag} staff") == []
    kiosk.screenshot(OUT / f"{width}x{height}" / f"{tag}-staff.png")

    kiosk.tap(kiosk.row(ticket, i18n.translate(tag, "More\u2026")))
    assert kiosk.screen == "visit"
    words = " ".join(label.text for label in labels(kiosk))
    assert i18n.translate(tag, "Ticket {ticket}", ticket=ticket) in words
    assert problems_on_screen(kiosk, f"{tag} visit") == []
    kiosk.screenshot(OUT / f"{width}x{height}" / f"{tag}-visit.png")

    fix_a_time = f"[b]{i18n.translate(tag, 'Fix a time')}[/b]"
    kiosk.tap(next(b for b in kiosk.buttons() if b.text.startswith(fix_a_time)))
    assert kiosk.screen == "fix"
    kiosk.tap(kiosk.button_exact(i18n.translate(tag, "+{minutes} min", minutes=5)))
    words = " ".join(label.text for label in labels(kiosk))
    assert i18n.translate(tag, "Fix a time for {ticket}", ticket=ticket) in words
    assert i18n.translate(tag, "Save the time") in [b.text for b in kiosk.buttons()]
    assert problems_on_screen(kiosk, f"{tag} fix") == []
    kiosk.screenshot(OUT / f"{width}x{height}" / f"{tag}-fix.png")


def test_the_same_languages_at_the_other_size():
    other = (800, 480) if window_size() != (800, 480) else (1280, 800)
    env = dict(os.environ, KIOSK_TEST_SIZE=f"{other[0]}x{other[1]}")
    folder = OUT / f"{other[0]}x{other[1]}"
    shutil.rmtree(folder, ignore_errors=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "every_language_fits or visit_screens_in or comment_box_fit"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert f"{3 * len(LANGUAGES)} passed" in result.stdout, result.stdout[-3000:]
    assert len(list(folder.glob("*.png"))) == len(LANGUAGES) * 13
