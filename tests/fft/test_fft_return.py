"""The FFT monthly return against figures worked out by hand from a month the test builds:
October 2026 at a site in Europe/London, whose clocks go back on 25 October (01:00 UTC), with
"Don't know" answers, misuse, a 4-point rating and answers a second either side of each local
midnight that bounds the month; and a site asking its own faces, whose 5-point faces are not
FFT answers. The clock is pinned to 20 November 2026."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import requests
import time_machine

from sync.central.fft import CSV_COLUMNS
from tests.support.wire_events import WireEvents

PINNED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LONDON = "North"
QUIET = "South"  # a site with no FFT answers at all (it asks its faces): listed with zeros
VISIT = "7d0c1c1e-0000-4000-8000-000000000017"  # the visit the Don't know below answers


def dont_know(kiosk: WireEvents, at: str, misuse: bool = False,
              visit_id: str | None = None) -> dict:
    return kiosk.event("rating.submitted", at, visit_id,
                       {"score": None, "scale": 5, "dont_know": True, "misuse": misuse,
                        "survey": "fft"})


def fft(kiosk: WireEvents, score: int, at: str, **options) -> dict:
    """An answer to the FFT question, as the kiosk's FFT screen sends it."""
    return kiosk.rating(score, at, survey="fft", **options)


@pytest.fixture
def october(central_server):
    with time_machine.travel(PINNED, tick=True):
        central_server.set_site(LONDON, timezone="Europe/London", survey="fft")
        central_server.set_site(QUIET, timezone="UTC")
        device = central_server.add_device(LONDON)
        kiosk = WireEvents()
        events = [
            fft(kiosk, 5, "2026-09-30T22:59:59Z"),  # 23:59:59 BST, 30 Sep: September
            fft(kiosk, 5, "2026-09-30T23:00:00Z"),  # 00:00 BST, 1 Oct: October
            fft(kiosk, 4, "2026-10-25T00:30:00Z"),  # 01:30 BST, before the change
            dont_know(kiosk, "2026-10-25T00:45:00Z"),  # 01:45 BST
            fft(kiosk, 3, "2026-10-25T01:30:00Z"),  # 01:30 GMT, after the change
            # A visit (waited 12 minutes: bucket 10-20) answered "Don't know" at its checkout.
            kiosk.checked_in(VISIT, "2026-10-10T08:40:00Z"),
            kiosk.called(VISIT, "2026-10-10T08:52:00Z"),
            kiosk.checked_out(VISIT, "2026-10-10T08:59:00Z"),
            dont_know(kiosk, "2026-10-10T09:00:00Z", visit_id=VISIT),
            dont_know(kiosk, "2026-10-11T09:00:00Z", misuse=True),  # misuse: not counted
            fft(kiosk, 1, "2026-10-12T09:00:00Z", misuse=True),  # misuse: not counted
            kiosk.rating(1, "2026-10-13T09:00:00Z", scale=4),  # 4-point: not an FFT answer
            fft(kiosk, 2, "2026-10-31T23:59:59Z"),  # 23:59:59 GMT, 31 Oct: October
            fft(kiosk, 1, "2026-11-01T00:00:00Z"),  # 00:00 GMT, 1 Nov: November
        ]
        results = central_server.post_events(device, events).json()["results"]
        assert [r["status"] for r in results] == ["stored"] * len(events)
        # The site asking its own faces: 5-point faces, asked without the FFT's question.
        faces = WireEvents()
        results = central_server.post_events(central_server.add_device(QUIET), [
            faces.rating(5, "2026-10-03T10:00:00Z"), faces.rating(1, "2026-10-04T10:00:00Z"),
        ]).json()["results"]
        assert [r["status"] for r in results] == ["stored"] * 2
        yield central_server, central_server.add_reporting_token()


def fft_csv(server, token: str | None, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(server.url("/api/v1/export/fft.csv"), params=params, headers=headers,
                        timeout=10)


def rows_of(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.text))
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    return list(reader)


def test_october_by_hand(october):
    server, token = october
    rows = rows_of(fft_csv(server, token, month="2026-10", site=LONDON))
    # By hand: Very good 1 (00:00 on 1 Oct; the answer a second earlier is September's),
    # Good 1, Neither 1, Poor 1 (23:59:59 on 31 Oct), Very poor 0 (misuse and the 4-point face
    # are left out; 00:00 on 1 Nov is November's), Don't know 2 (one more was misuse).
    # Total 6; % positive = 2/6, % negative = 1/6.
    assert rows == [{
        "Site": LONDON, "Month": "2026-10", "Collection mode": "tablet/kiosk",
        "Very good": "1", "Good": "1", "Neither good nor poor": "1", "Poor": "1",
        "Very poor": "0", "Don't know": "2", "Total responses": "6",
        "% positive": str(round(100 * 2 / 6, 2)), "% negative": str(round(100 * 1 / 6, 2)),
    }]


def test_months_and_sites_with_no_answers_are_rows_of_zeros(october):
    server, token = october
    rows = rows_of(fft_csv(server, token, month="2026-08..2026-11"))
    got = {(r["Site"], r["Month"]): (r["Very good"], r["Very poor"], r["Total responses"],
                                     r["% positive"]) for r in rows}
    assert list(got) == [(site, month) for site in (LONDON, QUIET)
                         for month in ("2026-08", "2026-09", "2026-10", "2026-11")]
    assert got[(LONDON, "2026-08")] == ("0", "0", "0", "")
    assert got[(LONDON, "2026-09")] == ("1", "0", "1", "100.0")
    assert got[(LONDON, "2026-11")] == ("0", "1", "1", "0.0")
    assert all(got[(QUIET, month)] == ("0", "0", "0", "")
               for month in ("2026-08", "2026-09", "2026-10", "2026-11"))


def test_the_default_month_is_last_month(october):
    server, token = october
    with time_machine.travel(PINNED, tick=True):
        rows = rows_of(fft_csv(server, token, site=LONDON))
    assert [r["Month"] for r in rows] == ["2026-10"]


def test_dont_know_counts_in_no_other_figure(october):
    server, token = october
    metrics = server.metrics(token, site=LONDON, **{"from": "2026-09-30T23:00:00Z",
                                                   "to": "2026-11-01T00:00:00Z"}).json()
    # Ratings in October's instants, misuse left out: 5, 4, 3, 2 (5-point) and 1 (4-point).
    # The two "Don't know" answers are in none of the figures.
    assert metrics["ratings"] == 5
    assert metrics["pct_positive"] == round(100 * 2 / 5, 2)
    # By hand: on 0-4 points (the 4-point face's 1 of 4 is 0), (4 + 3 + 2 + 1 + 0) / 5 = 2,
    # that is 50 on 0-100. The visit's "Don't know" changes nothing.
    assert metrics["happy_index"] == pytest.approx(50.0)
    # The visit answered "Don't know" waited 12 minutes: its bucket has the visit and no rating.
    # It is not a response either: the response rate stays 0 of the one checked-out visit.
    assert (metrics["checked_out"], metrics["response_rate"]) == (1, 0.0)
    assert {bucket["bucket"]: bucket["ratings"] for bucket in metrics["by_wait_bucket"]} \
        == {"0-10": 0, "10-20": 0, "20-30": 0, "30+": 0}
    assert server.rows("SELECT COUNT(*) AS n FROM ratings WHERE score IS NULL") == [{"n": 0}]
    assert server.rows("SELECT visit_id FROM dont_know_answers WHERE visit_id IS NOT NULL") \
        == [{"visit_id": VISIT}]
    assert server.rows("SELECT COUNT(*) AS n FROM dont_know_answers") == [{"n": 3}]


def test_faces_of_a_site_that_never_asked_the_fft_are_not_counted(october):
    """South asks its own faces on 5 points: the same scores, but not answers to the FFT."""
    server, token = october
    rows = rows_of(fft_csv(server, token, month="2026-10", site=QUIET))
    assert rows[0]["Total responses"] == "0" and rows[0]["Very good"] == "0"
    metrics = server.metrics(token, site=QUIET, **{"from": "2026-10-01T00:00:00Z",
                                                  "to": "2026-11-01T00:00:00Z"}).json()
    assert metrics["ratings"] == 2  # they count in the site's own figures all the same


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-10", "October", "2026-10..2026-08",
                                   "2026-10-01", "1999-12", "2020-01..2026-12", "\t", " ",
                                   " 2026-10", "2026-10..2026-11 "])
def test_a_bad_month_is_a_400_that_says_what_to_send(october, month):
    server, token = october
    response = fft_csv(server, token, month=month)
    assert response.status_code == 400
    detail = response.json()["detail"]
    # It names what was sent (the bad month of a range; a tab as Python writes it, \t).
    assert any(part in detail for part in (month, repr(month)[1:-1], *month.split("..")))
    assert any(hint in detail for hint in ("like 2026-11", "earlier month first", "36 months"))


def test_refusals(october):
    server, token = october
    assert fft_csv(server, None, month="2026-10").status_code == 401
    device = server.add_device(LONDON, name="Desk 2")
    assert fft_csv(server, device.token, month="2026-10").status_code == 403
    missing = fft_csv(server, token, month="2026-10", site="Nowhere")
    assert missing.status_code == 404 and "Nowhere" in missing.json()["detail"]
    unknown = fft_csv(server, token, month="2026-10", period="x")
    assert unknown.status_code == 422


def test_the_openapi_description_lists_the_route(october):
    server, _ = october
    spec = requests.get(server.url("/openapi.json"), timeout=10).json()
    operation = spec["paths"]["/api/v1/export/fft.csv"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"month", "site"}
    assert "400" in operation["responses"]


def test_the_default_month_of_several_sites_is_on_utc_and_of_one_site_on_its_clock(october):
    """At 23:30 UTC on 30 November it is already 1 December in Auckland: that site alone
    defaults to November; all sites together default to October, UTC's last month."""
    server, token = october
    server.set_site("East", timezone="Pacific/Auckland")
    with time_machine.travel(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), tick=False):
        alone = rows_of(fft_csv(server, token, site="East"))
        together = rows_of(fft_csv(server, token))
    assert [r["Month"] for r in alone] == ["2026-11"]
    assert {r["Month"] for r in together} == {"2026-10"}
    assert [r["Site"] for r in together] == ["East", LONDON, QUIET]
