"""Hostile clients against a real central store on 127.0.0.1 (issue 12): the token and login
limits cannot be walked around with ``X-Forwarded-For``, a valid kiosk behind a noisy address
still syncs, the failure tables stay bounded and cost the same per request however full, a
full disk is a 507 that ``/healthz`` reports, and the small answers each say what to do."""

from __future__ import annotations

import gzip
import json
import logging
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from collections import OrderedDict

import pytest
import requests

from kiosk.config import cleartext_token_warning, load_settings
from kiosk.launcher import main as kiosk_main
from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.store import Store as KioskStore
from sync.central import cli
from sync.central.dashboard import accounts
from sync.central.embedded import start_embedded
from sync.central.rate_limit import FailureLimiter
from sync.central.retention import max_retention_days
from sync.client import SyncClient, client_for
from tests.reliability import figures
from tests.reliability.helpers import ROOT
from tests.reliability.test_connection_floods import records_logged
from tests.reliability.test_kiosk_faults import _fill, _tiny_disk
from tests.support.central_server import LiveCentral
from tests.support.hashing import fast_hasher
from tests.support.wire_events import WireEvents


def _guess(server: LiveCentral, forwarded_for: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer dev_{secrets.token_urlsafe(32)}"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return requests.post(server.url("/api/v1/events"), json={"events": []}, headers=headers,
                         timeout=10)


def _now() -> str:
    return to_rfc3339(utc_now())


# --- limits ---------------------------------------------------------------------------------


def test_a_new_x_forwarded_for_per_guess_does_not_reset_the_token_limit(central_server):
    limit = central_server.embedded.app.state.auth_failures.limit
    answers = [_guess(central_server, f"203.0.113.{n % 250}").status_code
               for n in range(limit + 30)]
    assert answers == [401] * limit + [429] * 30
    blocked = _guess(central_server, "198.51.100.77")
    assert "Too many refused tokens from this address" in blocked.json()["detail"]
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    figures.record("hostile_limits", title="Limits against spoofed addresses", figures={
        "spoofed_guesses": limit + 30, "guesses_allowed": answers.count(401),
        "limit_per_minute": limit})


def test_a_new_x_forwarded_for_per_guess_does_not_reset_the_login_limit(central_server):
    accounts.set_hasher(fast_hasher())
    with central_server.embedded.store.write() as db:
        accounts.add_user(db, "manager", "calm waters 2026")
    limit = central_server.embedded.app.state.login_limiter.address_limit
    browser = requests.Session()
    answers = []
    for n in range(limit + 5):
        page = browser.get(central_server.url("/login"), timeout=10)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        answer = browser.post(
            central_server.url("/login"),
            data={"username": f"guess-{n}", "password": "Summer2026!", "csrf": csrf, "next": "/"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"}, allow_redirects=False, timeout=10)
        answers.append(answer.status_code)
    assert answers == [401] * limit + [429] * 5
    assert "from this computer" in answer.text and int(answer.headers["Retry-After"]) > 0


def test_a_valid_kiosk_behind_a_noisy_address_still_syncs(central_server, tmp_path):
    device = central_server.add_device()
    limit = central_server.embedded.app.state.auth_failures.limit
    noise = [_guess(central_server).status_code for _ in range(limit + 10)]
    assert noise[-1] == 429  # the neighbour is refused ...
    kiosk = KioskStore(tmp_path / "kiosk.sqlite")
    try:
        for score in (5, 4, 1):
            kiosk.record("rating.submitted",
                         {"score": score, "scale": 5, "tags": [], "misuse": False})
        result = SyncClient(kiosk, central_server.base_url, device.token).sync_once()
        assert (result.ok, result.stored) == (True, 3), result.error  # ... the kiosk is not
        assert kiosk.sync_status().backlog == 0
    finally:
        kiosk.close()
    assert _guess(central_server).status_code == 429  # and the neighbour still is
    assert central_server.rows("SELECT COUNT(*) AS n FROM ratings") == [{"n": 3}]


def test_behind_a_named_proxy_each_client_has_its_own_count(tmp_path):
    with start_embedded(tmp_path / "central", port=0, proxies=("127.0.0.1",)) as central:
        server = LiveCentral(central.url, tmp_path / "central", central)
        failures = central.app.state.auth_failures
        answers = [_guess(server, "198.51.100.1").status_code for _ in range(failures.limit + 1)]
        assert answers[-1] == 429
        assert _guess(server, "198.51.100.2").status_code == 401  # another client behind it
        # A client cannot prepend addresses to escape: the proxy's own entry is the one used.
        assert _guess(server, "192.0.2.99, 198.51.100.1").status_code == 429
        # A flood of forwarded addresses keeps the table at its bound.
        failures.max_keys = 100
        for n in range(300):
            _guess(server, f"10.{n // 250}.{n % 250}.1")
        assert len(failures) == 100


@pytest.mark.parametrize("proxies", [(), ("127.0.0.1",)], ids=["no-flag", "trusted-proxy"])
def test_a_proxy_forwarding_to_a_store_not_told_of_it_is_warned_of_once(tmp_path, proxies):
    """Before --trusted-proxy, uvicorn believed X-Forwarded-For from 127.0.0.1; a store behind
    nginx upgraded without the flag now sees one address for everyone, and says so, once."""
    with (start_embedded(tmp_path / "central", port=0, proxies=proxies) as central,
          records_logged(logging.WARNING) as records):
        server = LiveCentral(central.url, tmp_path / "central", central)
        for n in range(3):
            answer = requests.get(server.url("/healthz"), timeout=10,
                                  headers={"X-Forwarded-For": f"198.51.100.{n}"})
            assert answer.status_code == 200  # served as before: the header only is ignored
        assert requests.get(server.url("/healthz"), timeout=10).status_code == 200
    warnings = [r.getMessage() for r in records if "X-Forwarded-For" in r.getMessage()]
    if proxies:
        assert warnings == []  # told of its proxy: nothing to say
    else:
        assert warnings == [
            "A request from 127.0.0.1 carries X-Forwarded-For, but no --trusted-proxy is set, "
            "so the header is ignored: every client behind that proxy shares its address, and "
            "a few refused passwords or tokens lock them all out together. If a proxy forwards "
            "to this store, start it with --trusted-proxy 127.0.0.1 (this is said once per "
            "run)."]


class _NoScanTable(OrderedDict):
    """The limiter's table, counting every walk over it: a request must never walk it."""

    walks = 0

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()

    def keys(self):
        type(self).walks += 1
        return super().keys()

    def values(self):
        type(self).walks += 1
        return super().values()

    def items(self):
        type(self).walks += 1
        return super().items()


def test_failure_tables_stay_bounded_and_cost_the_same_per_request_however_full():
    limiter = FailureLimiter(limit=20, window_s=60, max_keys=10_000)
    limiter._failures = _NoScanTable()
    _NoScanTable.walks = 0

    def seconds_for(keys: range) -> float:
        started = time.perf_counter()
        for key in keys:
            limiter.retry_after(key)
            limiter.failed(key)
        return time.perf_counter() - started

    first = seconds_for(range(0, 10_000))  # filling the table
    later = seconds_for(range(10_000, 60_000)) / 5  # full: every new key evicts the stalest
    assert len(limiter) == 10_000
    # Constant cost per request, asserted by what is done rather than by a stopwatch: the
    # table never grows past its bound and nothing walks it (the old way scanned it on every
    # request, ~1000x slower when full).
    assert _NoScanTable.walks == 0
    assert list(limiter._failures)[0] == 50_000  # the stalest went first, one per new key
    login = accounts.LoginRateLimiter()
    for n in range(30_000):
        login.failed(f"name-{n}", f"10.0.{n // 250 % 250}.{n % 250}")
    assert login.tracked() <= 2 * 10_000
    figures.record("hostile_tables", title="Failure tables under a flood of addresses", figures={
        "addresses": 60_000, "table_bound": 10_000, "us_per_request_filling":
        round(first / 10_000 * 1e6, 1), "us_per_request_full": round(later / 10_000 * 1e6, 1)})


# --- a full disk ----------------------------------------------------------------------------


@pytest.mark.parametrize("way", ["tmpfs", "max_page_count"])
def test_a_full_disk_is_507_with_retry_after_and_healthz_reports_it(tmp_path, way):
    with _tiny_disk(tmp_path / "disk", size="8m") as mounted:
        disk = mounted if way == "tmpfs" else None  # tmpfs needs root; else the other way
        data_dir = (disk or tmp_path) / "central"
        with start_embedded(data_dir, port=0) as central:
            server = LiveCentral(central.url, data_dir, central)
            device = server.add_device()
            wire = WireEvents()
            assert server.post_events(device, [wire.heartbeat(_now())]).status_code == 200
            if disk is not None:
                filler = _fill(disk, leave_bytes=256 * 1024)
                how = "tmpfs"
            else:  # not root: SQLite's same error, from a file that may not grow
                pages = server.rows("PRAGMA page_count")[0]["page_count"]
                central.store.group_writer.submit(
                    lambda db: db.execute(f"PRAGMA max_page_count = {pages + 4}")).result()
                how = "max_page_count"
            for _ in range(200):  # bounded: 8 MiB of heartbeats at most
                batch = [wire.heartbeat(_now()) for _ in range(500)]
                answer = server.post_events(device, batch)
                if answer.status_code != 200:
                    break
            assert answer.status_code == 507, answer.text
            assert answer.headers["content-type"] == "application/json"
            assert "disk is full" in answer.json()["detail"]
            assert "nothing of this request was stored" in answer.json()["detail"]
            assert int(answer.headers["Retry-After"]) > 0
            health = requests.get(server.url("/healthz"), timeout=10)
            assert health.status_code == 503
            assert health.json()["status"] == "degraded" and health.json()["disk"] == "full"
            assert "disk is full" in health.json()["detail"]
            refused_ids = [event["id"] for event in batch]
            # Reads still work: the manager sees the dashboard, the store is not broken.
            assert server.rows("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
            if disk is not None:
                filler.unlink()
            else:
                central.store.group_writer.submit(
                    lambda db: db.execute("PRAGMA max_page_count = 1073741823")).result()
            again = server.post_events(device, batch)  # the kiosk's resend
            assert again.status_code == 200
            assert {r["status"] for r in again.json()["results"]} == {"stored"}
            stored = server.rows(
                f"SELECT COUNT(*) AS n FROM events WHERE id IN ({','.join('?' * 500)})",
                refused_ids)
            assert stored == [{"n": 500}]
            assert requests.get(server.url("/healthz"), timeout=10).json()["status"] == "ok"
    if way == "tmpfs":
        figures.record("central_full_disk", title="A full disk under the central store",
                       figures={"how": how, "answer": 507, "healthz": 503,
                                "resent_events_stored": 500})


def test_a_database_that_cannot_be_read_is_a_503_of_the_documented_shape(central_server,
                                                                           monkeypatch):
    """Both 503 bodies of /healthz are in the OpenAPI document; this one keeps its ``detail``
    and gains ``status`` and ``database``. (A failure no real file here can be made to give
    on demand, WAL keeps serving a damaged file's cached pages: the read itself is replaced.)"""
    from sync.central.routes import health

    def unreadable(_db):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(health, "schema_version", unreadable)
    answer = requests.get(central_server.url("/healthz"), timeout=10)
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "degraded", "database": "unreadable",
        "detail": "The database cannot be read: database disk image is malformed."}
    spec = requests.get(central_server.url("/openapi.json"), timeout=10).json()
    shapes = spec["paths"]["/healthz"]["get"]["responses"]["503"]["content"][
        "application/json"]["schema"]["anyOf"]
    assert [shape["$ref"].rsplit("/", 1)[1] for shape in shapes] == [
        "HealthDegraded", "HealthUnreadable"]
    assert set(spec["components"]["schemas"]["HealthUnreadable"]["required"]) == set(
        answer.json())


# --- small answers --------------------------------------------------------------------------


def test_a_gzip_body_gets_415_with_a_sentence(central_server):
    device = central_server.add_device()
    body = gzip.compress(json.dumps({"events": [WireEvents().heartbeat(_now())]}).encode())
    answer = requests.post(
        central_server.url("/api/v1/events"), data=body, timeout=10,
        headers={**device.headers, "Content-Type": "application/json",
                 "Content-Encoding": "gzip"})
    assert answer.status_code == 415
    assert answer.json()["detail"] == (
        "The batch is sent with Content-Encoding: gzip, which this store does not read; send "
        "it as plain JSON, without Content-Encoding.")
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


def test_an_unknown_site_keeps_its_name_as_written_in_the_404(central_server):
    token = central_server.add_reporting_token()
    answer = central_server.metrics(token, site="North")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "There is no site named 'North'."


def test_a_kiosk_warns_when_its_token_would_travel_in_clear(tmp_path, caplog, capsys):
    remote = "http://192.0.2.10:8700"
    assert cleartext_token_warning("http://127.0.0.1:8700") is None
    assert cleartext_token_warning("http://localhost:8700") is None
    assert cleartext_token_warning("https://central.example") is None
    kiosk = KioskStore(tmp_path / "kiosk.sqlite")
    try:
        for url, warned in ((remote, True), ("http://127.0.0.1:8700", False)):
            caplog.clear()
            settings = load_settings(environ={}, data_dir=str(tmp_path), central_url=url,
                                     central_token="dev_token")
            with caplog.at_level("WARNING", logger="sync.client"):
                client_for(kiosk, settings)
            assert ("travel in clear" in caplog.text) is warned, url
    finally:
        kiosk.close()
    # The launcher says it too, before anything else: here, a data_dir that is a file stops
    # it right after (no window is opened).
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x")
    config = tmp_path / "kiosk.toml"
    config.write_text(f'central_url = "{remote}"\ncentral_token = "dev_token"\n'
                      f'data_dir = "{not_a_folder}"\n')
    assert kiosk_main(["--config", str(config)]) == 2
    printed = capsys.readouterr().err
    assert f"kiosk: warning: central_url {remote} is plain http://" in printed
    assert "token and its events travel in clear" in printed and "https://" in printed


def test_purge_with_days_before_the_year_1_is_a_sentence_and_exit_2(tmp_path, capsys):
    data = tmp_path
    cli.main(["device", "add", "--data", str(data), "--site", "North", "--name", "desk-1"])
    result = subprocess.run(
        [sys.executable, "main.py", "purge", "--data", str(data), "--days", "99999999"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.fullmatch(
        r"error: a retention of 99,999,999 days reaches back before the year 1; use at most "
        r"[\d,]+ days \(nothing was deleted\)\.\n", result.stderr), result.stderr
    capsys.readouterr()
    # The bound itself is a date and works.
    longest = max_retention_days(utc_now())
    assert cli.main(["purge", "--data", str(data), "--days", str(longest - 1)]) == 0
    assert json.loads(capsys.readouterr().out)["retention_days"] == longest - 1


@pytest.mark.parametrize("value", ["10.0.0.300", "proxy.example", "*"])
def test_a_trusted_proxy_that_is_not_an_address_is_a_sentence(tmp_path, capsys, value):
    assert cli.main(["central", "--data", str(tmp_path), "--trusted-proxy", value]) == 2
    assert f"--trusted-proxy {value!r} is not an IP address or network" in capsys.readouterr().err


def test_trusted_proxies_may_be_repeated_or_comma_separated():
    from sync.central.serving import trusted_proxies

    assert trusted_proxies(["127.0.0.1, 10.1.0.0/16", "::1"]) == [
        "127.0.0.1", "10.1.0.0/16", "::1"]
