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

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Commands main.py does not route yet, straight through sync.central.cli."""
    return subprocess.run(
        [sys.executable, "-m", "sync.central.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_device_add_prints_the_device_id_and_a_token_once(tmp_path):
    result = run("device", "add", "--data", str(tmp_path), "--site", "Main St", "--name", "Desk 1")

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) == {"device_id", "token"}
    assert printed["token"].startswith("dev_")
    listed = json.loads(run("device", "list", "--data", str(tmp_path)).stdout)
    assert [(d["id"], d["site"], d["name"]) for d in listed] == [
        (printed["device_id"], "Main St", "Desk 1")
    ]
    assert printed["token"] not in json.dumps(listed)


def test_device_revoke_and_an_unknown_device(tmp_path):
    added = json.loads(
        run("device", "add", "--data", str(tmp_path), "--site", "S", "--name", "N").stdout
    )

    revoked = run("device", "revoke", "--data", str(tmp_path), "--device", added["device_id"])
    unknown = run("device", "revoke", "--data", str(tmp_path), "--device", "nope")

    assert revoked.returncode == 0
    assert json.loads(run("device", "list", "--data", str(tmp_path)).stdout)[0]["revoked"] == 1
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: there is no device with id 'nope'; see `device list`."


def test_token_add_prints_a_reporting_token(tmp_path):
    result = run("token", "add", "--data", str(tmp_path), "--name", "BI tool")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["token"].startswith("rep_")


def test_bad_input_is_one_sentence_and_exit_code_2(tmp_path):
    blank_name = run("device", "add", "--data", str(tmp_path), "--site", "S", "--name", " ")
    bad_zone = run_cli(
        "site", "set", "--data", str(tmp_path), "--site", "S", "--timezone", "Mars/Base"
    )

    assert blank_name.returncode == 2 and "device name must be" in blank_name.stderr
    assert bad_zone.returncode == 2
    assert bad_zone.stderr.strip() == (
        "error: time zone 'Mars/Base' is not an IANA zone name like 'Europe/London'."
    )


def test_site_set_changes_what_kiosks_are_told(tmp_path):
    result = run_cli(
        "site", "set", "--data", str(tmp_path), "--site", "Main St", "--timezone",
        "Europe/London", "--target-wait-min", "20", "--followup-tags", "waiting_time,billing",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
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
