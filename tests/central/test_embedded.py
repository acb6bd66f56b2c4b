"""The store embedded in the kiosk's process: port choice, local enrolment, stopping."""

from __future__ import annotations

import socket

import requests

from sync.central.embedded import ENROLMENT_FILE, start_embedded
from sync.central.serving import bind_socket


def test_it_answers_as_soon_as_start_returns_and_stops_with_stop(tmp_path):
    central = start_embedded(tmp_path, port=0)
    try:
        assert requests.get(central.url + "/healthz", timeout=5).status_code == 200
    finally:
        central.stop()
    assert not central.running


def test_a_taken_port_moves_it_to_the_next_free_one(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with start_embedded(tmp_path, port=port) as central:
            assert central.port > port
            assert requests.get(central.url + "/healthz", timeout=5).status_code == 200


def test_the_local_kiosk_keeps_its_enrolment_across_restarts(tmp_path):
    with start_embedded(tmp_path, port=0) as central:
        token = central.enrol("Main St", "Front desk")
        config = requests.get(
            central.url + "/api/v1/config", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert config.json()["site"] == "Main St"

    with start_embedded(tmp_path, port=0) as central:
        assert central.enrol("Main St", "Front desk") == token
        devices = central.store.query("SELECT id FROM devices")
    assert len(devices) == 1
    assert (tmp_path / ENROLMENT_FILE).stat().st_mode & 0o077 == 0


def test_a_revoked_local_enrolment_is_replaced(tmp_path):
    with start_embedded(tmp_path, port=0) as central:
        first = central.enrol("Main St", "Front desk")
        with central.store.write() as db:
            db.execute("UPDATE devices SET revoked = 1")

        second = central.enrol("Main St", "Front desk")

        assert second != first
        answer = requests.get(
            central.url + "/api/v1/config", headers={"Authorization": f"Bearer {second}"}, timeout=5
        )
        assert answer.status_code == 200


def test_the_listening_socket_says_tcp_so_asyncio_turns_nagle_off():
    # With proto 0, keep-alive requests (the sync client's Session) each waited ~40 ms.
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
