"""The dashboard's security headers as a pure ASGI middleware.

The dashboard registers them with ``@app.middleware("http")``, which wraps every request,
kiosk batches included, in Starlette's ``BaseHTTPMiddleware``: a task, a memory stream and a
streaming response per request. Under 200 kiosks posting at once that was about a fifth of
the event loop's time (benchmark figure 7). ``use_asgi_security_headers`` swaps it, in place,
for this middleware, which adds the same headers as the response starts and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import MutableHeaders

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The dispatch function `install_dashboard` registers, by module and name.
DASHBOARD_HEADERS = ("sync.central.dashboard", "security_headers")


class SecurityHeaders:
    """What the dashboard's ``security_headers`` sets, set the same way (only when absent)."""

    def __init__(self, app: ASGIApp, content_security_policy: str):
        self.app = app
        self.content_security_policy = content_security_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if not api:
                    headers.setdefault("Content-Security-Policy", self.content_security_policy)
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def use_asgi_security_headers(app: FastAPI) -> bool:
    """Replace the dashboard's BaseHTTPMiddleware headers with :class:`SecurityHeaders`, in
    the same place in the stack; False (and nothing changed) if it is not there as expected."""
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware

    from sync.central.dashboard import CONTENT_SECURITY_POLICY

    for index, entry in enumerate(app.user_middleware):
        dispatch = entry.kwargs.get("dispatch")
        if (
            entry.cls is BaseHTTPMiddleware
            and dispatch is not None
            and (dispatch.__module__, dispatch.__name__) == DASHBOARD_HEADERS
        ):
            app.user_middleware[index] = Middleware(
                SecurityHeaders, content_security_policy=CONTENT_SECURITY_POLICY
            )
            return True
    return False
