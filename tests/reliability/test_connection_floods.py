"""Connection floods against a real central store on 127.0.0.1 (issue 12): a request's headers
or body sent a byte at a time is cut off in bounded time, idle sockets are closed, connections
over the cap are answered 503 with Retry-After, repeated warnings are logged once per minute
with a count, and Ctrl+C stops the store cleanly. Every loop is bounded in count and time; the
short deadlines here are the same code as the defaults (10 s headers, 30 s body)."""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import h11
import pytest
import requests
from uvicorn.protocols.http.h11_impl import H11Protocol

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central.connection_guard import (
    BODY_MIN_BYTES,
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_CONNECTIONS,
    MAX_REFUSALS_OPEN,
    RESERVED_FDS,
    WORKER_THREADS,
    ConnectionLimits,
    connection_cap,
)
from sync.central.embedded import start_embedded
from sync.central.log_dedup import FLOOD_LOGGERS, FLOOD_MESSAGES, RepeatedRecordFilter
from sync.client import SyncClient
from tests.reliability import figures
from tests.reliability.helpers import CentralProcess, open_fds
from tests.support.central_server import LiveCentral
from tests.support.waiting import wait_until
from tests.support.wire_events import WireEvents

FAST = ConnectionLimits(header_timeout_s=1.0, body_timeout_s=1.5, max_connections=400)


@pytest.fixture
def guarded(tmp_path):
    """A central store with short deadlines, so a test waits about a second, not ten."""
    with start_embedded(tmp_path / "central", port=0, limits=FAST) as central:
        yield LiveCentral(central.url, tmp_path / "central", central)


def _connect(server: LiveCentral) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.embedded.port), timeout=5)


def _trickle(sock: socket.socket, data: bytes, every_s: float, limit_s: float,
             started: float) -> tuple[float, bytes]:
    """Send ``data`` a byte every ``every_s`` until the server closes the connection (or
    ``limit_s`` passes); the seconds since ``started`` and what the server answered.
    ``started`` is taken before the server could start its deadline (before connecting, or
    before sending the headers), so the time measured is never shorter than the server's."""
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


@contextlib.contextmanager
def records_logged(level: int = logging.ERROR, names: tuple[str, ...] = FLOOD_LOGGERS,
                   ) -> Iterator[list[logging.LogRecord]]:
    """The records of ``level`` or above logged on ``names`` meanwhile, seen before any filter
    (the store's de-duplication is process-wide: an earlier test may have logged the same
    line, which the filter would then hold back from a handler)."""
    caught: list[logging.LogRecord] = []

    def catch(record: logging.LogRecord) -> bool:
        if record.levelno >= level:
            caught.append(record)
        return True

    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.filters.insert(0, catch)
    try:
        yield caught
    finally:
        for logger in loggers:
            logger.removeFilter(catch)


def test_the_default_deadlines_and_cap_are_the_documented_ones():
    assert (HEADER_TIMEOUT_S, BODY_TIMEOUT_S, BODY_MIN_BYTES, MAX_CONNECTIONS) == (
        10.0, 10.0, 1024, 1000)
    assert ConnectionLimits().overload_retry_after_s == 5
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert connection_cap(10**9) <= max(1, soft - RESERVED_FDS)


def test_the_cap_raises_the_open_file_limit_and_keeps_room_for_threads_and_refusals():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 512:
        pytest.skip(f"needs a finite hard limit on open files of 512 or more (it is {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # a low soft limit, as often set
    try:
        cap = connection_cap(10**9)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        assert cap == max(1, hard - RESERVED_FDS)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 256), hard))
    # Each worker thread a sync route runs on holds a SQLite connection (3 files with WAL):
    # the reserve is sized from the thread limiter the routes really use.
    # (On a thread of its own: an earlier test may have left an event loop on this one.)
    with ThreadPoolExecutor(1) as thread:
        limiter = thread.submit(
            anyio.run, _async, anyio.to_thread.current_default_thread_limiter).result()
    assert limiter.total_tokens == WORKER_THREADS
    assert RESERVED_FDS >= 64 + 3 * WORKER_THREADS + MAX_REFUSALS_OPEN


async def _async(make):
    return make()


def test_the_uvicorn_internals_the_guard_relies_on_are_there(guarded):
    """The guard subclasses uvicorn's h11 protocol and reads its private state; pyproject pins
    uvicorn to the minor version it was written for, and this fails loudly on an upgrade that
    moved any of it (look at a live connection, mid-request)."""
    device = guarded.add_device()
    with _connect(guarded) as sock:
        sock.sendall(f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                     f"Bearer {device.token}\r\nContent-Type: application/json\r\n"
                     "Content-Length: 10\r\n\r\n01234".encode())  # headers in, half a body
        connections = guarded.embedded._server.server_state.connections
        wait_until(lambda: any(p.cycle is not None for p in connections), timeout=5,
                   what="the request's headers read")
        protocol = next(p for p in connections if p.cycle is not None)
        assert isinstance(protocol, H11Protocol) and protocol.connections is connections
        assert isinstance(protocol.conn, h11.Connection)
        assert protocol.conn.their_state is h11.SEND_BODY
        assert protocol.timeout_keep_alive_task is None  # none while a request is under way
        assert callable(protocol.timeout_keep_alive_handler)
        assert (protocol.cycle.more_body, protocol.cycle.response_complete) == (True, False)
        assert protocol.cycle.on_response == protocol.on_response_complete
        for name in ("connection_made", "data_received", "on_response_complete",
                     "connection_lost", "handle_events"):
            assert callable(getattr(H11Protocol, name)), name


def test_headers_sent_a_byte_at_a_time_are_cut_off_with_a_408(guarded):
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    started = time.monotonic()  # before the connection opens, when the server's clock starts
    with _connect(guarded) as sock:
        took, answer = _trickle(sock, request, every_s=0.2, limit_s=10, started=started)
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
    body = b'{"events": []}' + b" " * 486
    head = (f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            f"{device.token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\n\r\n").encode()
    with records_logged() as errors, _connect(guarded) as sock:
        started = time.monotonic()  # before the headers: the server's clock starts on them
        sock.sendall(head)
        took, answer = _trickle(sock, body, every_s=0.2, limit_s=10, started=started)
    assert FAST.body_timeout_s <= took < FAST.body_timeout_s + 1.5, took
    assert answer == b""  # cut off: the route never answered a half-sent batch
    assert errors == []  # a client cut off is no server error: no traceback in the log
    assert guarded.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]
    # Whoever sends properly is served meanwhile.
    assert requests.get(guarded.url("/healthz"), timeout=5).status_code == 200
    figures.record("slow_bodies", title="A body a byte at a time", figures={
        "every_s": 0.2, "cut_s": round(took, 2), "deadline_s": FAST.body_timeout_s,
        "default_deadline_s": BODY_TIMEOUT_S, "default_min_bytes": BODY_MIN_BYTES,
        "events_stored": 0})


def test_a_slow_but_steady_body_is_stored_however_long_it_takes(tmp_path):
    """The body limit is a minimum rate, not a total: a batch sent at a steady ~2.5 KB/s
    takes several windows of 0.5 s (each must bring 256 bytes) and is stored whole. (A kiosk
    on a slow link used to be cut off at the same point on every resend, for ever.)"""
    limits = ConnectionLimits(body_timeout_s=0.5, body_min_bytes=256)
    with start_embedded(tmp_path / "central", port=0, limits=limits) as central:
        server = LiveCentral(central.url, tmp_path / "central", central)
        device = server.add_device()
        wire = WireEvents()
        now = to_rfc3339(utc_now())
        body = json.dumps({"events": [wire.heartbeat(now) for _ in range(30)]}).encode()
        head = (f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                f"{device.token}\r\nContent-Type: application/json\r\nContent-Length: "
                f"{len(body)}\r\n\r\n").encode()
        with _connect(server) as sock:
            started = time.monotonic()
            sock.sendall(head)
            for at in range(0, len(body), 512):
                time.sleep(0.2)
                sock.sendall(body[at:at + 512])
            took = time.monotonic() - started
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert took > 3 * limits.body_timeout_s, took  # longer than a total limit would allow
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 30}]
    figures.record("slow_steady_body", title="A slow but steady body", figures={
        "body_bytes": len(body), "took_s": round(took, 2), "window_s": limits.body_timeout_s,
        "min_bytes": limits.body_min_bytes, "events_stored": 30,
        "default_window_s": BODY_TIMEOUT_S, "default_min_bytes": BODY_MIN_BYTES})


def _seconds_until_closed(sock: socket.socket, limit_s: float) -> float:
    """Read and drop what the server sends until it closes the connection; the seconds that
    took, or ``limit_s`` if it was still open then."""
    started = time.monotonic()
    while (left := limit_s - (time.monotonic() - started)) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                break
        except TimeoutError:
            break
        except OSError:  # reset: closed too
            break
    return time.monotonic() - started


@pytest.mark.parametrize("next_request", [b"", b"GET /hea"], ids=["nothing-after", "part-of-next"])
def test_a_body_sent_after_an_early_401_does_not_hold_the_connection_open(guarded, next_request):
    """A 401 answers before the body is read; the body sent afterwards used to cancel every
    timer, so an unauthenticated client could hold a connection slot for ever."""
    with _connect(guarded) as sock:
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 10\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 401")
        time.sleep(0.1)  # the response is complete before the rest of the body arrives
        sock.sendall(b"0123456789" + next_request)
        limit = FAST.header_timeout_s + 4
        took = _seconds_until_closed(sock, limit_s=limit)
    # Closed at the header deadline (or uvicorn's 5 s keep-alive, whichever runs), not never.
    assert took < limit - 0.5, took
    if next_request:
        figures.record("early_answer_body", title="A body sent after an early 401", figures={
            "closed_after_s": round(took, 2), "header_deadline_s": FAST.header_timeout_s})


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
    # A header deadline far beyond the test, which is about the cap: the 40 held-open sockets
    # must stay open through all 300 refusals even on a slow machine.
    limits = ConnectionLimits(header_timeout_s=60, max_connections=40)
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


def test_refused_connections_kept_open_are_bounded_and_the_rest_dropped_at_once(tmp_path):
    """A refused client that never closes its end keeps a descriptor for a second; past
    ``max_refusals_open`` of them, a refusal is dropped at once, so refusals cannot use up
    the descriptors the cap leaves free."""
    limits = ConnectionLimits(header_timeout_s=60, max_connections=2, max_refusals_open=3)
    with start_embedded(tmp_path / "central", port=0, limits=limits) as central:
        server = LiveCentral(central.url, tmp_path / "central", central)
        refusals_open = central._server.config.http.refusals_open
        holders = [_connect(server) for _ in range(2)]
        wait_until(lambda: len(central._server.server_state.connections) == 2, timeout=5,
                   what="2 connections open")
        silent = [_connect(server) for _ in range(12)]  # refused, and never closing their end
        most = 0
        for sock in silent:
            most = max(most, len(refusals_open))
            took = _seconds_until_closed(sock, limit_s=5)
            assert took < 3, took  # answered and closed: by the server, at once or in 1 s
        assert 1 <= most <= limits.max_refusals_open, most
        wait_until(lambda: not refusals_open, timeout=5, what="the refusals closed")
        for sock in holders + silent:
            sock.close()
    figures.record("refusals_open", title="Refused connections kept open", figures={
        "silent_refused": len(silent), "most_open": most,
        "bound": limits.max_refusals_open, "default_bound": MAX_REFUSALS_OPEN})


class _FloodLog:
    """A logger with the de-duplicating filter, a fake clock, and the lines that got through;
    the count of a stopped flood is written when the test says the timer fires."""

    def __init__(self, name: str, messages: tuple[str, ...] = ("Invalid request from",)):
        self.now = 0.0
        self.timers: list[float] = []
        self.filter = RepeatedRecordFilter(
            interval_s=60, clock=lambda: self.now, messages=messages,
            later=lambda delay, _action: self.timers.append(delay))
        self.lines: list[str] = []
        self.logger = logging.getLogger(name)
        self.catcher = logging.Handler()
        self.catcher.emit = lambda record: self.lines.append(record.getMessage())

    def __enter__(self) -> _FloodLog:
        self.logger.addHandler(self.catcher)
        self.logger.addFilter(self.filter)
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *_exc) -> None:
        self.logger.removeHandler(self.catcher)
        self.logger.removeFilter(self.filter)


def test_repeated_warnings_are_logged_once_per_interval_with_a_count():
    with _FloodLog("tests.flood") as log:
        for n in range(5000):
            log.logger.warning("Invalid request from %s.", f"10.0.0.{n % 250}")
            log.logger.info("an access line %d", n)  # INFO is never held back
        log.now = 61
        log.logger.warning("Invalid request from %s.", "10.0.0.1")
    warnings = [line for line in log.lines if line.startswith("Invalid")]
    assert warnings == ["Invalid request from 10.0.0.0.",
                        "Invalid request from 10.0.0.1. (and 4,999 more like it in the last "
                        "61 s)"]
    assert sum(line.startswith("an access line") for line in log.lines) == 5000


def test_the_count_of_a_flood_that_stopped_is_written_with_the_time_that_passed():
    with _FloodLog("tests.flood.stopped") as log:
        for n in range(300):
            log.now = n / 100
            log.logger.warning("Invalid request from %s.", f"10.0.0.{n % 250}")
        # One timer for the count, due when the interval since the logged line is over.
        assert log.timers == [pytest.approx(60 - 0.01)]
        log.now = 60
        log.filter.write_due_counts()
        log.now = 3 * 3600  # hours later: a new flood starts afresh, with no stale count
        log.logger.warning("Invalid request from %s.", "10.0.0.9")
    assert log.lines == ["Invalid request from 10.0.0.0.",
                         "Invalid request from 10.0.0.49. (and 298 more like it in the last "
                         "60 s)",
                         "Invalid request from 10.0.0.9."]


def test_different_errors_are_never_hidden_behind_one():
    """Two unrelated tracebacks of the same exception type, and any line that is not one a
    flood repeats, are each logged, however close together."""
    with _FloodLog("tests.flood.errors") as log:
        for reason in ("no such table: visits", "database disk image is malformed"):
            try:
                raise RuntimeError(reason)
            except RuntimeError:
                log.logger.exception("Exception in ASGI application\n")
        for _ in range(3):
            log.logger.warning("The kiosk %s sent a clock %d s ahead.", "A-017", 90)
    assert log.lines == ["Exception in ASGI application\n"] * 2 + [
        "The kiosk A-017 sent a clock 90 s ahead."] * 3


def test_a_repeated_flood_error_is_held_back_only_with_the_same_exception_text():
    with _FloodLog("tests.flood.accept", messages=FLOOD_MESSAGES) as log:
        for error in (OSError(24, "Too many open files"), OSError(24, "Too many open files"),
                      OSError(23, "Too many open files in system")):
            try:
                raise error
            except OSError:
                log.logger.exception("socket.accept() out of system resource")
    assert log.lines == ["socket.accept() out of system resource"] * 2


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
