"""Tokens: missing, unknown and revoked get 401; the wrong kind of token gets 403."""

from __future__ import annotations

import pytest
import requests

from sync.central.auth import token_digest
from tests.support.wire_events import WireEvents, at


def post(central_server, headers: dict) -> requests.Response:
    body = {"events": [WireEvents().heartbeat(at(0))]}
    return requests.post(
        central_server.url("/api/v1/events"), json=body, headers=headers, timeout=10
    )


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_missing_token_gets_401_with_a_sentence(central_server):
    response = post(central_server, {})

    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["dev_not-a-real-token", "rep_nope", "garbage"])
def test_an_unknown_token_gets_401(central_server, token):
    response = post(central_server, bearer(token))

    assert response.status_code == 401
    assert "not known" in response.json()["detail"]


def test_a_token_in_the_wrong_scheme_gets_401(central_server):
    device = central_server.add_device()

    response = post(central_server, {"Authorization": f"Basic {device.token}"})

    assert response.status_code == 401


def test_a_revoked_device_token_gets_401_and_nothing_is_stored(central_server):
    device = central_server.add_device()
    central_server.revoke_device(device.device_id)

    response = post(central_server, device.headers)
    config = requests.get(central_server.url("/api/v1/config"), headers=device.headers, timeout=10)

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert config.status_code == 401
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


def test_a_reporting_token_cannot_send_events(central_server):
    token = central_server.add_reporting_token()

    response = post(central_server, bearer(token))

    assert response.status_code == 403
    assert "device token" in response.json()["detail"]


def test_a_device_token_cannot_read_metrics(central_server):
    device = central_server.add_device()

    response = central_server.metrics(device.token)

    assert response.status_code == 403
    assert "reporting token" in response.json()["detail"]


def test_metrics_without_a_token_get_401(central_server):
    response = requests.get(central_server.url("/api/v1/metrics"), timeout=10)

    assert response.status_code == 401


def test_tokens_are_prefixed_and_stored_only_as_their_sha256(central_server):
    device = central_server.add_device()
    reporting = central_server.add_reporting_token()

    assert device.token.startswith("dev_") and reporting.startswith("rep_")
    stored = central_server.rows("SELECT token_sha256 FROM devices")[0]["token_sha256"]
    assert stored == token_digest(device.token)
    files = central_server.data_dir.glob("central.sqlite3*")  # the WAL file too
    dump = b"".join(path.read_bytes() for path in files)
    assert device.token.encode() not in dump and reporting.encode() not in dump
