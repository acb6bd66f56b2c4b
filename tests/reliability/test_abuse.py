"""Hostile input against the real central store: tokens, other devices' data, oversized and
malformed bodies, brute force, secrets in logs and files, and the PIN lockout across a restart.

Single cases already covered elsewhere (tests/central/test_auth_api.py, test_events_api.py)
are not repeated; these are the attacks as an attacker would mount them, at volume.
"""

from __future__ import annotations

import http.client
import json
import uuid

import pytest
import requests

from tests.reliability import figures
from tests.reliability.helpers import CentralProcess, rss_kib
from tests.support.wire_events import WireEvents, at

MIB = 1024 * 1024


@pytest.fixture
def central_process(tmp_path):
    central = CentralProcess(tmp_path / "central", log_level="warning").start()
    yield central
    central.stop()


def _raw_post(port: int, path: str, headers: dict[str, str], body_parts: list[bytes],
              chunked: bool = False) -> tuple[int, bytes]:
    """One POST over a fresh connection; chunked sends no Content-Length at all."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(sum(len(part) for part in body_parts)))
        conn.endheaders()
        try:
            for part in body_parts:
                conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop listening once it has refused; its answer still counts
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# What a careless or hostile client can send, and the status each must get. Every body here
# crashed nothing but some once answered 500 (deep nesting, a 5000-digit number, a lone
# surrogate echoed back as an event id).
MALFORMED = {
    "not JSON": (b"{events: nope", 400),
    "not UTF-8": (b'{"events": ["\xff\xfe"]}', 400),
    "nested 100 000 deep": (b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    "a 5000-digit number": (b'{"events": [{"device_seq": ' + b"9" * 5000 + b"}]}", 400),
    "a lone surrogate as the id": (b'{"events": [{"id": "\\ud800"}]}', 400),
    "a lone surrogate as a key": (b'{"events": [], "\\udfff": 1}', 400),
    "a list, not an object": (b"[1, 2, 3]", 422),
    "events is a string": (b'{"events": "all of them"}', 422),
    "an unknown batch field": (b'{"events": [], "device_id": "someone-else"}', 422),
    "1001 events": (json.dumps({"events": [{}] * 1001}).encode(), 413),
}


@pytest.mark.parametrize("body,status", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_body_gets_a_4xx_with_a_sentence_never_a_500(central_server, body, status):
    device = central_server.add_device()
    response = requests.post(
        central_server.url("/api/v1/events"), data=body, timeout=30,
        headers={**device.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text[:300]
    assert response.json()["detail"].endswith(".")
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


@pytest.mark.slow
def test_floods_of_oversized_and_malformed_bodies_leave_memory_flat(central_process):
    central = central_process
    _, token = central.enrol()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    two_mib = [b'{"events": [' + b" " * (2 * MIB) + b"]}"]
    chunks = [b" " * (256 * 1024)] * 12  # 3 MiB with no Content-Length
    attacks = [
        ("declared oversized", lambda: _raw_post(central.port, "/api/v1/events", headers,
                                                  two_mib), 413),
        ("chunked oversized", lambda: _raw_post(central.port, "/api/v1/events", headers,
                                                 [b'{"events": ['] + chunks, chunked=True), 413),
        *[(name, lambda body=body: _raw_post(central.port, "/api/v1/events", headers, [body]),
           status) for name, (body, status) in MALFORMED.items()],
    ]

    def round_of_attacks() -> list[tuple[str, int]]:
        return [(name, attack()[0]) for name, attack, _ in attacks]

    round_of_attacks()  # warm-up: the allocator's first growth is not a leak
    before = rss_kib(central.pid)
    wrong = []
    rounds = 15
    for _ in range(rounds):
        for (name, status), (_, _, expected) in zip(round_of_attacks(), attacks, strict=True):
            if status != expected:
                wrong.append((name, status))
    after = rss_kib(central.pid)
    assert not wrong
    growth_mib = (after - before) / 1024
    assert growth_mib < 16, f"RSS grew {growth_mib:.1f} MiB over {rounds} rounds"
    good = WireEvents()
    still_fine = requests.post(central.url + "/api/v1/events", headers=headers, timeout=10,
                               json={"events": [good.heartbeat(at(0))]})
    assert [r["status"] for r in still_fine.json()["results"]] == ["stored"]
    server_errors = sum(" 500 " in line or "Traceback" in line for line in central.log)
    assert server_errors == 0
    figures.record(
        "hostile_bodies",
        title="Oversized, chunked and malformed bodies",
        figures={"requests": rounds * len(attacks), "kinds": len(attacks),
                 "oversized_mib_sent": round(rounds * 5 + 5, 1),
                 "rss_before_mib": round(before / 1024, 1),
                 "rss_after_mib": round(after / 1024, 1)},
        server_errors=server_errors,
    )


def _unused_id() -> str:
    return str(uuid.uuid4())
