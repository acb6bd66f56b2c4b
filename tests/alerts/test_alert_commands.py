"""The ``alert`` commands as an operator runs them (in process, through ``cli.main``)."""

from __future__ import annotations

import json

from sync.central import cli
from sync.central.alerts.scheduler import evaluate
from sync.central.storage import CentralStore
from tests.alerts.conftest import SITE, Clinic, minutes


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_rule_set_changes_one_rule_and_refuses_bad_values_with_a_sentence(tmp_path, capsys):
    data = str(tmp_path)
    assert run(capsys, "device", "add", "--data", data, "--site", SITE, "--name", "Desk 1")[0] == 0

    code, out, _ = run(capsys, "alert", "rule", "set", "--data", data, "--site", SITE,
                       "--rule", "negative_burst", "--threshold", "60", "--min-ratings", "5",
                       "--window-min", "20")
    assert code == 0
    assert json.loads(out) == {"site": SITE, "rule": "negative_burst", "enabled": True,
                               "threshold": 60.0, "min_ratings": 5, "window_min": 20.0,
                               "cooldown_min": 30.0, "clear_min": 10.0}
    code, out, _ = run(capsys, "alert", "rule", "list", "--data", data, "--site", SITE)
    listed = {rule["rule"]: rule for rule in json.loads(out)}
    assert listed["negative_burst"]["threshold"] == 60.0 and listed["long_wait"]["multiple"] == 2

    code, _, err = run(capsys, "alert", "rule", "set", "--data", data, "--site", SITE,
                       "--rule", "long_wait", "--multiple", "50")
    assert code == 2
    assert err == "error: multiple of long_wait must be a number from 1 to 20.\n"
    code, _, err = run(capsys, "alert", "rule", "set", "--data", data, "--site", "Elsewhere",
                       "--rule", "long_wait", "--off")
    assert (code, err) == (2, "error: there is no site named 'Elsewhere'.\n")


def test_alert_list_ack_and_close(tmp_path, capsys):
    store = CentralStore(tmp_path)
    clinic = Clinic(store)
    clinic.rate([1, 1, 1, 1], minutes(0))
    (alert_id,) = evaluate(store, minutes(1), rules=("negative_burst",))
    store.close()
    data = str(tmp_path)
    window = ("--from", "2026-03-02T00:00:00Z", "--to", "2026-03-03T00:00:00Z")

    code, out, _ = run(capsys, "alert", "list", "--data", data, *window)
    assert code == 0 and [a["id"] for a in json.loads(out)] == [alert_id]
    assert run(capsys, "alert", "ack", "--data", data, "--id", str(alert_id), "--by", "lead",
               "--comment", "on it")[0] == 0
    code, out, _ = run(capsys, "alert", "list", "--data", data, "--state", "acknowledged",
                       *window)
    (listed,) = json.loads(out)
    assert (listed["acknowledged_by"], listed["comment"]) == ("lead", "on it")
    assert run(capsys, "alert", "close", "--data", data, "--id", str(alert_id), "--by",
               "lead")[0] == 0
    code, _, err = run(capsys, "alert", "ack", "--data", data, "--id", str(alert_id), "--by", "x")
    assert (code, err) == (2, f"error: alert {alert_id} is already closed.\n")


def test_channels_add_list_remove_with_secrets_hidden(tmp_path, capsys):
    data = str(tmp_path)
    run(capsys, "device", "add", "--data", data, "--site", SITE, "--name", "Desk 1")

    code, out, _ = run(capsys, "alert", "channel", "add", "--data", data, "--kind", "webhook",
                       "--url", "http://127.0.0.1:9/hook", "--secret", "s3cret", "--site", SITE,
                       "--format", "slack")
    assert code == 0
    hook = json.loads(out)
    assert (hook["kind"], hook["site"], hook["format"], hook["secret"]) == (
        "webhook", SITE, "slack", "(set)")
    code, out, _ = run(capsys, "alert", "channel", "add", "--data", data, "--kind", "email",
                       "--smtp-host", "127.0.0.1", "--smtp-port", "2525", "--starttls",
                       "--to", "desk@example.org", "--from", "kiosk@example.org")
    mail = json.loads(out)
    assert (mail["security"], mail["mail_to"], mail["smtp_port"]) == (
        "starttls", ["desk@example.org"], 2525)
    code, out, _ = run(capsys, "alert", "channel", "add", "--data", data, "--kind", "webhook",
                       "--url", "https://example.org/hook", "--secret", "s", "--quiet-hours",
                       "22:00-07:00", "--quiet-timezone", "Europe/London")
    assert code == 0
    quiet = json.loads(out)
    assert (quiet["quiet_hours"], quiet["quiet_timezone"]) == ("22:00-07:00", "Europe/London")
    code, _, err = run(capsys, "alert", "channel", "add", "--data", data, "--kind", "webhook",
                       "--url", "https://example.org/hook", "--secret", "s", "--quiet-hours",
                       "night")
    assert (code, err) == (2, "error: quiet hours 'night' must be a daily span like "
                              "22:00-07:00 (HH:MM-HH:MM, the two times different).\n")
    code, out, _ = run(capsys, "alert", "channel", "list", "--data", data)
    assert [c["id"] for c in json.loads(out)] == [hook["id"], mail["id"], quiet["id"]]
    assert "s3cret" not in out
    # A webhook URL's path can be its credential: only scheme, host and port are shown.
    assert [c.get("url") for c in json.loads(out)] == [
        "http://127.0.0.1:9/…", None, "https://example.org/…"]
    assert "/hook" not in out

    assert run(capsys, "alert", "channel", "remove", "--data", data, "--id",
               str(hook["id"]))[0] == 0
    code, _, err = run(capsys, "alert", "channel", "remove", "--data", data, "--id", "99")
    assert (code, err) == (2, "error: there is no alert channel with id 99.\n")
    code, _, err = run(capsys, "alert", "channel", "add", "--data", data, "--kind", "webhook",
                       "--url", "ftp://example.org", "--secret", "s")
    assert (code, err) == (2, "error: webhook URL 'ftp://example.org' must be an http:// or "
                              "https:// address.\n")
    code, _, err = run(capsys, "alert", "channel", "add", "--data", data, "--kind", "webhook",
                       "--url", "http://127.0.0.1:9/")
    assert (code, err) == (2, "error: a webhook needs a --secret (or --secret-stdin) to sign "
                              "its requests with.\n")


def test_a_webhook_secret_can_come_from_stdin(tmp_path, capsys, monkeypatch):
    import io

    from sync.central.alerts import channels

    data = str(tmp_path)
    run(capsys, "device", "add", "--data", data, "--site", SITE, "--name", "Desk 1")
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    code, out, _ = run(capsys, "alert", "channel", "add", "--data", data, "--kind", "webhook",
                       "--url", "https://example.org/hook", "--secret-stdin")
    assert code == 0 and "from-stdin" not in out
    store = CentralStore(tmp_path)
    try:
        assert channels.get_channel(store.db, json.loads(out)["id"])["secret"] == "from-stdin"
    finally:
        store.close()


def test_site_set_takes_opening_hours(tmp_path, capsys):
    data = str(tmp_path)
    code, out, _ = run(capsys, "site", "set", "--data", data, "--site", SITE,
                       "--opening-hours", "mon-fri 08:00-18:00, sat 09:00-12:00")
    assert code == 0
    assert json.loads(out)["opening_hours"].endswith("fri 08:00-18:00, sat 09:00-12:00")
    code, _, err = run(capsys, "site", "set", "--data", data, "--site", SITE,
                       "--opening-hours", "mon 9-5")
    assert code == 2 and "must look like 'mon-fri 08:00-18:00" in err
