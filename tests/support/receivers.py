"""Real receivers on 127.0.0.1 for alert deliveries: a webhook server that checks the
signature (or answers 500, or hangs), and an SMTP server (aiosmtpd) that keeps or refuses mail.
Every one listens on a port the system picks and is stopped by its context manager."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

HANG_LIMIT_S = 5.0  # a hanging reply gives up by itself after this, whatever the test does


@dataclass
class WebhookReceiver:
    secret: str
    status: int = 200
    hang: bool = False
    received: list[dict] = field(default_factory=list)
    bad_signatures: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def verify(self, body: bytes, headers) -> bool:
        """What a receiver should do: recompute the HMAC over the exact body, compare in
        constant time, and refuse a timestamp that is old or not the one signed."""
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Signature-256", "")):
            return False
        stamp = headers.get("X-Signature-Timestamp", "")
        payload = json.loads(body)
        signed_stamp = payload.get("sent_at_unix", stamp if "text" in payload else None)
        return stamp.isdigit() and str(signed_stamp) == stamp


@contextmanager
def webhook_receiver(secret: str = "s3cret-for-tests", status: int = 200,
                     hang: bool = False) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret, status, hang)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the name http.server calls
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.hang:
                receiver.arrived.set()
                receiver.release.wait(HANG_LIMIT_S)
                return
            if receiver.verify(body, self.headers):
                receiver.received.append({"body": json.loads(body), "at": time.monotonic(),
                                          "headers": dict(self.headers)})
                self.send_response(receiver.status)
            else:
                receiver.bad_signatures += 1
                self.send_response(401)
            receiver.arrived.set()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


@dataclass
class MailReceiver:
    refuse: bool = False
    messages: list = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.refuse:
            return "550 5.7.1 Relaying refused"
        self.raw.append(envelope.content)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def smtp_receiver(refuse: bool = False) -> Iterator[MailReceiver]:
    receiver = MailReceiver(refuse)
    receiver.port = _free_port()
    controller = Controller(receiver, hostname="127.0.0.1", port=receiver.port)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
