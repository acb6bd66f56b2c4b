"""The kiosk's HTTP session: a request that meets its kept-alive connection closed by the
server goes once more, on a new connection.

A server closes a connection that has been idle for a while (the central store after 5 s,
the interval at which an enrolling kiosk polls), and when that happens just as the kiosk
reuses the connection, the request meets a closed socket although the server is up: the
kiosk would report "cannot reach the central store" for nothing. Sending again is safe for
what the kiosk sends: a batch the store did take is answered ``duplicate``; a poll for an
enrolment token asks again (should the store have answered the first one, the second is an
early poll, answered ``slow_down`` as any early poll is); a GET reads again. Only once, only
when the previous answer from that same server left its connection open, and only when the
socket was closed or reset (not when the server sent something unreadable): a server that
really drops requests is still reported after one more try, with no wait added.

Every answer's body is also read within bounds (``MAX_ANSWER_BYTES``, ``ANSWER_WITHIN_S``):
the read timeout bounds each wait for the next bytes, not the whole body, so a server (or a
proxy, a captive portal) that trickles a byte every few seconds, or sends megabytes, would
otherwise hold the sync pass for ever or fill the kiosk's memory. The answers a kiosk reads
(a batch's results, its settings, an enrolment step) are a few kilobytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ProtocolError

# A batch of 1,000 events is answered in about 150 KB; settings and enrolment in less.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# From the answer's headers to its last byte.
ANSWER_WITHIN_S = 30.0
READ_CHUNK_BYTES = 64 * 1024
log = logging.getLogger(__name__)


class AnswerNotRead(requests.RequestException):
    """An answer's body was not read: too large, or too slow in coming; a sentence."""


class AnswerTooLarge(AnswerNotRead):
    pass


class AnswerTooSlow(AnswerNotRead):
    pass


class KeptAliveSession(requests.Session):
    """A ``requests.Session`` for one client that sends one request at a time, its body as
    ``json=`` or bytes (a stream could not be sent twice, so it is never sent again)."""

    def __init__(self, max_answer_bytes: int = MAX_ANSWER_BYTES,
                 answer_within_s: float = ANSWER_WITHIN_S) -> None:
        super().__init__()
        self.max_answer_bytes = max_answer_bytes
        self.answer_within_s = answer_within_s
        # The server (scheme and address) whose last answer left its connection open, if any.
        self._left_open_by: tuple[str, str] | None = None

    def request(self, method, url, *args, **kwargs) -> requests.Response:
        server = _server_of(url)
        reused, self._left_open_by = self._left_open_by == server, None
        kwargs["stream"] = True  # the body is read here, within bounds
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.ConnectionError as error:
            if not (reused and _closed_before_any_answer(error) and _resendable(kwargs)):
                raise
            log.info("the server closed a kept-alive connection as it was reused; sending again")
            response = super().request(method, url, *args, **kwargs)
        self._read_body(response)
        if _left_open(response):
            self._left_open_by = server
        return response

    def _read_body(self, response: requests.Response) -> None:
        """Read the whole body into ``response.content``, or close the connection and raise
        AnswerTooLarge or AnswerTooSlow."""
        watchdog = _Watchdog(response, self.answer_within_s)
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > self.max_answer_bytes:
                    raise AnswerTooLarge(
                        f"the answer from {response.url} is over "
                        f"{self.max_answer_bytes // 1024:,} KiB, far more than any answer "
                        "to a kiosk; it was not read"
                    )
                chunks.append(chunk)
        except Exception:
            watchdog.finish()
            response.close()  # the connection is not reused: the rest of the body is in it
            if watchdog.fired:
                raise self._too_slow(response) from None
            raise  # as requests raises it when it reads the body itself
        watchdog.finish()
        if watchdog.fired:
            # A body that ends when the connection closes (no length given) ended at the
            # watchdog's shutdown: what was read is only its beginning.
            response.close()
            raise self._too_slow(response)
        # requests keeps a read body here; .content, .text and .json() read it from there.
        response._content = b"".join(chunks)

    def _too_slow(self, response: requests.Response) -> AnswerTooSlow:
        return AnswerTooSlow(
            f"the answer from {response.url} did not arrive whole within "
            f"{self.answer_within_s:g} s (it came in too slowly)"
        )


class _Watchdog:
    """Bounds the reads of one answer's body together: each waits at most the read timeout,
    and at the deadline the socket is shut down under them (an EOF ends a waiting read, a TLS
    one too). It shuts a duplicate descriptor of its own, so the number cannot have gone to
    another socket meanwhile, and the lock keeps it from acting once the reading is over."""

    def __init__(self, response: requests.Response, within_s: float):
        self.fired = False
        self._lock = threading.Lock()
        self._finished = False
        self._socket = _duplicate_socket(response)
        self._timer = threading.Timer(within_s, self._fire)
        self._timer.daemon = True
        try:
            self._timer.start()
        except RuntimeError:  # no thread to be had: the reads keep their own timeouts only
            log.warning("the answer is read without its deadline (no thread could start)")

    def _fire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.fired = True
            if self._socket is not None:
                with contextlib.suppress(OSError):  # closed meanwhile: nothing waits on it
                    self._socket.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._finished = True
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def _duplicate_socket(response: requests.Response) -> socket.socket | None:
    """A socket object on a duplicate of the answer's descriptor; None when the body is
    already all read (nothing left to wait for) or no descriptor is left to duplicate."""
    try:
        descriptor = os.dup(response.raw.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    try:
        return socket.socket(fileno=descriptor)
    except OSError:
        os.close(descriptor)  # not left open for the life of the process
        return None


def _server_of(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _left_open(response: requests.Response) -> bool:
    """Whether the answer leaves its connection open for the next request (HTTP/1.1 unless it
    says ``Connection: close``; HTTP/1.0 only if it says ``keep-alive``)."""
    connection = response.headers.get("Connection", "").lower()
    if getattr(response.raw, "version", 11) >= 11:
        return "close" not in connection
    return "keep-alive" in connection


def _closed_before_any_answer(error: requests.ConnectionError) -> bool:
    # requests wraps urllib3's ProtocolError ("Connection aborted.", cause): the cause is a
    # builtin ConnectionError when the socket was closed or reset before the status line
    # (RemoteDisconnected, ECONNRESET, EPIPE); an unreadable status line is another cause, and
    # a refused or timed-out connect is not a ProtocolError at all.
    cause = error.args[0] if error.args else None
    return (isinstance(cause, ProtocolError) and bool(cause.args)
            and isinstance(cause.args[-1], ConnectionError))


def _resendable(kwargs: dict) -> bool:
    data = kwargs.get("data")
    return kwargs.get("files") is None and (data is None or isinstance(data, bytes | str | dict))
