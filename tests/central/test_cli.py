"""The central store's commands, run the way an operator runs them: `python main.py ...`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sync.central import cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """The same command without a new interpreter: exit code, stdout, stderr."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_device_add_prints_the_device_id_and_a_token_once(tmp_path, capsys):
    result = run("device", "add", "--data", str(tmp_path), "--site", "Main St", "--name", "Desk 1")

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) == {"device_id", "token"}
    assert printed["token"].startswith("dev_")
    listed = json.loads(run_in_process(capsys, "device", "list", "--data", str(tmp_path))[1])
    assert [(d["id"], d["site"], d["name"]) for d in listed] == [
        (printed["device_id"], "Main St", "Desk 1")
    ]
    assert printed["token"] not in json.dumps(listed)


def test_device_revoke_and_an_unknown_device(tmp_path, capsys):
    data = str(tmp_path)
    added = json.loads(
        run_in_process(capsys, "device", "add", "--data", data, "--site", "S", "--name", "N")[1]
    )

    revoked = run_in_process(
        capsys, "device", "revoke", "--data", data, "--device", added["device_id"]
    )
    listed = json.loads(run_in_process(capsys, "device", "list", "--data", data)[1])
    unknown = run_in_process(capsys, "device", "revoke", "--data", data, "--device", "nope")

    assert revoked[0] == 0 and listed[0]["revoked"] == 1
    assert unknown[0] == 2
    assert unknown[2].strip() == "error: there is no device with id 'nope'; see `device list`."


def test_token_add_prints_a_reporting_token(tmp_path):
    result = run("token", "add", "--data", str(tmp_path), "--name", "BI tool")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["token"].startswith("rep_")


def test_bad_input_is_one_sentence_and_exit_code_2(tmp_path, capsys):
    data = str(tmp_path)
    blank_name = run_in_process(
        capsys, "device", "add", "--data", data, "--site", "S", "--name", " "
    )
    bad_zone = run_in_process(
        capsys, "site", "set", "--data", data, "--site", "S", "--timezone", "Mars/Base"
    )

    assert blank_name[0] == 2 and "device name must be" in blank_name[2]
    assert bad_zone[0] == 2
    assert bad_zone[2].strip() == (
        "error: time zone 'Mars/Base' is not an IANA zone name like 'Europe/London'."
    )


def test_site_set_changes_what_kiosks_are_told(tmp_path, capsys):
    code, out, err = run_in_process(
        capsys, "site", "set", "--data", str(tmp_path), "--site", "Main St", "--timezone",
        "Europe/London", "--target-wait-min", "20", "--followup-tags", "waiting_time,billing",
    )  # fmt: skip

    assert code == 0, err
    config = json.loads(out)
    assert (config["timezone"], config["target_wait_min"]) == ("Europe/London", 20.0)
    assert config["followup_tags"] == ["waiting_time", "billing"]


def test_central_serves_until_stopped(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "main.py", "central", "--data", str(tmp_path), "--port", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # The first line names the bound port, before uvicorn starts; then poll until it answers.
        first_line = process.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first_line).group(0)
        health = None
        for _ in range(500):
            try:
                health = requests.get(url + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None:
                    pytest.fail(f"central exited: {process.stderr.read()}")
        assert health is not None and health.json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_central_on_a_taken_port_says_so(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run("central", "--data", str(tmp_path), "--port", str(port))

    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in result.stderr


def test_a_mistyped_data_directory_is_refused_not_made_into_a_new_store(tmp_path, capsys):
    missing = str(tmp_path / "kiosk-centrl")
    commands = [
        (["device", "add"], ["--site", "S", "--name", "N"]),
        (["token", "add"], ["--name", "N"]),
        (["site", "set"], ["--site", "S"]),
        (["device", "list"], []),
        (["site", "list"], []),
        (["purge"], []),
    ]
    for words, options in commands:
        code, out, err = run_in_process(capsys, *words, "--data", missing, *options)
        assert code == 2 and out == "" and "there is no directory" in err, words
    assert not Path(missing).exists()
    # An existing directory without a store: listing and purging say so, adding creates it.
    empty = str(tmp_path)
    code, _, err = run_in_process(capsys, "device", "list", "--data", empty)
    assert code == 2 and "no central store" in err and "central.sqlite3" in err
    assert run_in_process(capsys, "token", "add", "--data", empty, "--name", "bi")[0] == 0


@pytest.mark.parametrize("port", ["-1", "65536", "99999", "http"])
def test_a_bad_port_is_a_sentence_not_a_traceback(tmp_path, port):
    result = run("central", "--data", str(tmp_path), "--port", port)
    assert result.returncode == 2
    assert "--port" in result.stderr and "Traceback" not in result.stderr
    assert "port" in result.stderr.splitlines()[-1]


def test_counts_below_one_are_refused_before_anything_is_written(tmp_path, capsys):
    target = tmp_path / "fresh"
    with pytest.raises(SystemExit) as stopped:
        cli.main(["demo-data", "--data", str(target), "--days", "0"])
    assert stopped.value.code == 2 and not target.exists()
    assert "1 or more" in capsys.readouterr().err


def test_follow_up_tags_are_refused_for_what_is_wrong_with_them(tmp_path, capsys):
    data = str(tmp_path)
    bad_name = run_in_process(capsys, "site", "set", "--data", data, "--site", "S",
                              "--followup-tags", "billing,Bad Tag!")
    too_many = run_in_process(capsys, "site", "set", "--data", data, "--site", "S",
                              "--followup-tags", "a,b,c,d,e,f,g")
    assert bad_name[0] == 2 and "'Bad Tag!' is not a tag name" in bad_name[2]
    assert too_many[0] == 2 and "7 follow-up tags are too many" in too_many[2]


@pytest.mark.parametrize(
    ("option", "value", "sentence"),
    [("--timezone", "Europe", "not an IANA zone"), ("--timezone", "x" * 300, "not an IANA zone"),
     ("--target-wait-min", "12.5", "whole number of minutes"),
     ("--target-wait-min", "0", "whole number of minutes"),
     ("--followup-tags", "", "at least one follow-up tag")],
)
def test_site_settings_a_kiosk_could_not_use_are_refused(tmp_path, capsys, option, value,
                                                         sentence):
    code, _, err = run_in_process(capsys, "site", "set", "--data", str(tmp_path), "--site", "S",
                                  option, value)
    assert code == 2 and sentence in err and "Traceback" not in err
