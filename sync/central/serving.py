"""Binding the listening socket ourselves, then handing it to uvicorn.

Binding first tells us at once whether a port is free (so the embedded store can move to the
next one, and `central` can say "port taken" in a sentence), and with port 0 it tells tests
which port the system picked before the server has even started.
"""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the admin commands import this module and need neither
    import uvicorn
    from fastapi import FastAPI

PORT_TRIES = 20


class PortUnavailable(OSError):
    """No port could be bound; the message names the ports tried and why."""


def bind_socket(host: str, port: int, tries: int = 1) -> socket.socket:
    """A listening socket on ``port``, or on one of the next ``tries - 1`` ports if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last_error: OSError | None = None
    candidates = [0] if port == 0 else range(port, min(port + tries, 65536))
    for candidate in candidates:
        # Naming IPPROTO_TCP matters: asyncio turns Nagle off (TCP_NODELAY) only on sockets
        # whose proto says TCP, and with Nagle on every keep-alive request waits ~40 ms for a
        # delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # Lets a restarted store reuse its port while old connections sit in TIME_WAIT; a port
        # another process is listening on still refuses us.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
            sock.listen(128)
        except OSError as error:
            sock.close()
            last_error = error
            if error.errno != errno.EADDRINUSE:
                break
            continue
        sock.set_inheritable(True)
        return sock
    tried = f"port {port}" if len(candidates) == 1 else f"ports {port}-{candidates[-1]}"
    reason = last_error.strerror if last_error else "no port to try"
    raise PortUnavailable(f"cannot listen on {host} {tried}: {reason}")


def bound_port(sock: socket.socket) -> int:
    return sock.getsockname()[1]


def make_server(app: FastAPI, host: str, port: int, log_level: str = "info") -> uvicorn.Server:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level in ("debug", "info"),
        # Kiosks hold keep-alive connections; do not let them keep a stopping store alive.
        timeout_graceful_shutdown=3,
    )
    return uvicorn.Server(config)


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
