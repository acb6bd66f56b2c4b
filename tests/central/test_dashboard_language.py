"""The dashboard's language: a login's choice kept in ``users.language`` (a migration of its
own), changed with an audit entry, refused with a sentence when not offered; before login the
browser's Accept-Language decides. On a real SQLite store."""

from __future__ import annotations

import pytest

from sync.central import audit, migrations
from sync.central.dashboard import accounts, language
from sync.central.people import manage
from tests.support.hashing import fast_hasher

ACTOR = audit.Actor("user", "user:north-lead", "127.0.0.1")
PASSWORD = "quiet harbour lanterns"


@pytest.fixture(autouse=True)
def cheap_hashing():
    accounts.set_hasher(fast_hasher())


def test_the_language_column_has_its_own_migration():
    assert migrations._dashboard_language in migrations.MIGRATIONS


def test_a_new_login_reads_english_and_its_choice_is_kept_and_audited(central_store):
    with central_store.write() as db:
        user = accounts.add_user(db, "north-lead", PASSWORD)
    assert user.language == "en"
    with central_store.write() as db:
        manage.set_own_language(db, ACTOR, user, "es")
    db = central_store.db
    assert accounts.get_user(db, user.id).language == "es"
    assert accounts.verify_password(db, "north-lead", PASSWORD).language == "es"
    entry = audit.entries(db, audit.AuditFilter(action="user.language_change"), 10)[0]
    assert (entry["target"], entry["before"], entry["after"]) == (
        "north-lead", {"language": "en"}, {"language": "es"})


def test_choosing_the_language_already_chosen_records_nothing(central_store):
    with central_store.write() as db:
        user = accounts.add_user(db, "north-lead", PASSWORD)
        manage.set_own_language(db, ACTOR, user, "en")
    assert audit.entries(central_store.db, audit.AuditFilter(action="user.language_change"),
                         10) == []


def test_a_language_not_offered_is_refused_with_the_choices_and_nothing_changes(central_store):
    with central_store.write() as db:
        user = accounts.add_user(db, "north-lead", PASSWORD)
    refusal = r"'xx' is not offered; choose one of en \(English\), es \(Español\)"
    with pytest.raises(ValueError, match=refusal), central_store.write() as db:
        manage.set_own_language(db, ACTOR, user, "xx")
    assert accounts.get_user(central_store.db, user.id).language == "en"


@pytest.mark.parametrize(("header", "expected"), [
    (None, "en"),
    ("", "en"),
    ("es", "es"),
    ("es-MX,es;q=0.9,en;q=0.8", "es"),
    ("en-GB,en;q=0.9,es;q=0.8", "en"),
    ("fr-FR,fr;q=0.9,es;q=0.5", "es"),  # French is not offered: the next one the browser asks
    ("de;q=0.9,ES;q=0.95", "es"),
    ("es;q=0,en;q=0.1", "en"),  # q=0: "not this one"
    ("es;q=nonsense", "en"),
    ("*", "en"),
])
def test_the_browser_language_picks_the_login_pages_language(header, expected):
    assert language.from_accept_language(header) == expected


def test_spanish_words_come_from_the_catalog_and_unknown_sentences_pass_through():
    assert language.translate("es", "Today") == "Hoy"
    assert language.translate("es", "Riverside Medical") == "Riverside Medical"
    assert language.translate("en", "Today") == "Today"
