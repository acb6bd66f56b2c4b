"""A tiny HTTP server on 127.0.0.1 that fails on purpose, in front of the real central store.

Each POST to the events endpoint (or to the ``scripted_paths`` given) takes the next scripted
action (``server.script(...)``), then ``server.default`` once the script runs out. An action
decides what the kiosk sees: the backend's answer, an error status, a hang, a reset, a reply cut
after the backend committed, a tampered answer, a 413 from a smaller batch limit than the
store's, or a kept-alive connection closed as the next request arrives on it. The backend is a
``Forwarder`` (a pass-through to a real central server), which makes the server a
fault-injecting proxy; a test of the kiosk's failure handling alone may give it a fixed answer.

Raw sockets rather than ``http.server``: a reset (RST) or a connection closed after the commit
cannot be produced through a request handler's API.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

EVENTS_PATH = "/api/v1/events"
REASONS = {200: "OK", 302: "Found", 401: "Unauthorized", 403: "Forbidden",
           413: "Content Too Large", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, document: Any, **headers: str) -> Reply:
        return cls(status, json.dumps(document).encode(), {"Content-Type": "application/json",
                                                          **headers})

    def json(self) -> Any:
        return json.loads(self.body)


Backend = Callable[[Request], Reply]
Action = Callable[["ScriptedServer", socket.socket, Request], None]


class Forwarder:
    """Passes a request on to a real server and returns its answer."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def __call__(self, request: Request) -> Reply:
        passed = {k: v for k, v in request.headers.items()
                  if k in ("authorization", "content-type", "accept")}
        response = self.session.request(request.method, self.base_url + request.path,
                                        data=request.body or None, headers=passed, timeout=10)
        kept = {k: v for k, v in response.headers.items()
                if k.lower() in ("content-type", "retry-after", "location")}
        return Reply(response.status_code, response.content, kept)


# -- actions -----------------------------------------------------------------------------


def head_of(reply: Reply, keep_alive: bool = False, version: str = "1.1",
            length: int | None = None, with_length: bool = True) -> bytes:
    """The status line and headers of ``reply`` (its body ``length`` bytes long, by default
    its own body's; without ``with_length``, no length at all: the body ends when the
    connection closes)."""
    head = [f"HTTP/{version} {reply.status} {REASONS.get(reply.status, 'Status')}"]
    if with_length:
        head.append(f"Content-Length: {len(reply.body) if length is None else length}")
    if not keep_alive and version == "1.1":
        head.append("Connection: close")
    head += [f"{name}: {value}" for name, value in reply.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def send(conn: socket.socket, reply: Reply, keep_alive: bool = False,
         version: str = "1.1") -> None:
    """The reply; ``Connection: close`` unless ``keep_alive`` (an HTTP/1.0 reply says neither,
    and is closed all the same)."""
    conn.sendall(head_of(reply, keep_alive, version) + reply.body)


def trickled(every_s: float, with_length: bool = True) -> Action:
    """The backend's answer (it commits the batch), its headers at once and its body a byte
    every ``every_s`` seconds: each byte comes well within any read timeout, the whole body
    never in time. Without ``with_length`` the body's end is the connection's close. Stops
    when the client goes or the server closes."""
    def act(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
        honest = server.backend(request)
        conn.sendall(head_of(honest, with_length=with_length))
        for index in range(len(honest.body)):
            if server.released.wait(every_s):
                return
            try:
                conn.sendall(honest.body[index:index + 1])
            except OSError:
                return
    return act


def oversized(total_bytes: int) -> Action:
    """A 200 whose body is ``total_bytes`` of JSON-looking filler, sent as fast as it is read
    (a captive portal's page, a proxy's log); the backend never sees the request."""
    def act(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
        conn.sendall(head_of(Reply(200, headers={"Content-Type": "application/json"}),
                             length=total_bytes))
        piece = b" " * 65536
        try:
            for _ in range(total_bytes // len(piece)):
                conn.sendall(piece)
        except OSError:
            return  # the client stopped reading and closed
    return act


def answer(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
    """What the backend says, unchanged."""
    send(conn, server.backend(request))


def reply(status: int, body: bytes = b"", **headers: str) -> Action:
    """A fixed answer; the backend never sees the request (nothing is committed)."""
    def act(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
        send(conn, Reply(status, body, headers))
    return act


def hang(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
    """Read the request, then say nothing until the server closes."""
    server.released.wait()


def reset(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
    """Close with an RST (SO_LINGER 0) instead of an answer."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def cut_after_commit(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
    """The backend stores the batch; the kiosk never hears back."""
    server.backend(request)


def kept_alive_then(on_next: Action) -> Action:
    """The backend's answer on a connection kept alive; the next request on that connection is
    read and handed to ``on_next`` (which answers it, or not), then the connection is closed."""
    def act(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
        send(conn, server.backend(request), keep_alive=True)
        try:
            unanswered = _read_request(conn)
        except OSError:  # the client never sent another request on it
            return
        if unanswered is not None:
            with server._lock:
                server.requests.append(unanswered)
            on_next(server, conn, unanswered)
    return act


def dropped_when_reused(rst: bool = False) -> Action:
    """The next request on a kept-alive connection is never answered: the connection is
    closed (with an RST if ``rst``). What a server's idle timeout does when it fires just as
    the kiosk reuses the connection."""
    return kept_alive_then(reset if rst else (lambda server, conn, request: None))


def garbled(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
    """Something that is not an HTTP answer."""
    conn.sendall(b"HELLO THERE\r\n\r\n")


def as_http10(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
    """The backend's answer as HTTP/1.0 without keep-alive (so the connection is not reused)."""
    send(conn, server.backend(request), version="1.0")


def over_limit(max_events: int | None = None, max_body_bytes: int | None = None) -> Action:
    """The store's own limits (1000 events, 1 MiB) take batches too big for a quick test, so a
    smaller limit stands in front of it: over it, 413 with a detail as the store words one;
    within it, on to the backend."""
    def act(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
        events = request.json()["events"]
        if max_events is not None and len(events) > max_events:
            send(conn, Reply.of_json(413, {
                "detail": f"The batch has {len(events)} events; send at most {max_events}."}))
        elif max_body_bytes is not None and len(request.body) > max_body_bytes:
            send(conn, Reply.of_json(413, {
                "detail": f"The batch is larger than {max_body_bytes} bytes."}))
        else:
            answer(server, conn, request)
    return act


def tamper(change: Callable[[Any], Any] | None = None, raw: bytes | None = None) -> Action:
    """The backend commits; the kiosk gets its JSON changed by ``change`` or ``raw`` bytes."""
    def act(server: ScriptedServer, conn: socket.socket, request: Request) -> None:
        honest = server.backend(request)
        if raw is not None:
            send(conn, Reply(200, raw, {"Content-Type": "text/html"}))
        else:
            send(conn, Reply.of_json(200, change(honest.json())))
    return act


# -- the server ----------------------------------------------------------------------------


class ScriptedServer:
    """Listening as soon as it is constructed (the port is bound before the thread starts)."""

    def __init__(self, backend: Backend, default: Action = answer,
                 scripted_paths: tuple[str, ...] = (EVENTS_PATH,)):
        self.backend = backend
        self.default = default
        self.scripted_paths = scripted_paths  # the POSTs the script acts on
        self.requests: list[Request] = []
        self.released = threading.Event()
        self._script: deque[Action] = deque()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # how often the accept loop notices close()
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def script(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    def event_posts(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == EVENTS_PATH and r.method == "POST"]

    def batch_sizes(self) -> list[int]:
        return [len(request.json()["events"]) for request in self.event_posts()]

    def close(self) -> None:
        self.released.set()
        self._accepting.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self.released.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
                scripted = request.path in self.scripted_paths and request.method == "POST"
                action = self._script.popleft() if scripted and self._script else None
            (action or (self.default if scripted else answer))(self, conn, request)


def _read_request(conn: socket.socket) -> Request | None:
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Request(method, path, headers, body)
