"""A site's languages: chosen centrally (validated against the catalogs), served to kiosks,
pinned like any site key; the patient's one-tap choice lasts for that patient and is recorded
with the rating (``lang``, an optional wire field)."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from kiosk.config import ConfigError, load_settings
from kiosk.errors import ModelError
from kiosk.rating_flow import RatingFlow
from kiosk.shared.languages import LANGUAGES, UnknownLanguage, check_languages
from kiosk.shared.wire import EventRejected, validate_event
from kiosk.site_settings import with_site_settings
from sync.central import cli
from tests.support.central_server import central_server  # noqa: F401,F811  (a fixture)


def rating_event(**data) -> dict:
    return {"id": str(uuid.uuid4()), "device_seq": 1, "type": "rating.submitted",
            "occurred_at": "2026-11-23T09:00:00Z", "visit_id": None,
            "data": {"score": 4, "scale": 5, **data}}


# -- the list of languages ---------------------------------------------------------------------


def test_a_site_lists_known_languages_once_the_default_first():
    assert check_languages("es, en,ar") == ("es", "en", "ar")
    assert check_languages(["zh-Hans"]) == ("zh-Hans",)


@pytest.mark.parametrize(("value", "sentence"), [
    ("en,xx", "language 'xx' has no catalog; the kiosk is written in en, es"),
    ("en,es,en", "language 'en' is listed twice"),
    ("", "give at least one language"),
    ("en,es,fr,de,pl,pt,tr", "7 languages are too many: at most 6"),
    ("zh_Hans", "language 'zh_Hans' has no catalog"),
])
def test_a_list_the_kiosk_cannot_show_is_refused_with_a_sentence(value, sentence):
    with pytest.raises(UnknownLanguage, match=sentence):
        check_languages(value)


def test_every_language_is_named_in_its_own_script():
    names = {tag: language.native_name for tag, language in LANGUAGES.items()}
    assert names["es"] == "Español" and names["ar"] == "العربية" and names["zh-Hans"] == "中文"
    assert len(set(names.values())) == len(names)


# -- the kiosk's config ----------------------------------------------------------------------


def test_the_kiosk_config_takes_languages_and_a_staff_language(tmp_path):
    settings = load_settings(environ={"KIOSK_LANGUAGES": "es,en", "KIOSK_STAFF_LANGUAGE": "ar"},
                             data_dir=str(tmp_path))
    assert settings.languages == ("es", "en") and settings.default_language == "es"
    assert settings.staff_screen_language == "ar"
    plain = load_settings(environ={}, data_dir=str(tmp_path))
    assert plain.languages == ("en",) and plain.staff_screen_language == "en"


@pytest.mark.parametrize(("key", "value", "sentence"), [
    ("KIOSK_LANGUAGES", "en,klingon", "config key 'languages' = 'en,klingon' is not allowed: "
                                      "language 'klingon' has no catalog"),
    ("KIOSK_STAFF_LANGUAGE", "xx", "config key 'staff_language' = 'xx' is not allowed: use one"),
])
def test_a_language_the_kiosk_has_no_catalog_for_stops_it_with_a_sentence(tmp_path, key,
                                                                          value, sentence):
    with pytest.raises(ConfigError, match=sentence):
        load_settings(environ={key: value}, data_dir=str(tmp_path))


def test_the_site_languages_follow_the_central_store_unless_pinned(tmp_path):
    open_kiosk = load_settings(environ={}, data_dir=str(tmp_path))
    merged, refused = with_site_settings(open_kiosk, {"languages": ["es", "ar"]})
    assert merged.languages == ("es", "ar") and refused == []
    pinned = load_settings(environ={"KIOSK_LANGUAGES": "en"}, data_dir=str(tmp_path))
    assert with_site_settings(pinned, {"languages": ["es"]})[0].languages == ("en",)
    _, refused = with_site_settings(open_kiosk, {"languages": ["xx"]})
    assert refused and "language 'xx' has no catalog" in refused[0]


# -- the patient's choice --------------------------------------------------------------------


@pytest.fixture
def three_languages(store, tmp_path, clock):
    settings = load_settings(environ={}, data_dir=str(tmp_path), languages="en,es,ar",
                             device_name="desk-1")
    return RatingFlow(store, settings, clock)


def recorded(store) -> list[dict]:
    return [json.loads(row["data"]) for row in
            store.db.query("SELECT data FROM events WHERE type = 'rating.submitted' "
                           "ORDER BY device_seq")]


def test_the_rating_records_the_language_the_patient_chose(three_languages, store):
    rating = three_languages
    rating.start()
    assert rating.language == "en"
    rating.choose_language("ar")
    rating.choose(5)
    assert recorded(store)[-1]["lang"] == "ar"


# The four fields every central store has accepted since the first: a store from before the
# languages refuses any other, so a kiosk offering one language (all such a store can tell it)
# must send nothing more, or every rating of a kiosk upgraded first would be quarantined.
ORIGINAL_RATING_FIELDS = {"score", "scale", "tags", "misuse"}


def test_a_kiosk_offering_one_language_sends_no_lang(store, tmp_path, clock):
    settings = load_settings(environ={}, data_dir=str(tmp_path), device_name="desk-1")
    assert settings.languages == ("en",)
    rating = RatingFlow(store, settings, clock)
    rating.start()
    rating.choose(5)
    assert set(recorded(store)[-1]) == ORIGINAL_RATING_FIELDS


def test_the_choice_lasts_for_this_patient_only(three_languages, store, clock):
    rating = three_languages
    rating.start()
    rating.choose_language("es")
    rating.toggle_large_text()
    rating.choose(2)  # a follow-up: the choice holds
    assert rating.language == "es" and rating.large_text
    rating.send_followup()
    assert recorded(store)[-1]["lang"] == "es"
    rating.start()  # the next patient
    assert rating.language == "en" and not rating.large_text


def test_the_choice_goes_when_the_screen_goes_idle(store, tmp_path, clock):
    settings = load_settings(environ={}, data_dir=str(tmp_path), languages="es,en",
                             role="ratings")
    rating = RatingFlow(store, settings, clock)
    rating.start()
    assert rating.remaining() is None  # a ratings tablet waits for the next patient
    rating.choose_language("en")
    # Going back to the site's language is announced: the countdown shows while it runs.
    assert rating.remaining() == pytest.approx(settings.idle_timeout_s)
    clock.advance(seconds=settings.idle_timeout_s)
    rating.tick()
    assert rating.state == "ask" and rating.language == "es"
    assert rating.remaining() is None


def test_a_language_the_site_does_not_offer_is_refused(three_languages):
    three_languages.start()
    with pytest.raises(ModelError, match="'fr' is not one of this kiosk's languages"):
        three_languages.choose_language("fr")


# -- the wire format -------------------------------------------------------------------------


def test_lang_is_optional_and_any_well_formed_tag_is_kept():
    assert "lang" not in validate_event(rating_event()).data  # an older kiosk's rating
    assert validate_event(rating_event(lang="zh-Hans")).data["lang"] == "zh-Hans"
    assert validate_event(rating_event(lang="uk")).data["lang"] == "uk"  # a newer kiosk's


@pytest.mark.parametrize("lang", ["", "Spanish", "es_ES", 7, "es\n", "e"])
def test_a_lang_that_is_not_a_language_tag_is_refused(lang):
    with pytest.raises(EventRejected, match="is not a BCP 47 language tag"):
        validate_event(rating_event(lang=lang))


# -- the central store -----------------------------------------------------------------------


def test_site_set_languages_is_checked_and_served_to_the_kiosks(central_server, capsys):  # noqa: F811
    device = central_server.add_device(site="North")
    code = cli.main(["site", "set", "--data", str(central_server.data_dir), "--site", "North",
                     "--languages", "es,en,ar"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out)["languages"] == ["es", "en", "ar"]
    config = requests.get(central_server.url("/api/v1/config"), headers=device.headers,
                          timeout=10).json()
    assert config["languages"] == ["es", "en", "ar"]

    code = cli.main(["site", "set", "--data", str(central_server.data_dir), "--site", "North",
                     "--languages", "es,xx"])
    err = capsys.readouterr().err
    assert code == 2 and "language 'xx' has no catalog" in err and "Traceback" not in err
    config = requests.get(central_server.url("/api/v1/config"), headers=device.headers,
                          timeout=10).json()
    assert config["languages"] == ["es", "en", "ar"]  # nothing lost
