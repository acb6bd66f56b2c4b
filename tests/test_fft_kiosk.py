"""The FFT survey, the comment box and comment retention on the kiosk, without a window."""

from __future__ import annotations

import json

import pytest

from kiosk.comment_box import BACKSPACE, LAYOUTS, SHIFT, SPACE, CommentDraft, layout_for
from kiosk.config import ConfigError, load_settings
from kiosk.errors import ModelError
from kiosk.flow import KioskFlow
from kiosk.shared.wire import MAX_COMMENT_CHARS, EventRejected, validate_event
from kiosk.site_settings import with_site_settings
from tests.support.wire_events import WireEvents


@pytest.fixture
def make_flow(make_flow):
    """The shared one (tests/conftest.py), a ratings tablet unless told otherwise."""
    def make(**overrides) -> KioskFlow:
        overrides.setdefault("role", "ratings")
        return make_flow(**overrides)

    return make


def ratings_sent(store) -> list[dict]:
    return [json.loads(e["data"]) for e in store.events() if e["type"] == "rating.submitted"]


def type_text(flow: KioskFlow, text: str) -> None:
    for character in text:
        if character == " ":
            flow.press_key(SPACE)
            continue
        if character.isalpha() and character.isupper() != flow.rating.comment.shifted:
            flow.press_key(SHIFT)
        flow.press_key(character.lower())


def test_fft_faces_are_five_point_whatever_the_site_scale(make_flow, store):
    flow = make_flow(survey="fft", rating_scale=4, followup_for="never")
    assert flow.rating.scale == 5
    flow.choose_face(3)
    assert ratings_sent(store) == [{"score": 3, "scale": 5, "tags": [], "misuse": False,
                                    "survey": "fft"}]


def test_faces_of_a_faces_site_carry_no_survey(make_flow, store):
    """An answer without "survey" was asked as faces, as every old kiosk's: not an FFT answer."""
    flow = make_flow(followup_for="never")
    flow.choose_face(5)
    assert "survey" not in ratings_sent(store)[0]


@pytest.mark.parametrize("answer", ["dont_know", "face"])
def test_two_answers_within_the_misuse_interval_flag_the_second_dont_know_too(
        make_flow, store, clock, answer):
    """Misuse is about any answer: a "Don't know" (kept out of the local ratings table) is
    the one before as much as a face is."""
    flow = make_flow(survey="fft", followup_for="never")
    assert flow.settings.thanks_s < flow.settings.misuse_interval_s
    flow.choose_dont_know() if answer == "dont_know" else flow.choose_face(5)
    clock.advance(seconds=flow.settings.thanks_s + 0.5)
    flow.tick()
    flow.choose_dont_know()
    clock.advance(seconds=flow.settings.misuse_interval_s + 1)
    flow.tick()
    flow.choose_dont_know()  # after the interval: not misuse again
    assert [s["misuse"] for s in ratings_sent(store)] == [False, True, False]


def test_dont_know_is_sent_with_no_score_and_kept_out_of_local_ratings(make_flow, store):
    flow = make_flow(survey="fft")
    assert flow.choose_dont_know() == "thanks"
    sent = ratings_sent(store)
    assert sent == [{"score": None, "scale": 5, "tags": [], "misuse": False, "dont_know": True,
                     "survey": "fft"}]
    assert store.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0
    event = store.events()[-1]
    validate_event({**{k: event[k] for k in ("id", "device_seq", "type", "occurred_at",
                                             "visit_id")}, "data": sent[0]})


def test_dont_know_is_refused_on_a_faces_site(make_flow):
    flow = make_flow()
    with pytest.raises(ModelError, match="Friends and Family Test only"):
        flow.choose_dont_know()


def test_comment_follows_the_tags_and_is_redacted_before_it_is_written(make_flow, store):
    flow = make_flow(survey="fft", comments=True, followup_for="negative")
    flow.choose_face(1)
    assert flow.screen() == "followup"
    flow.toggle_tag("waiting_time")
    flow.send_followup()
    assert flow.screen() == "comment"
    assert ratings_sent(store) == []  # nothing written while typing
    type_text(flow, "Ring me 07700 900123 about it")
    assert flow.rating.comment.text == "Ring me 07700 900123 about it"
    assert "07700" not in json.dumps(store.db.execute("SELECT * FROM meta").fetchall())
    flow.send_comment()
    assert ratings_sent(store) == [{"score": 1, "scale": 5, "tags": ["waiting_time"],
                                    "misuse": False, "survey": "fft",
                                    "comment": "Ring me [removed] about it"}]
    assert flow.rating.comment.text == ""  # not left in memory for the next patient


def test_skip_and_timeout_write_the_answer_without_a_comment(make_flow, store, clock):
    flow = make_flow(survey="fft", comments=True, followup_for="never", misuse_interval_s=0)
    flow.choose_dont_know()
    assert flow.screen() == "comment"
    type_text(flow, "Hello")
    flow.skip_comment()
    flow.tick()
    clock.advance(seconds=flow.settings.thanks_s + 1)
    flow.tick()
    flow.choose_face(5)
    type_text(flow, "half typed")
    clock.advance(seconds=flow.settings.idle_timeout_s + 1)
    flow.tick()
    sent = ratings_sent(store)
    assert [s.get("comment") for s in sent] == [None, None]
    assert [s["score"] for s in sent] == [None, 5]


def test_an_empty_or_all_removed_comment_is_not_sent(make_flow, store):
    flow = make_flow(comments=True, followup_for="never")
    flow.choose_face(4)
    type_text(flow, "   ")
    flow.send_comment()
    assert "comment" not in ratings_sent(store)[0]


def test_the_keyboard_stops_at_the_limit_and_edits():
    draft = CommentDraft()
    draft.press("h")
    assert draft.text == "H" and not draft.shifted
    draft.press(BACKSPACE)
    assert draft.text == ""
    for _ in range(MAX_COMMENT_CHARS + 20):
        draft.press("a")
    assert len(draft.text) == MAX_COMMENT_CHARS and draft.remaining == 0
    with pytest.raises(ValueError, match="not a key"):
        draft.press("enter")


@pytest.mark.parametrize("key", ["@", "/", ":", "\n", "é", "A", "ab", ""])
def test_the_draft_takes_only_keys_of_its_keyboard(key):
    """What the draft holds is what the screen offers ("A" is "a" with shift, not a key)."""
    draft = CommentDraft()
    with pytest.raises(ValueError, match="not a key of the comment keyboard"):
        draft.press(key)
    assert draft.text == ""
    assert all(draft.press(k) for row in draft.rows for k in row if len(k) == 1)


def test_the_comment_keyboard_follows_the_patient_language(make_flow, monkeypatch):
    """Today only English has a layout; the seam takes the patient's language so another
    layout is used as soon as it exists, even with the box open and text typed."""
    monkeypatch.setitem(LAYOUTS, "cy", ((*"ŵŷ", SPACE),))
    flow = make_flow(comments=True, followup_for="never")
    assert flow.rating.comment.language == "en"
    flow.choose_face(4)
    flow.press_key("h")
    flow.set_patient_language("cy-GB")
    assert flow.rating.comment.rows == LAYOUTS["cy"]
    flow.press_key("ŵ")
    assert flow.rating.comment.text == "Hŵ"
    with pytest.raises(ValueError, match="not a key"):
        flow.press_key("@")
    flow.rating.start(language="fr")  # the next patient's: no layout yet, English's
    assert flow.rating.comment.rows == LAYOUTS["en"]


def test_layouts_are_keyed_by_language():
    assert layout_for("en-GB") == LAYOUTS["en"]
    assert layout_for("xx") == LAYOUTS["en"]  # a language with no layout yet gets English's
    assert all(SPACE in row or len(row) >= 10 for row in LAYOUTS["en"])


def test_keys_outside_the_comment_box_are_refused(make_flow):
    flow = make_flow(comments=True)
    with pytest.raises(ModelError, match="not open"):
        flow.press_key("a")
    with pytest.raises(ModelError, match="no comment"):
        flow.send_comment()


@pytest.mark.parametrize("key, value, words", [
    ("survey", "smiles", "use one of 'faces', 'fft'"),
    ("comments", "maybe", "use on or off"),
    ("comment_retention_days", 0, "from 1 to 3650"),
])
def test_bad_config_values_are_refused_with_a_sentence(tmp_path, key, value, words):
    with pytest.raises(ConfigError, match=words):
        load_settings(environ={}, data_dir=str(tmp_path), **{key: value})


def test_the_environment_switches_the_comment_box(tmp_path):
    settings = load_settings(environ={"KIOSK_COMMENTS": "on", "KIOSK_SURVEY": "fft"},
                             data_dir=str(tmp_path))
    assert settings.comments is True and settings.survey == "fft"


def test_the_site_survey_and_comments_reach_a_kiosk_unless_pinned(tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path))
    changed, refused = with_site_settings(settings, {"survey": "fft", "comments": True})
    assert (changed.survey, changed.comments, refused) == ("fft", True, [])
    pinned = load_settings(environ={}, data_dir=str(tmp_path), comments=False)
    kept, _ = with_site_settings(pinned, {"survey": "fft", "comments": True})
    assert (kept.survey, kept.comments) == ("fft", False)
    _, refused = with_site_settings(settings, {"survey": "stars"})
    assert refused and "survey" in refused[0]


def test_comments_are_forgotten_on_the_kiosk_after_their_retention(make_flow, store, clock):
    flow = make_flow(comments=True, followup_for="never", misuse_interval_s=0)
    flow.choose_face(2)
    type_text(flow, "Old one")
    flow.send_comment()
    clock.advance(seconds=31 * 86400)
    flow.tick()  # thanks -> back to the faces (a ratings tablet)
    flow.choose_face(4)
    type_text(flow, "New one")
    flow.send_comment()
    clock.advance(seconds=86400)
    store.purge(400, comment_retention_days=30)
    sent = ratings_sent(store)
    assert [s.get("comment") for s in sent] == [None, "New one"]
    assert [s["score"] for s in sent] == [2, 4]  # the answers stay


def test_the_wire_takes_dont_know_and_comment_and_refuses_what_is_wrong():
    kiosk = WireEvents()

    def rating(data):
        return kiosk.event("rating.submitted", "2026-10-01T09:00:00Z", None, data)

    validate_event(rating({"score": None, "scale": 5, "dont_know": True}))
    validate_event(rating({"score": None, "scale": 5, "dont_know": True, "tags": [],
                           "survey": "fft"}))
    validate_event(rating({"score": 1, "scale": 5, "survey": "fft"}))
    validate_event(rating({"score": 4, "scale": 5, "comment": "Lovely staff"}))
    validate_event(rating({"score": 4, "scale": 5}))  # an old kiosk's rating, unchanged
    for data, reason in [
        ({"score": 3, "scale": 5, "dont_know": True}, "score null"),
        ({"score": None, "scale": 4, "dont_know": True}, "scale is 5"),
        ({"score": None, "scale": 5}, "outside 1..5"),
        ({"score": None, "scale": 5, "dont_know": "yes"}, "true or false"),
        ({"score": 4, "scale": 5, "comment": "x" * 501}, "at most 500"),
        ({"score": 4, "scale": 5, "comment": 12}, "at most 500"),
        ({"score": None, "scale": 5, "dont_know": True, "tags": ["waiting_time"]},
         "no face to follow up"),
        ({"score": 4, "scale": 5, "survey": "faces"}, "is not 'fft'"),
        ({"score": 3, "scale": 4, "survey": "fft"}, "has scale 5"),
    ]:
        with pytest.raises(EventRejected, match=reason):
            validate_event(rating(data))


def test_the_kiosk_asks_the_fft_in_nhs_englands_words_word_for_word():
    """The central store keeps fft's English; the kiosk's extractable literals must be the
    same words, or a translation would be of a different question."""
    from kiosk import presenter
    from kiosk.shared import fft

    assert presenter.QUESTIONS["fft"][0] == fft.QUESTION
    assert {score: words for score, words in fft.fft_faces()} == presenter.FFT_WORDS
    answer_words = {key: words for key, words, _ in fft.ANSWERS}
    assert answer_words["dont_know"] == presenter.DONT_KNOW_WORDS


@pytest.mark.parametrize("tag", ["es", "ar", "zh-Hans"])
def test_the_fft_and_the_comment_box_are_in_the_patient_language(tag):
    from kiosk import i18n, presenter

    i18n.use(tag)
    try:
        shown = [presenter.question("fft")[0], presenter.question("fft")[1],
                 presenter.dont_know_words(), presenter.comment_heading(),
                 presenter.comment_privacy(), presenter.comment_counter(7),
                 presenter.key_word(BACKSPACE), presenter.key_word(SPACE),
                 *(words for _, words, _ in presenter.survey_faces("fft", 5))]
    finally:
        i18n.use("en")
    english = {"Overall, how was your experience of our service?", "Don't know", "Space",
               "Neither good nor poor", "Very good", "Tap one answer. It is anonymous."}
    assert not english & set(shown)
    assert len(set(shown)) == len(shown)
    assert presenter.key_word(SHIFT) == "\u21e7 Aa"  # the same in every language


def test_the_comment_counter_keeps_its_number_in_every_language():
    from kiosk import i18n, presenter
    from kiosk.shared.languages import LANGUAGES

    for tag in LANGUAGES:
        i18n.use(tag)
        try:
            counter = presenter.comment_counter(123)
        finally:
            i18n.use("en")
        assert "123" in counter or "321" in counter, (tag, counter)  # Arabic stores it reversed
