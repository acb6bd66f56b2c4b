"""The central store under systemd (``Type=notify``): READY=1 once it serves, WATCHDOG=1 from
its asyncio event loop.

What that catches, and what it does not: the pings stop, and systemd restarts the store, only
when the event loop itself is stuck, e.g. blocking code in an ``async`` handler or middleware
(the middleware, the body reading and the parsing of POST /api/v1/events run there). Most routes
are plain ``def`` functions that run on the server's thread pool, and the batch writer has its
own thread: one of those hung (a query that never ends, a writer stuck on a lock) leaves the
loop pinging, so it is *not* restarted; requests that need that thread wait or time out instead.

Only ``main.py central`` links itself: the store embedded in a kiosk's process must not ping
the kiosk's watchdog from its own thread, or a hung kiosk screen would look alive.
"""

from __future__ import annotations

import asyncio
import contextlib

from kiosk.service_notify import ServiceNotifier


async def _ping_forever(service: ServiceNotifier, interval_s: float) -> None:
    while True:
        service.ping()
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def linked(service: ServiceNotifier | None):
    """Within the app's lifespan: ready on entry, pinging while it runs, stopping on exit."""
    if service is None:
        yield
        return
    task = None
    service.ready()
    if (interval := service.watchdog_interval_s) is not None:
        task = asyncio.create_task(_ping_forever(service, interval))
    try:
        yield
    finally:
        service.stopping()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
