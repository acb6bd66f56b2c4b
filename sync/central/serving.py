"""Binding the listening socket ourselves, then handing it to uvicorn.

Binding first tells us at once whether a port is free (so the embedded store can move to the
next one, and `central` can say "port taken" in a sentence), and with port 0 it tells tests
which port the system picked before the server has even started.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the admin commands import this module and need none of these
    import uvicorn
    from fastapi import FastAPI

    from sync.central.connection_guard import ConnectionLimits

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


class BadProxyAddress(ValueError):
    """A --trusted-proxy value that is not an IP address or network; the message says so."""


def trusted_proxies(values: Iterable[str]) -> list[str]:
    """The proxies whose ``X-Forwarded-For`` is believed, from ``--trusted-proxy`` values
    (each may list several, comma-separated): IP addresses or networks, e.g. ``10.0.0.5``,
    ``127.0.0.1``, ``10.1.0.0/16``."""
    proxies: list[str] = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise BadProxyAddress(
                    f"--trusted-proxy {item!r} is not an IP address or network "
                    "(e.g. 127.0.0.1 or 10.1.0.0/16)"
                ) from None
            proxies.append(str(network.network_address) if network.num_addresses == 1
                           else str(network))
    return proxies


def make_server(
    app: FastAPI,
    host: str,
    port: int,
    log_level: str = "info",
    proxies: Iterable[str] = (),
    limits: ConnectionLimits | None = None,
) -> uvicorn.Server:
    """A uvicorn server for ``app``. A client's address is the socket's peer, except behind
    one of ``proxies``, whose ``X-Forwarded-For`` is believed (the token and login limits
    count by address, so anyone else's header must not choose it); with none, a proxy that
    forwards anyway is warned of once (``forwarded_warning``). ``limits``: read
    deadlines and the connection cap (``sync.central.connection_guard``)."""
    import uvicorn

    from sync.central.connection_guard import ConnectionLimits, connection_cap, guarded_protocol
    from sync.central.forwarded_warning import WarnUnconfiguredProxy
    from sync.central.log_dedup import limit_repeated_logs

    limits = limits or ConnectionLimits(max_connections=connection_cap())
    proxies = list(proxies)
    config = uvicorn.Config(
        # With no proxy named, say once if a proxy seems to forward to us anyway.
        app if proxies else WarnUnconfiguredProxy(app),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level in ("debug", "info"),
        http=guarded_protocol(limits),
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: a client on
        # the same machine could then be anyone it liked.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        # Kiosks hold keep-alive connections; do not let them keep a stopping store alive.
        timeout_graceful_shutdown=3,
    )
    limit_repeated_logs()  # after uvicorn.Config, which configures its loggers
    return uvicorn.Server(config)


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
