"""People management in headless Chromium, as an admin and a new manager would use it: the
admin adds a manager of one site, the manager opens the one-time link, sets a password (a
common one refused), logs in and sees that one site only; sets up TOTP and logs in with a code;
the admin sees it all on the Audit page. Screenshots of each page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import SCREENSHOTS, log_in

pytestmark = pytest.mark.browser
SITE = "Riverside Medical"
NEW_PASSWORD = "river stones at dusk"


def _add_manager(page, name: str) -> str:
    """As the admin (logged in): add ``name`` as manager of SITE; returns the one-time link."""
    page.goto("/people")
    expect(page.locator("h1")).to_have_text("People")
    page.fill("#new-name", name)
    form = page.locator("#add-person-form")
    form.locator("select[name=role]").select_option("manager")
    form.locator(f"input[name=sites][value='{SITE}']").check()
    form.locator("#add-person-button").click()
    expect(page.locator("#people-note")).to_contain_text(f"{name} added as manager")
    link = page.locator("#password-link-url").inner_text()
    assert "/password/set#" in link and "?" not in link  # the token never reaches a log
    return link


def test_an_admin_adds_a_manager_who_sets_a_password_and_sees_one_site(page, central):
    name = f"manager-{uuid.uuid4().hex[:6]}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page)
    page.wait_for_selector("#tile-happy-index")
    link = _add_manager(page, name)
    row = page.locator(f"tr[data-name='{name}']")
    expect(row.locator("select[name=role]")).to_have_value("manager")
    expect(row.locator(f"input[name=sites][value='{SITE}']")).to_be_checked()
    page.screenshot(path=str(SCREENSHOTS / "people.png"), full_page=True)

    page.context.clear_cookies()
    page.goto(link)
    page.fill("#new-password", "password1234")
    page.fill("#again", "password1234")
    page.click("#set-password")
    expect(page.locator("#set-error")).to_contain_text("common and breached")
    page.goto(link)  # the link was not spent by the refusal
    page.fill("#new-password", NEW_PASSWORD)
    page.fill("#again", NEW_PASSWORD)
    page.click("#set-password")
    expect(page.locator("#login-note")).to_contain_text("Your password is set")

    log_in(page, name, NEW_PASSWORD)
    page.wait_for_selector("#tile-happy-index")
    options = page.locator("#site option").all_inner_texts()
    assert options == ["All sites", SITE]
    nav = page.locator("header nav a").all_inner_texts()
    assert "People" not in nav and "Audit" not in nav
    page.select_option("#site", SITE)
    page.click("#apply")
    page.wait_for_selector("#tile-happy-index")
    page.screenshot(path=str(SCREENSHOTS / "manager-one-site.png"), full_page=True)
    page.goto("/people")
    expect(page.locator("#error-message")).to_contain_text("may not do this")

    # The same link cannot be used twice.
    page.context.clear_cookies()
    page.goto(link)
    page.fill("#new-password", "another calm phrase")
    page.fill("#again", "another calm phrase")
    page.click("#set-password")
    expect(page.locator("#set-error")).to_contain_text("used or has expired")


def test_a_person_sets_up_totp_and_then_logs_in_with_a_code(page, central):
    name = f"manager-{uuid.uuid4().hex[:6]}"
    log_in(page)
    page.wait_for_selector("#tile-happy-index")
    link = _add_manager(page, name)
    page.context.clear_cookies()
    page.goto(link)
    page.fill("#new-password", NEW_PASSWORD)
    page.fill("#again", NEW_PASSWORD)
    page.click("#set-password")
    log_in(page, name, NEW_PASSWORD)
    page.wait_for_selector("#tile-happy-index")

    page.click("#account-link")
    page.click("#totp-setup")
    expect(page.locator("#totp-qr svg")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "totp-setup.png"), full_page=True)
    secret = page.locator("input[name=secret]").get_attribute("value")
    page.fill("#totp-code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("#totp-confirm")
    expect(page.locator("#account-error")).to_contain_text("that code is not right".capitalize())
    secret = page.locator("input[name=secret]").get_attribute("value")
    page.fill("#totp-code", pyotp.TOTP(secret).at(datetime.now(UTC)))
    page.click("#totp-confirm")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.screenshot(path=str(SCREENSHOTS / "totp-recovery-codes.png"), full_page=True)
    recovery = page.locator("#recovery-codes li").first.inner_text()

    page.context.clear_cookies()
    log_in(page, name, NEW_PASSWORD)
    expect(page.locator("#code")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "totp-login.png"))
    page.fill("#code", recovery)
    page.click("#verify")
    page.wait_for_selector("#tile-happy-index")


def test_the_audit_page_shows_who_changed_what(page, central):
    name = f"viewer-{uuid.uuid4().hex[:6]}"
    log_in(page)
    page.wait_for_selector("#tile-happy-index")
    _add_manager(page, name)
    row = page.locator(f"tr[data-name='{name}']")
    row.locator("select[name=role]").select_option("viewer")
    row.locator(".save-person").click()
    expect(page.locator("#people-note")).to_contain_text(f"{name} saved")
    page.locator(f"tr[data-name='{name}'] .disable-person").click()
    expect(page.locator("#people-note")).to_contain_text("disabled")

    page.goto("/audit")
    expect(page.locator("#audit-table tbody tr").first).to_be_visible()
    actions = page.locator("#audit-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)")
    assert actions[:3] == ["user.disable", "user.change", "user.add"]
    assert "login" in actions
    page.screenshot(path=str(SCREENSHOTS / "audit.png"), full_page=False)
    page.select_option("#audit-action", "user.change")
    page.click("#apply")
    expect(page.locator("#audit-table tbody tr[data-action='user.change']").first).to_contain_text(
        '"role": "viewer"')
    with page.expect_download() as download:
        page.click("#audit-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("id,at,actor,actor_kind,origin,action,target,site,before,after")
    assert "user.change" in text and "user.disable" not in text
