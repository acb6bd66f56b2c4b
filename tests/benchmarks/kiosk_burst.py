"""A burst of many kiosks posting at once, each over its own kept-alive HTTP/1.1 connection:
what figures 14 and 15 share.

The client is a minimal HTTP/1.1 speaker on asyncio streams, one connection per kiosk, opened
(one ``GET /api/v1/config``) before the burst, as a kiosk's ``requests.Session`` keeps its
connection alive between pushes. Not httpx, not 1,000 threads: on a 2-CPU machine that the
server and the database share, a full client's per-request work for 1,000 requests (some
hundreds of microseconds each, all in one GIL) would be measured as the store's latency. Here a
request is a prepared byte string written to its socket; its answer is read to its last byte
(``Content-Length``), timed, and only parsed (every event must say ``stored``) after the burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sync.central.connection_guard import raise_open_file_limit

BATCH = 25  # a few visits' worth: what a desk kiosk sends after a short network outage
# File descriptors this process needs beyond one socket per kiosk (logs, the interpreter's own
# files, the database connection that counts the rows).
SPARE_FDS = 200


def ensure_open_files(kiosks: int) -> None:
    """Raise the soft limit on open files to the hard one; say so plainly if even that is too
    few for one socket per kiosk."""
    limit = raise_open_file_limit()
    if limit < kiosks + SPARE_FDS:
        raise RuntimeError(
            f"{kiosks} kiosks need {kiosks + SPARE_FDS} open files, but this process may open "
            f"only {limit} (the hard limit, `ulimit -Hn`): raise it, e.g. in "
            f"/etc/security/limits.conf, or run fewer kiosks"
        )


@dataclass
class Burst:
    latencies: list[float]  # seconds, one per kiosk's POST
    began: float  # time.monotonic() at the first send
    ended: float  # time.monotonic() at the last answer


class KioskConnection:
    """One kiosk's kept-alive connection and its device token."""

    def __init__(self, url: str, token: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def _request(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode("latin-1") + body

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing() or self.reader.at_eof():
            # Not open yet, or the store closed it idle (after 5 s): a kiosk reconnects.
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise RuntimeError("the central store closed a kiosk's connection without an answer")
        status = int(status_line.split()[1])
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"an answer (HTTP {status}) came without a Content-Length")
        return status, await self.reader.readexactly(length)

    async def warm(self) -> None:
        """Open a fresh connection with the request a kiosk makes first. Always a new one: a
        connection kept from the last burst may be closing just now (the store closes those
        idle for 5 s), and that race is a reconnect to retry, not what is measured."""
        await self.close()
        status, body = await self._exchange(self._request("GET", "/api/v1/config"))
        if status != 200:
            raise RuntimeError(f"GET /api/v1/config: HTTP {status}: {body[:200]!r}")

    def post_request(self, body: bytes) -> bytes:
        return self._request("POST", "/api/v1/events", body)

    async def post(self, request: bytes) -> tuple[float, int, bytes]:
        began = time.perf_counter()
        status, answer = await self._exchange(request)
        return time.perf_counter() - began, status, answer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def _check_answer(status: int, answer: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"a kiosk's batch got HTTP {status}: {answer[:200]!r}")
    if any(r["status"] != "stored" for r in json.loads(answer)["results"]):
        raise RuntimeError("an event of the burst was not stored")


def bodies(events: list[dict], count: int) -> list[bytes]:
    """``count`` batches of ``BATCH`` events, as request bodies."""
    return [json.dumps({"events": events[i * BATCH:(i + 1) * BATCH]}).encode()
            for i in range(count)]


async def alone(url: str, token: str, batch_bodies: list[bytes]) -> list[float]:
    """One kiosk's batches, one after another, with nobody else posting: the baseline."""
    kiosk = KioskConnection(url, token)
    try:
        await kiosk.warm()
        latencies = []
        for body in batch_bodies:
            elapsed, status, answer = await kiosk.post(kiosk.post_request(body))
            _check_answer(status, answer)
            latencies.append(elapsed)
        return latencies
    finally:
        await kiosk.close()


async def bursts(url: str, tokens: list[str], rounds: list[list[bytes]]) -> list[Burst]:
    """rounds[r][k] is kiosk k's body in round r; all kiosks post each round together."""
    kiosks = [KioskConnection(url, token) for token in tokens]
    try:
        results = []
        for round_bodies in rounds:
            requests = [kiosk.post_request(body)
                        for kiosk, body in zip(kiosks, round_bodies, strict=True)]
            # Every connection opened (or re-opened: the store closes those idle for 5 s) just
            # before the burst, so the burst measures the store, not a kiosk's reconnect.
            await asyncio.gather(*(kiosk.warm() for kiosk in kiosks))
            began = time.monotonic()
            answers = await asyncio.gather(
                *(kiosk.post(request) for kiosk, request in zip(kiosks, requests, strict=True))
            )
            ended = time.monotonic()
            for _elapsed, status, answer in answers:
                _check_answer(status, answer)
            results.append(Burst([a[0] for a in answers], began, ended))
        return results
    finally:
        await asyncio.gather(*(kiosk.close() for kiosk in kiosks))
