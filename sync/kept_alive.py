"""The kiosk's HTTP session: a request that meets its kept-alive connection closed by the
server goes once more, on a new connection.

A server closes a connection that has been idle for a while (the central store after 5 s,
the interval at which an enrolling kiosk polls), and when that happens just as the kiosk
reuses the connection, the request meets a closed socket although the server is up: the
kiosk would report "cannot reach the central store" for nothing. Sending again is safe for
every request the kiosk makes: a batch the store did take is answered ``duplicate``, and an
enrolment request or a GET asks again what it asked. Only once, and only on a connection the
previous answer kept open, so a server that really drops requests is still reported at once.
"""

from __future__ import annotations

import logging

import requests
from urllib3.exceptions import ProtocolError

log = logging.getLogger(__name__)


class KeptAliveSession(requests.Session):
    """A ``requests.Session`` for one client that sends one request at a time."""

    def __init__(self) -> None:
        super().__init__()
        # Whether the last answer left its connection open for the next request to reuse.
        self._kept_alive = False

    def request(self, method, url, *args, **kwargs) -> requests.Response:
        reused, self._kept_alive = self._kept_alive, False
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.ConnectionError as error:
            if not (reused and _closed_before_any_answer(error)):
                raise
            log.info("the server closed a kept-alive connection as it was reused; sending again")
            response = super().request(method, url, *args, **kwargs)
        self._kept_alive = "close" not in response.headers.get("Connection", "").lower()
        return response


def _closed_before_any_answer(error: requests.ConnectionError) -> bool:
    # requests wraps urllib3's ProtocolError ("Connection aborted.": closed or reset while the
    # request was sent or before the status line); a refused or timed-out connect is another.
    return bool(error.args) and isinstance(error.args[0], ProtocolError)
