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
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ProtocolError

log = logging.getLogger(__name__)


class KeptAliveSession(requests.Session):
    """A ``requests.Session`` for one client that sends one request at a time, its body as
    ``json=`` or bytes (a stream could not be sent twice, so it is never sent again)."""

    def __init__(self) -> None:
        super().__init__()
        # The server (scheme and address) whose last answer left its connection open, if any.
        self._left_open_by: tuple[str, str] | None = None

    def request(self, method, url, *args, **kwargs) -> requests.Response:
        server = _server_of(url)
        reused, self._left_open_by = self._left_open_by == server, None
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.ConnectionError as error:
            if not (reused and _closed_before_any_answer(error) and _resendable(kwargs)):
                raise
            log.info("the server closed a kept-alive connection as it was reused; sending again")
            response = super().request(method, url, *args, **kwargs)
        if _left_open(response):
            self._left_open_by = server
        return response


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
