"""A warning, once per run, for a store that seems to sit behind a proxy it was not told of.

Before ``--trusted-proxy`` existed, uvicorn believed ``X-Forwarded-For`` from 127.0.0.1, so a
store behind nginx on the same machine saw each client's own address with no flag. Now it
believes nobody unless told: behind such a proxy every client shares the proxy's address,
and a few wrong passwords a minute from anyone lock every manager out. A request from a
loopback or private address that carries ``X-Forwarded-For`` is the sign; the store still
serves it as before (the header is not believed), and says once what to do.
"""

from __future__ import annotations

import ipaddress
import logging

logger = logging.getLogger("uvicorn.error")  # where the store's own warnings are shown


def sentence(peer: str) -> str:
    return (
        f"A request from {peer} carries X-Forwarded-For, but no --trusted-proxy is set, so the "
        "header is ignored: every client behind that proxy shares its address, and a few "
        "refused passwords or tokens lock them all out together. If a proxy forwards to this "
        f"store, start it with --trusted-proxy {peer} (this is said once per run)."
    )


def _from_near_by(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


class WarnUnconfiguredProxy:
    """ASGI middleware: logs ``sentence`` the first time a loopback or private peer sends
    ``X-Forwarded-For``; changes nothing in any request."""

    def __init__(self, app):
        self.app = app
        self.warned = False

    async def __call__(self, scope, receive, send):
        if not self.warned and scope["type"] == "http" and scope.get("client"):
            peer = scope["client"][0]
            if _from_near_by(peer) and any(
                name == b"x-forwarded-for" for name, _ in scope["headers"]
            ):
                self.warned = True
                logger.warning(sentence(peer))
        await self.app(scope, receive, send)
