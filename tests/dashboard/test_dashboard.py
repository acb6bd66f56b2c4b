"""The dashboard in real headless Chromium against a real central store with demo data."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from kiosk.shared import metrics
from kiosk.shared.timeutil import utc_now
from sync.central.dashboard import one_time_login_url
from sync.central.dashboard.export import neutralise
from tests.dashboard import expected
from tests.dashboard.conftest import (
    FORMULA_DESK,
    MARKUP_DESK,
    MARKUP_SITE,
    SCREENSHOTS,
    log_in,
)

pytestmark = pytest.mark.browser
ZONE = "Europe/London"


def tile(page, name: str) -> str:
    return page.locator(f"#tile-{name} .tile-value").inner_text().strip()


def local_today():
    return metrics.local_today(utc_now(), ZONE)


def test_a_page_without_login_redirects_to_login(page):
    page.goto("/trends")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Ftrends$"))
    assert page.locator("#username").is_visible()


def test_wrong_password_is_refused(page):
    log_in(page, password="not the password")
    expect(page.locator("#login-error")).to_contain_text("name or password is not right")
    expect(page).to_have_url(re.compile(r"/login"))
    assert not [c for c in page.context.cookies() if c["name"] == "dashboard_session"]


def test_login_sets_a_protected_session_cookie_and_logout_ends_it(logged_in):
    cookie = next(c for c in logged_in.context.cookies() if c["name"] == "dashboard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    logged_in.click("button:has-text('Log out')")
    expect(logged_in).to_have_url(re.compile(r"/login$"))
    logged_in.goto("/")
    expect(logged_in).to_have_url(re.compile(r"/login\?next="))


def test_today_shows_the_metric_functions_figures(logged_in, data_dir):
    want = expected.today_report(data_dir, utc_now())
    assert want["ratings"] > 0 and want["waits"] > 0
    page = logged_in
    assert tile(page, "happy-index") == expected.shown(want["happy_index"])
    assert tile(page, "positive") == expected.shown(want["pct_positive"], " %")
    assert tile(page, "negative") == expected.shown(want["pct_negative"], " %")
    assert tile(page, "response-rate") == expected.shown(want["response_rate"], " %")
    assert tile(page, "visits") == expected.shown(want["visits"])
    assert tile(page, "median-wait") == expected.shown(want["wait_median_min"], " min")
    assert tile(page, "p90-wait") == expected.shown(want["wait_p90_min"], " min")
    assert tile(page, "within-target") == expected.shown(want["pct_within_target"], " %")
    assert f"n = {want['ratings']}" in page.locator("#tile-happy-index").inner_text()
    longest = float(tile(page, "longest-wait").split()[0])
    assert abs(longest - want["longest_current_wait_min"]) < 1.0
    # The live queue: the demo keeps patients waiting now at every desk.
    expect(page.locator("#queue .desk").first).to_be_visible()
    assert page.locator("#queue td", has_text="Q-").count() >= 3


def test_live_queue_refreshes_by_itself(page, central):
    page.clock.install()
    log_in(page)
    page.wait_for_selector("#queue .desk")
    device = central.add_device(site="Northgate Dental", name="desk-9")
    visit = "6f1c2a0e-0000-4000-8000-000000000001"
    event = {
        "id": "6f1c2a0e-0000-4000-8000-000000000002",
        "device_seq": 1,
        "type": "visit.checked_in",
        "occurred_at": utc_now().isoformat().replace("+00:00", "Z"),
        "visit_id": visit,
        "data": {"ticket": "Z-999"},
    }
    assert central.post_events(device, [event]).json()["results"][0]["status"] == "stored"
    assert page.locator("#queue td", has_text="Z-999").count() == 0
    page.clock.run_for(11_000)  # one refresh tick, without waiting ten real seconds
    expect(page.locator("#queue td", has_text="Z-999")).to_be_visible()


def test_trends_change_range_and_match_the_metric_functions(logged_in, data_dir):
    page = logged_in
    last = local_today() - timedelta(days=1)
    first = last - timedelta(days=6)
    page.goto("/trends")
    page.wait_for_selector("#chart-waits-by-day svg.main-svg")
    assert page.locator("#trend-table tbody tr").count() == 28
    page.fill("#from", first.isoformat())
    page.fill("#to", last.isoformat())
    page.click("#apply")
    expect(page).to_have_url(re.compile(f"from={first}&to={last}"))
    expect(page.locator("#trend-table tbody tr")).to_have_count(7)
    page.wait_for_selector("#chart-by-hour svg.main-svg")
    expect(page.locator("#chart-waits-by-day g.scatterlayer g.trace")).to_have_count(2)
    for day in (first, last):
        want = expected.report(data_dir, day, day, utc_now())
        cells = page.locator(f"#trend-table tr[data-day='{day}'] td").all_text_contents()
        assert cells[1] == expected.shown(want["visits"])
        assert cells[2] == expected.shown(want["wait_median_min"], " min")
        assert cells[3] == expected.shown(want["wait_p90_min"], " min")
        assert cells[5] == expected.shown(want["ratings"])
        assert cells[6] == expected.shown(want["happy_index"])
        assert cells[8] == expected.shown(want["pct_negative"], " %")


def test_rating_by_wait_matches_the_metric_functions(logged_in, data_dir):
    page = logged_in
    page.goto("/rating-by-wait")
    page.wait_for_selector("#chart-rating-by-wait svg.main-svg")
    expect(page.locator("#chart-rating-by-wait g.trace.bars")).to_have_count(2)
    last = local_today()
    want = expected.report(data_dir, last - timedelta(days=27), last, utc_now())
    for bucket in want["by_wait_bucket"]:
        cells = page.locator(f"tr[data-bucket='{bucket['bucket']}'] td").all_inner_texts()
        assert cells[1] == expected.shown(bucket["ratings"])
        assert cells[2] == expected.shown(bucket["pct_positive"], " %")
        assert cells[3] == expected.shown(bucket["happy_index"])
    # The signature chart tells the story: long waits are rated worse.
    short, long = want["by_wait_bucket"][0], want["by_wait_bucket"][3]
    assert short["pct_positive"] > long["pct_positive"]


def test_follow_up_reasons_count_tags_of_negative_ratings(logged_in, data_dir):
    page = logged_in
    page.goto("/reasons")
    page.wait_for_selector("#chart-reasons svg.main-svg")
    last = local_today()
    _, ratings = expected.rows_in(data_dir, last - timedelta(days=27), last)
    negative = [r for r in ratings if not r["misuse"] and r["score"] <= 2]
    counts: dict[str, int] = {}
    for rating in negative:
        for tag in set(eval_tags(rating["tags"])):
            counts[tag] = counts.get(tag, 0) + 1
    assert "waiting_time" in counts
    for tag, n in counts.items():
        cells = page.locator(f"#reasons-table tr[data-tag='{tag}'] td").all_inner_texts()
        assert cells[1] == expected.shown(n)
        assert cells[2] == expected.shown(round(100 * n / len(negative), 2), " %")


def eval_tags(text: str) -> list[str]:
    return json.loads(text)


def _device_id(data_dir, site: str, desk: str) -> str:
    db = data_dir.connect()
    try:
        return db.execute(
            "SELECT id FROM devices WHERE name = ? AND site = ?", [desk, site]
        ).fetchone()[0]
    finally:
        db.close()


def _responses_at(data_dir, first, last, site: str, desk: str) -> int:
    """The responses (ratings, misuse left out) a desk has in the range, from the store's rows."""
    device = _device_id(data_dir, site, desk)
    _, ratings = expected.rows_in(data_dir, first, last, site)
    return sum(1 for r in ratings if r["device_id"] == device and not r["misuse"])


def test_compare_by_language_shows_each_languages_figures_from_its_ratings(logged_in,
                                                                           data_dir):
    """The kiosks record each rating's language; Compare sets them side by side, computed
    from the rows with the one set of metric definitions, a language under 30 hidden."""
    page = logged_in
    page.goto("/compare")
    last = local_today()
    _, ratings = expected.rows_in(data_dir, last - timedelta(days=27), last)
    by_lang: dict = {}
    for r in ratings:
        if not r["misuse"]:
            counts = by_lang.setdefault(r["lang"], {})
            counts[(r["scale"], r["score"])] = counts.get((r["scale"], r["score"]), 0) + 1
    assert set(by_lang) == {None, "es", "ar"}  # the demo's kiosks predate the language row
    for lang, name in ((None, "not recorded"), ("es", "Spanish (Español)"),
                       ("ar", "Arabic (العربية)")):
        summary = metrics.rating_summary(by_lang[lang])
        row = page.locator(f"#compare-languages tr[data-lang='{lang or ''}']")
        expect(row).to_contain_text(name)
        expect(row).to_contain_text(f"{summary['ratings']:,}")
        if summary["ratings"] < 30:
            expect(row).to_contain_text("fewer than 30 responses")
        else:
            expect(row).to_contain_text(f"{summary['happy_index']:.1f}")
    assert by_lang["ar"] and sum(by_lang["ar"].values()) == 2
    page.locator("#compare-languages").screenshot(
        path=str(SCREENSHOTS / "compare-languages.png"))


def test_compare_hides_small_groups_and_escapes_stored_names(logged_in, data_dir):
    page = logged_in
    page.goto("/compare")
    page.wait_for_selector("#chart-compare-happy svg.main-svg")
    last = local_today()
    first = last - timedelta(days=27)
    # The formula desk has two rated visits by construction: always under the threshold.
    assert _responses_at(data_dir, first, last, MARKUP_SITE, FORMULA_DESK) == 2
    small = page.locator(f"#compare-desks tr[data-name='{MARKUP_SITE} · {FORMULA_DESK}']")
    expect(small).to_contain_text("fewer than 30 responses")
    expect(small).to_have_class(re.compile("small-n"))
    # Riverside's desk-3 is new: small or not depends on the days it has had, so ask its rows.
    desk3_responses = _responses_at(data_dir, first, last, "Riverside Medical", "desk-3")
    desk3 = page.locator("#compare-desks tr[data-name='Riverside Medical · desk-3']")
    if desk3_responses < 30:
        expect(desk3).to_contain_text("fewer than 30 responses")
        expect(desk3).to_have_class(re.compile("small-n"))
    else:
        expect(desk3).not_to_contain_text("fewer than 30 responses")
        expect(desk3).not_to_have_class(re.compile("small-n"))
    # The markup site and desk are shown as the text they are, never as bold markup.
    markup_row = page.locator("#compare-sites tbody th", has_text=MARKUP_SITE)
    expect(markup_row).to_have_count(1)
    assert page.locator("#compare-sites b, #compare-desks b, select b").count() == 0
    labels = page.locator("#chart-compare-happy g.ytick text").all_text_contents()
    assert f"{MARKUP_SITE} · {MARKUP_DESK}" in labels
    assert f"{MARKUP_SITE} · {FORMULA_DESK}" not in labels  # under the threshold: not charted
    assert ("Riverside Medical · desk-3" in labels) == (desk3_responses >= 30)
    assert (
        page.locator(
            "#chart-compare-happy svg b, #chart-compare-happy tspan[style*='bold']"
        ).count()
        == 0
    )
    # A full-size desk matches the metric functions over its own rows.
    visits, ratings = expected.rows_in(data_dir, first, last, "Northgate Dental")
    desk2 = _device_id(data_dir, "Northgate Dental", "desk-2")
    want = metrics.report(
        [expected.as_visit(v) for v in visits if v["device_id"] == desk2],
        [expected.as_rating(r) for r in ratings if r["device_id"] == desk2],
    )
    cells = page.locator(
        "#compare-desks tr[data-name='Northgate Dental · desk-2'] td"
    ).all_inner_texts()
    assert cells[2] == expected.shown(want["wait_median_min"], " min")
    assert cells[5] == expected.shown(want["ratings"])
    assert cells[6] == expected.shown(want["happy_index"])


def test_devices_mark_the_silent_kiosk(logged_in):
    page = logged_in
    page.goto("/devices")
    silent = page.locator("#devices-table tr[data-name='tablet-1']")
    expect(silent).to_contain_text("silent")
    expect(silent).to_contain_text("0.0.9")
    online = page.locator("#devices-table tr[data-name='desk-1']").first
    expect(online).to_contain_text("online")
    expect(page.locator("#devices-table tr", has_text="95.")).to_have_count(1)  # clock skew
    assert page.locator("#devices-table tbody th", has_text=MARKUP_DESK).count() == 1
    # No replica (SQLite): the figures are the store's own, and no line says otherwise.
    assert page.locator("#replica-lag").count() == 0


def test_csv_download_has_the_ranges_rows(logged_in, data_dir):
    page = logged_in
    last = local_today()
    first = last - timedelta(days=6)
    page.goto(f"/export?from={first}&to={last}")
    with page.expect_download() as info:
        page.click("#csv-visits")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    visits, ratings = expected.rows_in(data_dir, first, last)
    assert len(rows) == len(visits) > 100
    assert {r["visit_id"] for r in rows} == {v["id"] for v in visits}
    assert all(re.fullmatch(r"[A-Z]-\d{3}", r["ticket"]) for r in rows)
    assert {r["desk"] for r in rows if r["site"] == MARKUP_SITE} >= {"'" + FORMULA_DESK}
    with page.expect_download() as info:
        page.click("#csv-ratings")
    rating_rows = list(
        csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8")))
    )
    assert len(rating_rows) == len(ratings)
    assert {r["rating_id"] for r in rating_rows} == {r["id"] for r in ratings}
    # Each rating's language (empty from kiosks that record none), to filter by in a sheet.
    assert {r["rating_id"]: r["lang"] for r in rating_rows} == {
        r["id"]: r["lang"] or "" for r in ratings}
    assert any(r["lang"] for r in rating_rows)


def test_export_api_needs_a_reporting_token(central):
    url = central.url("/api/v1/export/visits.csv")
    assert requests.get(url, timeout=10).status_code == 401
    token = central.add_reporting_token()
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200
    assert answer.text.splitlines()[0].startswith("visit_id,site,desk,ticket")
    assert answer.text.splitlines()[0].endswith(",wait_min,cancel_reason,appointment_at")
    assert len(answer.text.splitlines()) > 10


def test_export_api_gives_a_ranges_rows_as_the_dashboard_does(central, data_dir):
    headers = {"Authorization": f"Bearer {central.add_reporting_token()}"}
    last = local_today()
    first = last - timedelta(days=6)
    start, _ = metrics.local_day_bounds(first, "Europe/London")
    _, end = metrics.local_day_bounds(last, "Europe/London")
    query = {"from": start.isoformat().replace("+00:00", "Z"),
             "to": end.isoformat().replace("+00:00", "Z")}
    visits, ratings = expected.rows_in(data_dir, first, last)
    for name, rows, key in (("visits", visits, "visit_id"), ("ratings", ratings, "rating_id")):
        answer = requests.get(central.url(f"/api/v1/export/{name}.csv"), params=query,
                              headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        got = list(csv.DictReader(io.StringIO(answer.text)))
        assert {row[key] for row in got} == {row["id"] for row in rows}, name


def test_csv_cells_that_could_run_as_formulas_are_neutralised():
    assert [neutralise(v) for v in ("=1+1", "+1", "-1", "@x", "desk-1", 3.5, -2.0)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "desk-1",
        3.5,
        -2.0,
    ]


def test_login_is_rate_limited(page):
    for _ in range(5):
        log_in(page, name="someone", password="wrong password")
        expect(page.locator("#login-error")).to_contain_text("not right")
    log_in(page, name="someone", password="wrong password")
    expect(page.locator("#login-error")).to_contain_text("Too many failed logins")
    answer = page.request.post("/login", form={"username": "someone", "password": "x", "csrf": "y"})
    assert answer.status in (403, 429)


def test_a_form_without_its_csrf_token_is_refused(page, logged_in):
    login = page.request.post(
        "/login", form={"username": "manager", "password": "calm waters 2026"}
    )
    assert login.status == 403
    assert "reload the page" in login.text()
    logout = page.request.post("/logout", form={})
    assert logout.status == 403
    page.goto("/")
    expect(page.locator("#tile-happy-index")).to_be_visible()  # still logged in


def test_session_cookie_is_secure_behind_https(central):
    session = requests.Session()
    page = session.get(central.url("/login"), timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        central.url("/login"),
        data={"username": "manager", "password": "calm waters 2026", "csrf": csrf},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303
    assert "secure" in answer.headers["set-cookie"].lower()


def test_one_time_login_link_works_once(page, central, data_dir):
    link = one_time_login_url(data_dir.path, central.base_url, data_dir.database_url)
    page.goto(link)
    expect(page.locator("#tile-happy-index")).to_be_visible()
    page.context.clear_cookies()
    page.goto(link)
    expect(page.locator("#login-error")).to_contain_text("used or has expired")


def test_no_request_leaves_the_store(page):
    outside = []
    page.on("request", lambda r: outside.append(r.url) if "127.0.0.1" not in r.url else None)
    log_in(page)
    for path in ("/", "/trends", "/compare"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    assert outside == []


PANELS = (
    ("today", "/", "#queue"),
    ("trends", "/trends", "#chart-by-hour svg.main-svg"),
    ("rating-by-wait", "/rating-by-wait", "#chart-rating-by-wait svg.main-svg"),
    ("reasons", "/reasons", "#chart-reasons svg.main-svg"),
    ("compare", "/compare", "#chart-compare-wait svg.main-svg"),
    ("devices", "/devices", "#devices-table"),
    ("export", "/export", "#csv-visits"),
)


@pytest.mark.parametrize("width,height,label", [(1440, 900, "desktop"), (820, 1180, "tablet")])
def test_screenshots_of_every_panel(logged_in, width, height, label):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = logged_in
    page.set_viewport_size({"width": width, "height": height})
    for name, path, ready in PANELS:
        page.goto(path)
        page.wait_for_selector(ready)
        page.wait_for_timeout(150)  # let Plotly's resize settle after the first draw
        # Nothing wider than the window: no sideways scrolling at tablet width.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than {width}px"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
