"""Tell systemd how the process is doing: the sd_notify datagram protocol, standard library only.

systemd starts a ``Type=notify`` service with ``NOTIFY_SOCKET`` (a Unix datagram socket; a
leading ``@`` means Linux's abstract namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``.
The service sends ``READY=1`` once it is doing its job and ``WATCHDOG=1`` at least every
``WATCHDOG_USEC``; when the pings stop, systemd kills and restarts it. The protocol is one
``sendto`` per message (sd_notify(3)), so a library for it would add a dependency for a few
lines: the ones that exist are either unmaintained or bind libsystemd, which a kiosk built from
the pip wheels alone does not need.

Outside systemd (a developer's machine, the tests that do not set a socket) ``from_environ``
returns None and nothing is sent. ``WATCHDOG_PID`` is deliberately not checked: under the
``cage`` compositor the main process systemd watches is cage, and the kiosk is its child
(the unit sets ``NotifyAccess=all`` so systemd accepts the child's messages).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class ServiceNotifier:
    """A connection to systemd's notification socket; every send is best effort."""

    def __init__(self, address: str, watchdog_usec: int | None = None):
        # An abstract-namespace address starts with a NUL byte on the wire.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_usec = watchdog_usec
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServiceNotifier | None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        if not address or not address.startswith(("/", "@")):
            return None  # not started by systemd as a notify service (or a vsock address)
        return cls(address, _positive_int(environ.get("WATCHDOG_USEC")))

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half the watchdog timeout, as sd_watchdog_enabled(3) advises,
        so one late frame never gets a healthy kiosk killed. None when no watchdog is set."""
        if not self.watchdog_usec:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def send(self, state: str) -> bool:
        """Send one message (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``, ``STATUS=...``).
        False when it could not be delivered: the kiosk goes on either way."""
        try:
            self._socket.sendto(state.encode(), self.address)
        except OSError as error:
            log.warning("could not tell systemd %r: %s", state, error)
            return False
        return True

    def ready(self) -> bool:
        return self.send("READY=1")

    def ping(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def close(self) -> None:
        self._socket.close()


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if value > 0 else None
