"""The dashboard's security headers as a pure ASGI middleware.

``@app.middleware("http")`` would wrap every request, kiosk batches included, in Starlette's
``BaseHTTPMiddleware``: a task, a memory stream and a streaming response per request. Under
200 kiosks posting at once that was about a fifth of the event loop's time (benchmark figure
7). This one adds the headers as the response starts and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import MutableHeaders

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

class SecurityHeaders:
    """CSP, framing, referrer and no-sniff headers, each set only when a route has not."""

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
