"""The dashboard's FFT page in real headless Chromium, over a store built here: October 2026 at
a Europe/London site (the clocks go back inside the month), "Don't know" answers and comments
(one sent unredacted, as a third-party client might), served by a store of this module's own
beside the shared one. Screenshots in test-output/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import time_machine

from sync.central import auth
from sync.central.comments import set_comments_permission
from sync.central.dashboard import accounts
from sync.central.ingest import ingest_batch
from sync.central.sites import update_site
from sync.central.storage import CentralStore
from tests.support.central_server import running_central
from tests.support.hashing import fast_hasher
from tests.support.wire_events import WireEvents

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PINNED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PASSWORD = "calm waters 2026"
SITE = "North"


def _october(kiosk: WireEvents) -> list[dict]:
    def answer(score, at, comment=None):
        data = {"score": score, "scale": 5, "tags": [], "misuse": False, "survey": "fft"}
        if score is None:
            data["dont_know"] = True
        if comment:
            data["comment"] = comment
        return kiosk.event("rating.submitted", at, None, data)

    return [
        answer(5, "2026-09-30T23:00:00Z", "Lovely reception team"),
        answer(5, "2026-10-03T10:00:00Z"),
        answer(4, "2026-10-25T00:30:00Z"),
        answer(3, "2026-10-25T01:30:00Z"),
        answer(2, "2026-10-20T15:00:00Z", "Waited an hour, call me on 07700 900123"),
        answer(None, "2026-10-10T09:00:00Z", "Not sure yet"),
        answer(None, "2026-10-26T09:00:00Z"),
        answer(1, "2026-11-01T00:00:00Z"),  # November's, on the site's clock
    ]


@pytest.fixture(scope="module")
def fft_central(tmp_path_factory):
    data = tmp_path_factory.mktemp("fft-central")
    accounts.set_hasher(fast_hasher())
    store = CentralStore(data)
    with time_machine.travel(PINNED, tick=True):
        with store.write() as db:
            update_site(db, SITE, timezone="Europe/London", survey="fft", comments=True)
            update_site(db, "South", timezone="UTC")
            device, _ = auth.add_device(db, SITE, "Tablet 1")
            faces_device, _ = auth.add_device(db, "South", "Tablet 2")
            accounts.add_user(db, "manager", PASSWORD)
            reader = accounts.add_user(db, "lead", PASSWORD)
            set_comments_permission(db, reader.id, True)
        ingest_batch(store, device, _october(WireEvents()), PINNED)
        # South asks its own faces on 5 points: not FFT answers, its return stays zeros.
        faces = WireEvents()
        ingest_batch(store, faces_device, [faces.rating(5, "2026-10-05T10:00:00Z"),
                                           faces.rating(2, "2026-10-06T10:00:00Z")], PINNED)
    store.close()
    with running_central(data) as server:
        yield server


@pytest.fixture
def fft_page(page, fft_central):
    """The warm browser's fresh tab (tests/dashboard/conftest.py), pointed at this module's
    own store by absolute URLs (its cookies are cleared before each test)."""
    page.base = fft_central.base_url
    return page


def log_in(page, name: str, path: str) -> None:
    page.goto(page.base + "/login?next=" + quote(path, safe=""))
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(lambda url: url.endswith(path))


def cells(page, selector: str) -> dict[str, str]:
    row = page.locator(selector)
    return {key: row.locator(f"td.{key}").inner_text() for key in (
        "very_good", "good", "neither", "poor", "very_poor", "dont_know", "total",
        "pct-positive", "pct-negative")}


def test_the_month_by_hand_and_comments_hidden_without_the_permission(fft_page):
    page = fft_page
    log_in(page, "manager", "/fft?month=2026-10")
    # By hand: Very good 2 (00:00 BST on 1 Oct and 3 Oct), Good 1, Neither 1, Poor 1,
    # Very poor 0 (00:00 GMT on 1 Nov is November's), Don't know 2: total 7,
    # % positive 3/7 = 42.9%, % negative 1/7 = 14.3% (one decimal on the page).
    assert cells(page, f'#fft-return tr[data-site="{SITE}"]') == {
        "very_good": "2", "good": "1", "neither": "1", "poor": "1", "very_poor": "0",
        "dont_know": "2", "total": "7", "pct-positive": f"{100 * 3 / 7:.1f}%",
        "pct-negative": f"{100 * 1 / 7:.1f}%",
    }
    assert page.locator('#fft-return tr[data-site="South"] td.total').inner_text() == "0"
    assert page.locator("#fft-history tbody tr").count() == 24  # 12 months x 2 sites, zeros too
    assert page.locator("#comments-hidden").is_visible()
    assert "Lovely" not in page.content()
    page.screenshot(path=str(SHOTS / "fft-page.png"), full_page=True)


def test_a_reader_of_comments_sees_them_redacted(fft_page):
    page = fft_page
    log_in(page, "lead", "/fft?month=2026-10&site=North")
    listed = page.locator("ul.comments li").all_inner_texts()
    assert len(listed) == 3  # the 1 November comment-less answer is not October's anyway
    text = "\n".join(listed)
    assert "Waited an hour, call me on [removed]" in text and "07700" not in text
    assert "Lovely reception team" in text and "Not sure yet" in text
    assert "Don't know" in text
    page.screenshot(path=str(SHOTS / "fft-page-comments.png"), full_page=True)


def test_the_csv_download_and_a_bad_month(fft_page):
    page = fft_page
    log_in(page, "manager", "/fft?month=2026-10")
    with page.expect_download() as download:
        page.click("#csv-fft")
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("Site,Month,Collection mode,Very good,Good")
    assert lines[1].startswith("North,2026-10,tablet/kiosk,2,1,1,1,0,2,7,")
    response = page.goto(page.base + "/fft?month=2026-13")
    assert response.status == 400
    assert "like 2026-11" in page.inner_text("body")
