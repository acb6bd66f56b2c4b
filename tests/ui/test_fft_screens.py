"""The NHS FFT question and the comment box in a real offscreen window: real taps, the store
checked, screenshots kept in test-output/screenshots/fft/ to be looked at."""

from __future__ import annotations

import json
from pathlib import Path

from kiosk.shared.fft import QUESTION

OUT = Path(__file__).resolve().parents[2] / "test-output" / "screenshots" / "fft"


def _ratings(kiosk) -> list[dict]:
    return [json.loads(e["data"]) for e in kiosk.store.events()
            if e["type"] == "rating.submitted"]


def test_the_fft_screen_asks_the_official_question_with_six_answers(make_kiosk):
    kiosk = make_kiosk(role="ratings", survey="fft")
    assert kiosk.screen == "rating"
    screen = kiosk.app.root.manager.current_screen
    assert screen.heading == QUESTION
    words = [b.word for b in screen.ids.faces.children][::-1]
    assert words == ["Very good", "Good", "Neither good nor poor", "Poor", "Very poor"]
    kiosk.screenshot(OUT / "fft-rating.png")

    kiosk.tap("Don't know")
    assert kiosk.screen == "thanks"
    assert _ratings(kiosk) == [{"score": None, "scale": 5, "tags": [], "misuse": False,
                                "dont_know": True, "survey": "fft"}]
    assert kiosk.store.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0


def test_a_faces_site_shows_no_dont_know_button(make_kiosk):
    kiosk = make_kiosk(role="ratings")
    assert kiosk.app.root.manager.current_screen.heading == "How was your visit today?"
    assert not [b for b in kiosk.buttons() if "Don't know" in getattr(b, "text", "")]


def test_the_comment_box_types_redacts_and_sends(make_kiosk):
    kiosk = make_kiosk(role="ratings", survey="fft", comments=True, followup_for="never",
                       misuse_interval_s=0)
    kiosk.tap("Neither good nor poor")
    assert kiosk.screen == "comment"
    for key in "Call 07700 900123":
        kiosk.tap(kiosk_key(kiosk, key))
    screen = kiosk.app.root.manager.current_screen
    assert screen.draft == "Call 07700 900123"
    assert "do not write names or personal details" in screen.privacy_text
    kiosk.screenshot(OUT / "comment-box.png")
    kiosk.tap("Send")
    assert kiosk.screen == "thanks"
    assert _ratings(kiosk)[-1]["comment"] == "Call [removed]"
    assert _ratings(kiosk)[-1]["score"] == 3


def test_skip_leaves_no_comment_and_the_face_counts(make_kiosk):
    kiosk = make_kiosk(role="ratings", survey="fft", comments=True, followup_for="never")
    kiosk.tap("Very good")
    for key in "nice":
        kiosk.tap(kiosk_key(kiosk, key))
    kiosk.tap("Skip")
    assert kiosk.screen == "thanks"
    assert _ratings(kiosk) == [{"score": 5, "scale": 5, "tags": [], "misuse": False,
                                "survey": "fft"}]


def kiosk_key(kiosk, character: str):
    """The keyboard key that types ``character`` (capitals come from the shift key's state)."""
    from kiosk.screens.widgets import KeyButton

    wanted = "space" if character == " " else character.lower()
    screen = kiosk.app.root.manager.current_screen
    for widget in screen.walk(restrict=True):
        if isinstance(widget, KeyButton) and widget.key == wanted:
            if character.isalpha() and character.isupper() != screen.shifted:
                kiosk.tap(next(w for w in screen.walk(restrict=True)
                               if isinstance(w, KeyButton) and w.key == "shift"))
            return widget
    raise LookupError(f"no key types {character!r}")
