"""Enrolment by code, end to end: a kiosk in a real (offscreen) window with no token, the
address typed on its keyboard, a real central store on 127.0.0.1, the approval made in
headless Chromium on the dashboard's "Add a kiosk" page, the token received and kept, and the
first event stored centrally. Also: what the screen says for a bad address, a store that is
down, and a denied code."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk import enrolment_file
from kiosk.enrolment import EnrolmentModel
from kiosk.shared.timeutil import utc_now
from sync.central.dashboard import accounts
from sync.runner import KioskSync
from tests.dashboard.conftest import CHROMIUM_ARGS
from tests.support.central_server import running_central
from tests.support.clock import FakeClock
from tests.support.hashing import fast_hasher
from tests.support.waiting import wait_until
from tests.ui.conftest import window_size

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots" / "enrolment"
MACHINE = {"machine_id": "a" * 64}
MANAGER, PASSWORD = "manager", "calm waters 2026"


@pytest.fixture
def ui_clock() -> FakeClock:
    # Near the real clock: the central store judges the events' instants by its own.
    return FakeClock(utc_now().replace(microsecond=0) - timedelta(minutes=5))


@pytest.fixture
def central(tmp_path):
    accounts.set_hasher(fast_hasher())
    with running_central(tmp_path / "central") as server:
        with server.embedded.store.write() as db:
            accounts.add_user(db, MANAGER, PASSWORD)
        yield server


def in_browser(central, steps):
    """Run ``steps(page)`` in headless Chromium, on a thread of its own: Playwright's sync API
    needs a thread without an asyncio loop, and the dashboard tests keep one open in the main
    thread for the whole session. Returns what ``steps`` returns; re-raises its failure."""
    import threading

    from playwright.sync_api import sync_playwright

    outcome: dict = {}

    def run() -> None:
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                    headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(base_url=central.base_url,
                                        viewport={"width": 1280, "height": 860})
                page.set_default_timeout(15_000)
                try:
                    outcome["value"] = steps(page)
                finally:
                    browser.close()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    if "error" in outcome:
        raise outcome["error"]
    assert not worker.is_alive(), "the browser steps did not finish within 120 s"
    return outcome.get("value")


def start_enrolling(make_kiosk, **settings):
    """A kiosk with no token: the enrolment screen, polling on the real clock (the store
    measures the interval between polls on its own)."""
    model = EnrolmentModel(device_name="desk-2", clock=utc_now,
                           address=settings.pop("central_url", None))
    kiosk = make_kiosk(sync_runner=KioskSync(), enrolment=model, machine=MACHINE,
                       staff_lock_s=900, **settings)
    return kiosk, model


def tick_until(kiosk, condition, what: str, timeout: float = 20):
    def ticked():
        kiosk.app.tick()
        kiosk.idle()
        return condition()
    stage = kiosk.flow.enrolment.model.stage
    return wait_until(ticked, timeout=timeout, what=f"{what} (enrolment at {stage!r})")


def type_address(kiosk, text: str) -> None:
    for key in text:
        kiosk.tap(kiosk.button_exact(key))


def test_a_kiosk_enrols_by_code_approved_in_the_browser_and_its_first_event_arrives(
        make_kiosk, central, tmp_path):
    kiosk, model = start_enrolling(make_kiosk)
    assert kiosk.screen == "enrol"
    type_address(kiosk, central.base_url.removeprefix("http://"))
    # Typed without a scheme: https:// is assumed, which this plain-HTTP test store is not.
    kiosk.tap("Next")
    tick_until(kiosk, lambda: model.stage == "unreachable", "the https attempt to fail")
    kiosk.tap("Change address")
    for _ in range(len(model.typed)):
        kiosk.tap(kiosk.button_exact("\u232b"))
    type_address(kiosk, central.base_url)
    kiosk.tap("Next")
    tick_until(kiosk, lambda: model.stage == "code", "the code")
    code = model.user_code
    panel = kiosk.app.root.manager.current_screen.panels["code"]
    assert panel.ids.code.text.replace(" ", "") == code
    assert panel.ids.qr.texture is not None
    kiosk.screenshot(SHOTS / "kiosk-code.png")

    def approve(page):
        page.goto(model.qr_link)  # what the QR code holds: login first, then the page
        page.fill("#username", MANAGER)
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.wait_for_selector("#code")
        assert page.input_value("#code") == code
        assert page.input_value("#desk-name") == "desk-2"  # the kiosk's own suggestion
        page.fill("#site-name", "North")
        page.select_option("#role", "desk")
        page.screenshot(path=str(SHOTS / "dashboard-add-kiosk.png"), full_page=True)
        page.click("#approve")
        assert "approved" in page.inner_text("#done")
        page.screenshot(path=str(SHOTS / "dashboard-approved.png"), full_page=True)

    in_browser(central, approve)

    # The token arrives at the next poll; the kiosk then opens behind its staff PIN.
    tick_until(kiosk, lambda: kiosk.screen == "pin", "the token")
    assert "enrolled as desk-2 at North" in kiosk.banner()
    kiosk.type_pin("2468")
    assert kiosk.screen == "staff"
    kept = enrolment_file.load(kiosk.flow.settings.data_dir)
    assert kept.token.startswith("dev_") and kept.machine == MACHINE
    mode = stat.S_IMODE(os.stat(enrolment_file.path_in(kiosk.flow.settings.data_dir)).st_mode)
    assert mode == 0o600
    assert (kiosk.flow.settings.site, kiosk.flow.settings.device_name) == ("North", "desk-2")
    assert kept.token not in repr(kept)

    kiosk.tap("Check in")
    [device] = central.rows("SELECT id FROM devices")
    stored = wait_until(lambda: central.rows(
        "SELECT type FROM events WHERE device_id = ? AND type = 'visit.checked_in'",
        [device["id"]]), timeout=20, what="the first event stored centrally")
    assert len(stored) == 1


def test_a_bad_address_is_a_sentence_on_the_screen(make_kiosk):
    kiosk, model = start_enrolling(make_kiosk)
    kiosk.tap("Next")
    assert "Type the central store's address first" in kiosk.app.root.manager \
        .current_screen.explanation
    type_address(kiosk, "kiosk:99999")
    kiosk.tap("Next")
    assert model.stage == "address"
    assert "is not a web address" in kiosk.app.root.manager.current_screen.explanation
    kiosk.screenshot(SHOTS / "kiosk-bad-address.png")


def test_a_store_that_is_down_says_so_and_a_new_code_is_one_tap(make_kiosk, tmp_path):
    with running_central(tmp_path / "central") as server:
        url = server.base_url
    kiosk, model = start_enrolling(make_kiosk, central_url=url)
    tick_until(kiosk, lambda: model.stage == "unreachable", "the refusal")
    screen = kiosk.app.root.manager.current_screen
    assert "Cannot reach the central store" in screen.explanation
    kiosk.screenshot(SHOTS / "kiosk-store-down.png")
    port = int(url.rsplit(":", 1)[1])
    with running_central(tmp_path / "central", port=port):
        kiosk.tap("New code")
        tick_until(kiosk, lambda: model.stage == "code", "a code once the store is back")


def test_a_denied_code_says_so_on_the_kiosk(make_kiosk, central, capsys):
    from tests.central.test_cli import run_in_process

    kiosk, model = start_enrolling(make_kiosk, central_url=central.base_url)
    tick_until(kiosk, lambda: model.stage == "code", "the code")
    assert run_in_process(capsys, "device", "deny", "--data", str(central.data_dir),
                          "--code", model.user_code)[0] == 0
    tick_until(kiosk, lambda: model.stage == "denied", "the denial", timeout=20)
    assert kiosk.app.root.manager.current_screen.title == "The code was denied"
    kiosk.screenshot(SHOTS / "kiosk-denied.png")
    kiosk.tap("New code")
    tick_until(kiosk, lambda: model.stage == "code", "a new code")


def test_the_qr_code_is_segnos_matrix_with_its_quiet_zone(window):
    import segno

    from kiosk.screens.qr import QUIET_ZONE, TEXELS, qr_modules, qr_texture

    link = "http://127.0.0.1:8700/devices/add?code=BCDF-GHJK"
    rows = qr_modules(link)
    matrix = segno.make(link, error="m", micro=False).matrix
    assert len(rows) == len(matrix) + 2 * QUIET_ZONE
    assert [row[QUIET_ZONE:-QUIET_ZONE] for row in rows[QUIET_ZONE:-QUIET_ZONE]] == [
        [bool(m) for m in row] for row in matrix]
    assert not any(rows[0]) and not any(row[0] for row in rows)
    assert qr_texture(link).size == (len(rows) * TEXELS, len(rows) * TEXELS)


def test_a_real_kiosk_process_enrols_by_code_approved_in_the_browser_and_syncs(
        central, tmp_path):
    """`main.py kiosk` as an operator starts it (offscreen), with only the store's address;
    a manager approves its code on the dashboard's Add-a-kiosk page in headless Chromium; the
    kiosk receives its token and its first event is stored centrally."""
    import re
    import subprocess
    import sys
    import threading

    from tests.central.test_cli import ROOT

    data = tmp_path / "kiosk"
    env = {**os.environ, "KIOSK_CENTRAL_URL": central.base_url, "SDL_VIDEODRIVER": "offscreen",
           "KIVY_NO_ARGS": "1", "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1",
           "KIVY_HOME": str(tmp_path / "kivy-home"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "main.py", "kiosk", "--windowed", "--data",
                                str(data)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read_log() -> None:
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read_log, daemon=True).start()
    try:
        said = wait_until(lambda: re.search(r"enrolment code (\w{4}-\w{4})", "".join(lines)),
                          timeout=30, what="the code in the kiosk's log")

        def approve(page):
            page.goto(f"{central.base_url}/devices/add?code={said.group(1)}")
            page.fill("#username", MANAGER)
            page.fill("#password", PASSWORD)
            page.click("#login")
            page.wait_for_selector("#code")
            page.fill("#site-name", "North")
            page.fill("#desk-name", "desk-7")
            page.click("#approve")
            return page.inner_text("#done")

        assert "approved" in in_browser(central, approve)
        wait_until(lambda: central.rows("SELECT last_seen_at FROM devices")[0]["last_seen_at"],
                   timeout=30, what="the enrolled kiosk's first contact")
        [device] = central.rows("SELECT id, name FROM devices")
        assert device["name"] == "desk-7"
        wait_until(lambda: central.rows("SELECT 1 FROM events WHERE device_id = ?",
                                        [device["id"]]),
                   timeout=30, what="the kiosk's first event stored centrally")
    finally:
        process.terminate()
        process.wait(timeout=20)
    token = enrolment_file.load(data).token
    assert token not in "".join(lines)
    assert stat.S_IMODE(os.stat(enrolment_file.path_in(data)).st_mode) == 0o600


def test_the_add_a_kiosk_page_refuses_what_it_cannot_use(central):
    import requests

    def steps(page):
        page.goto("/devices")
        page.fill("#username", MANAGER)
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.click("#add-kiosk")
        page.fill("#code", "bcdf ghjk")
        page.fill("#site-name", "North")
        page.fill("#desk-name", "desk-9")
        page.click("#approve")
        assert "No kiosk is showing the code BCDF-GHJK" in page.inner_text("#error")
        assert page.input_value("#site-name") == "North"  # nothing typed is lost
        page.screenshot(path=str(SHOTS / "dashboard-wrong-code.png"), full_page=True)

        codes = requests.post(central.url("/api/v1/enrol"), timeout=10).json()
        page.fill("#code", codes["user_code"])
        page.fill("#site-name", "")
        page.click("#approve")
        assert "Choose the kiosk's site" in page.inner_text("#error")
        page.click("#deny")
        assert "was denied" in page.inner_text("#done")
        answer = requests.post(central.url("/api/v1/enrol/token"), timeout=10,
                               json={"device_code": codes["device_code"]}).json()
        assert answer["error"] == "access_denied"
        assert central.rows("SELECT count(*) AS n FROM devices") == [{"n": 0}]

        central.embedded.app.state.wrong_code_limiter.limit = 2  # one wrong code above
        for _ in range(2):
            page.fill("#code", "BCDF-GHJK")
            page.fill("#site-name", "North")
            page.fill("#desk-name", "desk-9")
            page.click("#approve")
        assert "Too many wrong codes" in page.content()

    in_browser(central, steps)


def test_a_copied_disk_says_why_it_asks_to_be_enrolled_again(make_kiosk, central, tmp_path):
    from kiosk.config import load_settings
    from kiosk.enrolment import Enrolled
    from kiosk.enrolment_start import keep, plan_start

    settings = load_settings(environ={}, data_dir=str(tmp_path / "image"))
    keep(settings, Enrolled(central.base_url, "dev_the-original-kiosks", "d-1", "North",
                            "desk-1", "desk"), {"machine_id": "b" * 64})
    plan = plan_start(settings, can_enrol=True, machine=MACHINE, clock=utc_now)
    kiosk = make_kiosk(sync_runner=KioskSync(), enrolment=plan.enrolment, machine=MACHINE)
    tick_until(kiosk, lambda: plan.enrolment.stage == "code", "a new code")
    assert "comes from another kiosk" in kiosk.app.root.manager.current_screen.reason
    kiosk.screenshot(SHOTS / "kiosk-copied-disk.png")


def test_use_without_a_central_store_records_locally(make_kiosk):
    kiosk, model = start_enrolling(make_kiosk)
    kiosk.screenshot(SHOTS / "kiosk-address.png")
    kiosk.tap("Use without a\ncentral store")
    kiosk.app.tick()
    kiosk.idle()
    assert model.stage == "local" and kiosk.screen != "enrol"
    assert kiosk.flow.settings.central_url is None
    assert kiosk.flow.banner().text.startswith("This kiosk records locally")


def test_the_widest_code_fits_its_box_on_one_line(make_kiosk):
    from kiosk.screens.widgets import KioskButton  # noqa: F401  (the screen's widgets loaded)

    kiosk, model = start_enrolling(make_kiosk)
    screen = kiosk.app.root.manager.current_screen
    screen.panels["code"].screen = screen
    screen.ids.panel_area.clear_widgets()
    screen.ids.panel_area.add_widget(screen.panels["code"])
    screen.panel = "code"
    screen.code = "WWWW-WWWW"
    kiosk.idle(3)
    label = screen.panels["code"].ids.code
    label.texture_update()
    assert label.texture_size[1] < label.font_size * 2  # one line
    assert label.texture_size[0] <= label.width and label.texture_size[1] <= label.height
    width, height = window_size()
    kiosk.screenshot(SHOTS / f"kiosk-widest-code-{width}x{height}.png")


def test_the_widest_code_fits_at_800x480_too():
    """A process has one window size: a child pytest runs the check above at 800x480."""
    import subprocess
    import sys

    from tests.central.test_cli import ROOT

    env = dict(os.environ, KIOSK_TEST_SIZE="800x480")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"{__file__}::test_the_widest_code_fits_its_box_on_one_line"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-3000:]
