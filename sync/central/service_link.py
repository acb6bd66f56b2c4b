"""The central store under systemd (``Type=notify``): READY=1 once it serves, WATCHDOG=1 from
its event loop, so a loop blocked for good (a hung request handler) gets it restarted.

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
