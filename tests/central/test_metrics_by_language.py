"""``GET /api/v1/metrics?lang=``: the rating figures of one language's ratings, counted by
hand from the ratings the test sends; the visit figures stay every visit's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from kiosk.shared.timeutil import to_rfc3339
from tests.support.central_server import running_central


def rating(device_seq: int, at: datetime, score: int, lang: str | None) -> dict:
    data = {"score": score, "scale": 5, "tags": [], "misuse": False}
    if lang:
        data["lang"] = lang
    return {"id": str(uuid.uuid4()), "device_seq": device_seq, "type": "rating.submitted",
            "occurred_at": to_rfc3339(at), "data": data}


@pytest.fixture
def central_with_ratings(tmp_path):
    with running_central(tmp_path) as central:
        device = central.add_device("North", "desk-1")
        reporting = central.add_reporting_token("bi")
        # Spread over more than one whole hour, so the rollups' hours are in the range too.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
        given = [(5, "es"), (4, "es"), (1, "es"), (5, "en"), (2, "en"), (3, None)]
        events = [rating(i + 1, start + timedelta(minutes=25 * i), score, lang)
                  for i, (score, lang) in enumerate(given)]
        answer = central.post_events(device, events).json()
        assert [r["status"] for r in answer["results"]] == ["stored"] * len(events)
        yield central, reporting


def test_the_rating_figures_of_one_language(central_with_ratings):
    central, token = central_with_ratings
    every = central.metrics(token).json()
    spanish = central.metrics(token, lang="es").json()
    english = central.metrics(token, lang="en").json()
    assert every["ratings"] == 6 and every["lang"] is None
    # Spanish: 5, 4, 1 -> 2 positive (4-5) of 3, 1 negative (1-2) of 3.
    assert (spanish["ratings"], spanish["lang"]) == (3, "es")
    assert spanish["pct_positive"] == pytest.approx(200 / 3, abs=0.01)
    assert spanish["pct_negative"] == pytest.approx(100 / 3, abs=0.01)
    # English: 5, 2 -> one of each.
    assert (english["ratings"], english["pct_positive"], english["pct_negative"]) == (2, 50, 50)
    assert central.metrics(token, lang="tr").json()["ratings"] == 0


@pytest.mark.parametrize("bad", ["español", "e", "EN-", "en_GB", "x" * 40])
def test_a_lang_that_is_not_a_tag_is_a_422(central_with_ratings, bad):
    central, token = central_with_ratings
    assert central.metrics(token, lang=bad).status_code == 422


def test_todays_satisfaction_by_language_on_the_dashboard(central_with_ratings):
    """Today's page offers the site's languages once it has more than one, and with one
    chosen its satisfaction tiles count that language's ratings only (hand-counted above)."""
    import re

    from sync.central.dashboard import one_time_login_url

    central, _token = central_with_ratings
    central.set_site("North", languages=["en", "es"])
    session = requests.Session()
    assert session.get(one_time_login_url(central.data_dir, central.base_url, central.database_url),
                       timeout=10).status_code == 200

    def responses(page: str) -> int:
        found = re.search(r'id="tile-happy-index".*?class="tile-detail">[^<]*?n = (\d+)', page,
                          re.S)
        assert found
        return int(found.group(1))

    # Today is the site's (UTC) calendar day: the API over the same range says what to expect.
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = {"site": "North", "from": to_rfc3339(midnight),
             "to": to_rfc3339(midnight + timedelta(days=1))}
    expected_all = central.metrics(_token, **today).json()["ratings"]
    expected_es = central.metrics(_token, lang="es", **today).json()["ratings"]

    every = session.get(central.url("/?site=North"), timeout=10).text
    assert 'name="lang"' in every and ">Español<" in every
    spanish = session.get(central.url("/?site=North&lang=es"), timeout=10)
    assert spanish.status_code == 200 and 'id="lang-note"' in spanish.text
    assert (responses(every), responses(spanish.text)) == (expected_all, expected_es)
    assert session.get(central.url("/?site=North&lang=espa%C3%B1ol"), timeout=10).status_code \
        == 422
