"""The dashboard in Spanish, chosen per login, in headless Chromium: a login switches to
Español on its Account page and Today and Compare then speak Spanish (data such as site names
as they are), while another login still reads English; before login the browser's language
decides; a language not offered is refused with a sentence. Screenshot of Today in Spanish."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from sync.central import audit
from sync.central.dashboard import accounts
from tests.dashboard.conftest import PASSWORD, SCREENSHOTS, log_in

pytestmark = pytest.mark.browser
SITE = "Riverside Medical"  # a site of the demo data: its name is never translated


def _new_login(data_dir) -> str:
    name = f"north-lead-{uuid.uuid4().hex[:6]}"
    store = data_dir.open()
    try:
        with store.write() as db:
            accounts.add_user(db, name, PASSWORD)
    finally:
        store.close()
    return name


def test_a_login_switches_to_spanish_and_another_login_still_reads_english(
        page, central, data_dir):
    name = _new_login(data_dir)
    log_in(page, name)
    page.wait_for_selector("#tile-happy-index")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.goto("/account")
    expect(page.locator("#language-choice")).to_have_value("en")
    page.select_option("#language-choice", "es")
    page.click("#change-language")
    expect(page.locator("#account-note")).to_have_text(
        "El panel ya está en el idioma que eligió.")
    expect(page.locator("h1")).to_have_text("Su cuenta")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("#language-choice")).to_have_value("es")
    page.screenshot(path=str(SCREENSHOTS / "account-es.png"), full_page=True)

    page.clock.install()
    page.goto("/")
    expect(page.locator("h1")).to_contain_text("Hoy")
    expect(page.locator("#tile-happy-index .tile-label")).to_have_text("Índice de satisfacción")
    expect(page.locator("#tile-visits .tile-label")).to_have_text("Visitas")
    expect(page.locator("#queue-title")).to_have_text("Cola en directo")
    expect(page.locator("nav a[href^='/compare']")).to_have_text("Comparar")
    expect(page.locator("#site option[value='']")).to_have_text("Todos los centros")
    expect(page.locator(f"#site option[value='{SITE}']")).to_have_text(SITE)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "today-es.png"), full_page=True)
    # The live queue redrawn by the page's script keeps the page's words.
    page.eval_on_selector("#queue .desk", "desk => { desk.dataset.drawnByServer = '1'; }")
    page.clock.run_for(11_000)  # one refresh tick, without waiting ten real seconds
    expect(page.locator("#queue [data-drawn-by-server]")).to_have_count(0)
    expect(page.locator("#queue th").first).to_have_text("Turno")
    expect(page.locator("#queue .desk h3 span").first).to_contain_text("en cola")
    expect(page.locator("#queue td", has_text="esperando").first).to_be_visible()

    page.goto("/compare")
    expect(page.locator("h1")).to_have_text("Comparar")
    expect(page.locator("#compare-sites caption")).to_have_text("Centros")
    expect(page.locator("#compare-sites thead th").nth(1)).to_have_text("Visitas")
    expect(page.locator(f"#compare-sites tr[data-name='{SITE}'] th")).to_have_text(SITE)
    page.screenshot(path=str(SCREENSHOTS / "compare-es.png"), full_page=False)

    store = data_dir.open()
    try:
        changes = audit.entries(store.db, audit.AuditFilter(action="user.language_change"), 50)
    finally:
        store.close()
    assert [(e["before"], e["after"]) for e in changes if e["target"] == name] == [
        ({"language": "en"}, {"language": "es"})]

    # Another login, in the same browser, still reads English.
    page.context.clear_cookies()
    log_in(page)
    page.wait_for_selector("#tile-happy-index")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_contain_text("Today")
    expect(page.locator("#tile-happy-index .tile-label")).to_have_text("Happy Index")
    page.goto("/compare")
    expect(page.locator("#compare-sites caption")).to_have_text("Sites")


def test_the_login_page_follows_the_browsers_language(page, central):
    page.set_extra_http_headers({"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h1")).to_have_text("Iniciar sesión")
    expect(page.locator("#login")).to_have_text("Iniciar sesión")
    page.set_extra_http_headers({"Accept-Language": "en-GB,en;q=0.9"})
    page.goto("/login")
    expect(page.locator("h1")).to_have_text("Log in")


def test_a_language_not_offered_is_refused_with_a_sentence(page, central, data_dir):
    name = _new_login(data_dir)
    log_in(page, name)
    page.wait_for_selector("#tile-happy-index")
    page.goto("/account")
    # As a hand-made form would send it: a value the select does not offer.
    page.eval_on_selector("#language-choice option[value='es']", "o => { o.value = 'xx'; }")
    page.select_option("#language-choice", "xx")
    page.click("#change-language")
    expect(page.locator("#account-error")).to_have_text(
        "The language 'xx' is not offered; choose one of en (English), es (Español).")
    expect(page.locator("html")).to_have_attribute("lang", "en")
