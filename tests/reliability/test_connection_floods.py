"""Connection floods against a real central store on 127.0.0.1 (issue 12): a request's headers
or body sent a byte at a time is cut off in bounded time, idle sockets are closed, connections
over the cap are answered 503 with Retry-After, repeated warnings are logged once per minute
with a count, and Ctrl+C stops the store cleanly. Every loop is bounded in count and time; the
short deadlines here are the same code as the defaults (10 s headers, 30 s body)."""

from __future__ import annotations

import json
import logging
import resource
import selectors
import signal
import socket
import time

import pytest
import requests

from sync.central.connection_guard import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_CONNECTIONS,
    RESERVED_FDS,
    ConnectionLimits,
    connection_cap,
)
from sync.central.embedded import start_embedded
from sync.central.log_dedup import RepeatedRecordFilter
from sync.client import SyncClient
from tests.reliability import figures
from tests.reliability.helpers import CentralProcess, open_fds
from tests.support.central_server import LiveCentral
from tests.support.waiting import wait_until

FAST = ConnectionLimits(header_timeout_s=1.0, body_timeout_s=1.5, max_connections=400)


@pytest.fixture
def guarded(tmp_path):
    """A central store with short deadlines, so a test waits about a second, not ten."""
    with start_embedded(tmp_path / "central", port=0, limits=FAST) as central:
        yield LiveCentral(central.url, tmp_path / "central", central)


def _connect(server: LiveCentral) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.embedded.port), timeout=5)


def _trickle(sock: socket.socket, data: bytes, every_s: float,
             limit_s: float) -> tuple[float, bytes]:
    """Send ``data`` a byte every ``every_s`` until the server closes the connection (or
    ``limit_s`` passes); the seconds it took and what the server answered."""
    started = time.monotonic()
    answer = b""
    sock.settimeout(every_s)
    for byte in data:
        if time.monotonic() - started > limit_s:
            break
        try:
            sock.sendall(bytes([byte]))
            chunk = sock.recv(4096)  # waits every_s at most: the pace of the trickle
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: the server closed it
            break
        if not chunk:
            break
        answer += chunk
    return time.monotonic() - started, answer


def test_the_default_deadlines_and_cap_are_the_documented_ones():
    assert (HEADER_TIMEOUT_S, BODY_TIMEOUT_S, MAX_CONNECTIONS) == (10.0, 30.0, 1000)
    assert ConnectionLimits().overload_retry_after_s == 5
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert connection_cap(10**9) <= max(1, soft - RESERVED_FDS)


def test_headers_sent_a_byte_at_a_time_are_cut_off_with_a_408(guarded):
    sock = _connect(guarded)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    with sock:
        took, answer = _trickle(sock, request, every_s=0.2, limit_s=10)
    assert FAST.header_timeout_s <= took < FAST.header_timeout_s + 1.5, took
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body) == {"detail": "The request's headers did not arrive within 1 s; "
                                          "the connection is closed."}
    figures.record("slow_headers", title="Headers a byte at a time", figures={
        "every_s": 0.2, "cut_s": round(took, 2), "deadline_s": FAST.header_timeout_s,
        "default_deadline_s": HEADER_TIMEOUT_S})


def test_a_body_sent_a_byte_at_a_time_is_cut_off_and_nothing_is_stored(guarded):
    device = guarded.add_device()
    errors: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.ERROR)
    catcher.emit = errors.append
    logging.getLogger("uvicorn.error").addHandler(catcher)
    body = b'{"events": []}' + b" " * 486
    head = (f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            f"{device.token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\n\r\n").encode()
    try:
        with _connect(guarded) as sock:
            sock.sendall(head)
            took, answer = _trickle(sock, body, every_s=0.2, limit_s=10)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(catcher)
    assert FAST.body_timeout_s <= took < FAST.body_timeout_s + 1.5, took
    assert answer == b""  # cut off: the route never answered a half-sent batch
    assert errors == []  # a client cut off is no server error: no traceback in the log
    assert guarded.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]
    # Whoever sends properly is served meanwhile.
    assert requests.get(guarded.url("/healthz"), timeout=5).status_code == 200
    figures.record("slow_bodies", title="A body a byte at a time", figures={
        "every_s": 0.2, "cut_s": round(took, 2), "deadline_s": FAST.body_timeout_s,
        "default_deadline_s": BODY_TIMEOUT_S, "events_stored": 0})


def test_idle_sockets_are_closed_at_the_header_deadline(guarded):
    fds_before = open_fds()
    selector = selectors.DefaultSelector()
    sockets = [_connect(guarded) for _ in range(300)]
    opened = time.monotonic()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed = 0
    while closed < len(sockets) and time.monotonic() - opened < FAST.header_timeout_s + 5:
        for key, _ in selector.select(timeout=0.5):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:  # (a 408 comes first, then the close)
                closed += 1
                selector.unregister(key.fileobj)
    took = time.monotonic() - opened
    for sock in sockets:
        sock.close()
    selector.close()
    assert closed == 300
    assert took < FAST.header_timeout_s + 2, took
    wait_until(lambda: open_fds() <= fds_before + 5, timeout=5, what="server sockets closed")
    figures.record("idle_sockets", title="Idle sockets", figures={
        "sockets": 300, "all_closed_s": round(took, 2),
        "header_deadline_s": FAST.header_timeout_s})


def test_connections_over_the_cap_are_answered_503_with_retry_after(tmp_path):
    limits = ConnectionLimits(header_timeout_s=5, max_connections=40)
    with start_embedded(tmp_path / "central", port=0, limits=limits) as central:
        server = LiveCentral(central.url, tmp_path / "central", central)
        device = server.add_device()
        holders = [_connect(server) for _ in range(limits.max_connections)]
        wait_until(lambda: len(central._server.server_state.connections) == 40, timeout=5,
                   what="40 connections open")
        answers: list[bytes] = []
        for _ in range(300):
            with _connect(server) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
                answers.append(answer)
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert len(refused) == 300
        head, _, body = refused[0].partition(b"\r\n\r\n")
        assert b"retry-after: 5" in head.lower()
        assert json.loads(body)["detail"] == ("The central store is serving as many connections "
                                              "as it can (40); try again in 5 s.")
        # A kiosk hears "busy, come back in 5 s", and keeps its events.
        answer = requests.get(server.url("/healthz"), timeout=5)
        assert (answer.status_code, answer.headers["Retry-After"]) == (503, "5")
        from kiosk.store import Store as KioskStore

        kiosk = KioskStore(tmp_path / "kiosk.sqlite")
        kiosk.record("device.heartbeat", {"backlog": 0, "version": "1"})
        result = SyncClient(kiosk, server.base_url, device.token).sync_once()
        assert (result.ok, result.retry_after) == (False, 5.0)
        assert kiosk.sync_status().backlog == 1
        for sock in holders:
            sock.close()
        wait_until(lambda: SyncClient(kiosk, server.base_url, device.token).sync_once().ok,
                   timeout=10, what="served again once the others left")
        assert kiosk.sync_status().backlog == 0
        kiosk.close()
    figures.record("connection_cap", title="Connections over the cap", figures={
        "cap": 40, "over_the_cap": 300, "answered_503_retry_after": len(refused)})


def test_repeated_warnings_are_logged_once_per_interval_with_a_count():
    now = [0.0]
    shared = RepeatedRecordFilter(interval_s=60, clock=lambda: now[0])
    logger = logging.getLogger("tests.flood")
    lines: list[str] = []
    catcher = logging.Handler()
    catcher.emit = lambda record: lines.append(record.getMessage())
    logger.addHandler(catcher)
    logger.addFilter(shared)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for n in range(5000):
            logger.warning("Invalid request from %s.", f"10.0.0.{n % 250}")
            logger.info("an access line %d", n)  # INFO is never held back
        now[0] = 61
        logger.warning("Invalid request from %s.", "10.0.0.1")
    finally:
        logger.removeHandler(catcher)
        logger.removeFilter(shared)
    warnings = [line for line in lines if line.startswith("Invalid")]
    assert warnings == ["Invalid request from 10.0.0.0.",
                        "Invalid request from 10.0.0.1. (and 4,999 more like it in the last "
                        "60 s)"]
    assert sum(line.startswith("an access line") for line in lines) == 5000


def test_a_flood_of_bad_requests_and_refused_connections_keeps_the_log_short(tmp_path):
    central = CentralProcess(tmp_path / "central", extra_args=("--max-connections", "20")).start()
    try:
        bad, refused = 300, 300
        for _ in range(bad):  # uvicorn warns "Invalid HTTP request received." for each
            with socket.create_connection(("127.0.0.1", central.port), timeout=5) as sock:
                sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                while sock.recv(4096):
                    pass
        holders = [socket.create_connection(("127.0.0.1", central.port), timeout=5)
                   for _ in range(20)]
        time.sleep(0.2)  # the server has accepted them (not a guess at timing: a margin)
        for _ in range(refused):
            with socket.create_connection(("127.0.0.1", central.port), timeout=5) as sock:
                while sock.recv(4096):
                    pass
        for sock in holders:
            sock.close()
        wait_until(lambda: requests.get(central.url + "/healthz", timeout=5).status_code == 200,
                   timeout=10, what="served again")
    finally:
        central.process.send_signal(signal.SIGINT)
        central.process.wait(timeout=15)
        central._reader.join(timeout=5)
    log = "".join(central.log)
    assert log.count("Invalid HTTP request received.") == 1
    assert log.count("Refused a connection") == 1
    assert len(log.encode()) < 10_000, log[-3000:]
    figures.record("connection_floods", title="Connection floods", figures={
        "bad_requests": bad, "refused_connections": refused, "log_bytes": len(log.encode()),
        "log_lines": log.count("\n")})


def test_ctrl_c_stops_the_central_store_cleanly(tmp_path):
    central = CentralProcess(tmp_path / "central").start()
    _device_id, token = central.enrol()
    kept_alive = requests.Session()  # a kiosk's keep-alive connection, open at the stop
    assert kept_alive.get(central.url + "/api/v1/config", timeout=5,
                          headers={"Authorization": f"Bearer {token}"}).status_code == 200
    started = time.monotonic()
    central.process.send_signal(signal.SIGINT)
    code = central.process.wait(timeout=15)
    central._reader.join(timeout=5)
    took = time.monotonic() - started
    log = "".join(central.log)
    assert code == 0, log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
    assert log.rstrip().endswith("Central store stopped.")
    assert took < 5
    figures.record("sigint", title="Ctrl+C on central", figures={"stop_s": round(took, 2)})
