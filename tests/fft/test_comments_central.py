"""Comments on the central store: redacted again on ingest, kept out of the stored event, read
only with the permission, purged after their own retention; and the commands that set it up."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
import time_machine

from sync.central import cli
from sync.central.comments import can_read_comments
from sync.central.storage import CentralStore
from tests.support.wire_events import WireEvents

PINNED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_comment_is_redacted_again_and_kept_only_in_its_own_table(central_server):
    with time_machine.travel(PINNED, tick=True):
        device = central_server.add_device("North")
        central_server.set_site("North", comments=True)
        kiosk = WireEvents()
        # As a client that skipped redaction would send it.
        event = kiosk.event("rating.submitted", "2026-11-19T10:00:00Z", None, {
            "score": 2, "scale": 5, "comment": "Email me at a.b@example.org or 07700 900123"})
        results = central_server.post_events(device, [event]).json()["results"]
    assert results[0]["status"] == "stored"
    stored = central_server.rows("SELECT data FROM events")
    assert "comment" not in json.loads(stored[0]["data"])
    assert central_server.rows("SELECT comment FROM rating_comments") == [
        {"comment": "Email me at [removed] or [removed]"}]
    assert central_server.rows("SELECT score FROM ratings") == [{"score": 2}]


def test_a_comment_from_a_site_that_never_turned_the_box_on_is_dropped(central_server):
    """A kiosk can pin comments = on in its own configuration; the site's setting decides."""
    with time_machine.travel(PINNED, tick=True):
        device = central_server.add_device("South")  # comments off: the default
        kiosk = WireEvents()
        events = [kiosk.event("rating.submitted", "2026-11-19T10:00:00Z", None,
                              {"score": 2, "scale": 5, "comment": "The wait was long"}),
                  kiosk.event("rating.submitted", "2026-11-19T10:05:00Z", None,
                              {"score": None, "scale": 5, "dont_know": True,
                               "survey": "fft", "comment": "Too warm inside"})]
        results = central_server.post_events(device, events).json()["results"]
    assert [r["status"] for r in results] == ["stored", "stored"]
    assert central_server.rows("SELECT COUNT(*) AS n FROM rating_comments") == [{"n": 0}]
    assert all("comment" not in json.loads(row["data"])
               for row in central_server.rows("SELECT data FROM events"))
    # The answers themselves are kept and count.
    assert central_server.rows("SELECT score FROM ratings") == [{"score": 2}]
    assert central_server.rows("SELECT COUNT(*) AS n FROM dont_know_answers") == [{"n": 1}]


def test_site_set_survey_and_comments_reach_the_config(tmp_path, capsys, central_server):
    data = str(central_server.data_dir)
    code, out, err = run(capsys, "site", "set", "--data", data, "--site", "North",
                         "--survey", "fft", "--comments", "on")
    assert code == 0, err
    assert json.loads(out)["survey"] == "fft" and json.loads(out)["comments"] is True
    device = central_server.add_device("North")
    config = requests.get(central_server.url("/api/v1/config"), headers=device.headers,
                          timeout=10).json()
    assert (config["survey"], config["comments"]) == ("fft", True)
    other = central_server.add_device("South")
    config = requests.get(central_server.url("/api/v1/config"), headers=other.headers,
                          timeout=10).json()
    assert (config["survey"], config["comments"]) == ("faces", False)  # the defaults


def test_site_set_refuses_an_unknown_survey(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["site", "set", "--data", str(tmp_path), "--site", "North", "--survey", "stars"])
    assert stop.value.code == 2
    assert "invalid choice: 'stars'" in capsys.readouterr().err


def test_user_add_grants_and_takes_back_the_comments_permission(tmp_path, capsys, monkeypatch):
    import io

    data = str(tmp_path)
    CentralStore(tmp_path).close()
    monkeypatch.setattr("sys.stdin", io.StringIO("calm waters 2026\n"))
    code, out, err = run(capsys, "user", "add", "--data", data, "--name", "lead",
                         "--password-stdin", "--can-read-comments")
    assert code == 0, err
    printed = json.loads(out)
    assert printed["can_read_comments"] is True
    store = CentralStore(tmp_path)
    assert can_read_comments(store.db, printed["user_id"])
    store.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("calm waters 2027\n"))
    code, out, _ = run(capsys, "user", "add", "--data", data, "--name", "lead", "--password-stdin")
    assert json.loads(out)["can_read_comments"] is True  # a new password keeps it
    monkeypatch.setattr("sys.stdin", io.StringIO("calm waters 2027\n"))
    code, out, _ = run(capsys, "user", "add", "--data", data, "--name", "lead",
                       "--password-stdin", "--no-can-read-comments")
    assert json.loads(out)["can_read_comments"] is False
    monkeypatch.setattr("sys.stdin", io.StringIO("calm waters 2027\n"))
    run(capsys, "user", "add", "--data", data, "--name", "manager", "--password-stdin")
    store = CentralStore(tmp_path)
    assert store.db.execute("SELECT name, can_read_comments FROM users ORDER BY name").fetchall() \
        == [("lead", 0), ("manager", 0)]
    store.close()


def test_purge_takes_comments_after_their_own_retention(central_server, capsys):
    device = central_server.add_device("North")
    central_server.set_site("North", comments=True)
    kiosk = WireEvents()
    with time_machine.travel(PINNED, tick=True):
        events = [
            kiosk.event("rating.submitted", at, None, {"score": 4, "scale": 5, "comment": text})
            for at, text in (("2026-08-01T10:00:00Z", "Old"), ("2026-11-15T10:00:00Z", "New"))
        ]
        central_server.post_events(device, events)
        code, out, err = run(capsys, "purge", "--data", str(central_server.data_dir),
                             "--comment-retention-days", "30")
    assert code == 0, err
    assert json.loads(out)["deleted"]["comments"] == 1
    assert central_server.rows("SELECT comment FROM rating_comments") == [{"comment": "New"}]
    assert central_server.rows("SELECT COUNT(*) AS n FROM ratings") == [{"n": 2}]  # stay


def test_purge_refuses_a_comment_retention_before_the_year_1(central_server, capsys):
    device = central_server.add_device("North")
    central_server.set_site("North", comments=True)
    kiosk = WireEvents()
    with time_machine.travel(PINNED, tick=True):
        central_server.post_events(device, [kiosk.event(
            "rating.submitted", "2020-01-02T10:00:00Z", None,
            {"score": 4, "scale": 5, "comment": "Old"})])
        code, out, err = run(capsys, "purge", "--data", str(central_server.data_dir),
                             "--days", "30", "--comment-retention-days", "800000")
    assert code == 2 and out == ""
    assert "Traceback" not in err
    assert err.startswith("error: a comment retention of 800,000 days reaches back before the "
                          "year 1; use at most ")
    assert err.endswith(" days (nothing was deleted).\n")
    # Nothing was deleted, not even what --days alone would have taken.
    assert central_server.rows("SELECT COUNT(*) AS n FROM rating_comments") == [{"n": 1}]
    assert central_server.rows("SELECT COUNT(*) AS n FROM ratings") == [{"n": 1}]


def test_purge_reports_dont_know_answers_apart_from_ratings(central_server, capsys):
    device = central_server.add_device("North")
    kiosk = WireEvents()
    with time_machine.travel(PINNED, tick=True):
        central_server.post_events(device, [
            kiosk.event("rating.submitted", "2026-01-05T10:00:00Z", None,
                        {"score": 4, "scale": 5, "survey": "fft"}),
            kiosk.event("rating.submitted", "2026-01-05T10:10:00Z", None,
                        {"score": None, "scale": 5, "dont_know": True, "survey": "fft"}),
            kiosk.event("rating.submitted", "2026-01-05T10:20:00Z", None,
                        {"score": None, "scale": 5, "dont_know": True, "survey": "fft"}),
        ])
        code, out, err = run(capsys, "purge", "--data", str(central_server.data_dir),
                             "--days", "30")
    assert code == 0, err
    deleted = json.loads(out)["deleted"]
    assert (deleted["ratings"], deleted["dont_know"]) == (1, 2)


def test_purge_refuses_a_retention_below_one_day(central_server, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["purge", "--data", str(central_server.data_dir),
                  "--comment-retention-days", "0"])
    assert stop.value.code == 2
    assert "too small" in capsys.readouterr().err
