"""Connection hygiene for the central store: read deadlines and a cap on open connections.

uvicorn (0.54, h11) closes a keep-alive connection that sends nothing for a few seconds, but
a client that sends a byte now and then is never cut off, whether it is still sending its
request's headers or its body, and it accepts every connection it is offered until the
process runs out of file descriptors. ``guarded_protocol(limits)`` is uvicorn's own h11
protocol with three additions:

- the request line and headers must arrive within ``header_timeout_s`` of the connection
  opening, or of the first byte of the next request on a kept-alive connection (else a 408
  with a sentence, and the connection closes);
- a request's body must keep coming: at least ``body_min_bytes`` (or all the rest of it) in
  each ``body_timeout_s`` after its headers (else the connection closes; the route sees the
  client gone and answers nobody). A minimum rate, not a total: a kiosk on a slow link
  still gets its 117 KB batch through, as long as it is not slower than 1 KiB per 10 s;
- at most ``max_connections`` connections are served at once; one more is answered at once
  with a 503, ``Retry-After`` and a JSON sentence, then closed when the client closes its end
  (or after ``REFUSAL_LINGER_S``; at once when ``max_refusals_open`` are already waiting).
  Kiosks honour Retry-After. The cap leaves ``RESERVED_FDS`` of the process's file
  descriptors free, its soft limit raised to the hard one at startup.
"""

from __future__ import annotations

import asyncio
import json
import resource
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0
# A body must bring at least BODY_MIN_BYTES in every BODY_TIMEOUT_S: ~100 bytes a second, far
# below a poor mobile link, while a client that sends a byte now and then is cut off.
BODY_TIMEOUT_S = 10.0
BODY_MIN_BYTES = 1024
MAX_CONNECTIONS = 1000
OVERLOAD_RETRY_AFTER_S = 5
# File descriptors kept for the logs, the listening socket, the wheels' own files and the
# write path's connection whatever the load ...
BASE_RESERVED_FDS = 64
# ... and for the worker threads the sync routes run on (anyio's default thread limiter, 40
# tokens; a test checks it), each with its own SQLite connection: the database, its -wal and
# its -shm file ...
WORKER_THREADS = 40
FDS_PER_WORKER_THREAD = 3
# ... and for refused connections still open: each stays until the client, having read the
# 503, closes its end (closing first with its request unread would reset the connection and
# could lose the answer), at most this many; beyond, a refusal is dropped at once.
MAX_REFUSALS_OPEN = 64
RESERVED_FDS = BASE_RESERVED_FDS + WORKER_THREADS * FDS_PER_WORKER_THREAD + MAX_REFUSALS_OPEN
# A refused client that does not close its end gets this long to read our answer.
REFUSAL_LINGER_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S
    body_min_bytes: int = BODY_MIN_BYTES
    max_connections: int = MAX_CONNECTIONS
    overload_retry_after_s: int = OVERLOAD_RETRY_AFTER_S
    max_refusals_open: int = MAX_REFUSALS_OPEN


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (a plain user may), and
    return the soft limit now in force: the usual soft limit, 1024, would cap connections
    far below what the machine allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an unlimited hard limit the kernel will not grant
            return soft
        soft = hard
    return soft


def connection_cap(wanted: int = MAX_CONNECTIONS) -> int:
    """``wanted``, lowered so that open connections can never use up the process's file
    descriptors (each connection holds one); raises the soft limit first (at startup)."""
    soft = raise_open_file_limit()
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_FDS))


def _raw_response(status: str, sentence: str, extra_headers: tuple[str, ...] = ()) -> bytes:
    """A whole HTTP/1.1 response written before (or instead of) reading a request: h11 will
    not let a server answer a request it has not received."""
    body = json.dumps({"detail": sentence}).encode()
    head = [
        f"HTTP/1.1 {status}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *extra_headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with read deadlines and a connection cap (module docstring)."""

    limits: ConnectionLimits = ConnectionLimits()
    # Refused connections still open, per server (each server has its own class).
    refusals_open: set[GuardedH11Protocol] = set()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._bytes_this_window = 0  # received since the body's current window began
        self._timed_cycle = None
        self._refused = False

    # --- the cap -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse_overloaded()
            return
        self._arm_header_deadline()

    def _refuse_overloaded(self) -> None:
        self._refused = True
        # Not counted as served: what is served stays within the cap.
        self.connections.discard(self)
        wait = self.limits.overload_retry_after_s
        self.logger.warning(
            "Refused a connection: %d connections are open (the cap); answered 503.",
            self.limits.max_connections,
        )
        self.transport.write(_raw_response(
            "503 Service Unavailable",
            f"The central store is serving as many connections as it can "
            f"({self.limits.max_connections}); try again in {wait} s.",
            (f"retry-after: {wait}",),
        ))
        if len(self.refusals_open) >= self.limits.max_refusals_open:
            # The descriptors kept for refusals are all in use: drop this one at once.
            self.transport.abort()
            return
        # Half-close, read what the client sends, then close: closing with its request unread
        # would reset the connection and could lose our answer on the way.
        self.refusals_open.add(self)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(REFUSAL_LINGER_S, self.transport.close)

    # --- the deadlines -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped: the client closes once it has read the 503 (then so do we)
        if self._header_deadline is None and self._awaiting_request():
            self._arm_header_deadline()  # the first byte of a kept-alive connection's next request
        self._bytes_this_window += len(data)
        super().data_received(data)
        self._follow_request()
        self._keep_a_timer_running()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_request()  # a pipelined request may have started just now
        self._keep_a_timer_running()

    def _keep_a_timer_running(self) -> None:
        """Between requests some timer must be running, or the connection is held forever.

        The rest of a body answered early (a 401 before the body was read) can arrive after
        the response: uvicorn then cancels its keep-alive timer on those bytes and never
        starts it again, and the body deadline has just been cancelled as done."""
        if (
            self._header_deadline is None
            and self.timeout_keep_alive_task is None
            and not self.transport.is_closing()
            and self._awaiting_request()
        ):
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self.refusals_open.discard(self)
        self._cancel_deadlines()
        super().connection_lost(exc)

    def _body_done(self) -> bool:
        cycle = self.cycle
        if cycle is None or not cycle.more_body:
            return True
        # Answered before its body was read (a 401, a 413): h11 moves on to the next request
        # once the rest of the body is in, without telling the request's cycle.
        return cycle.response_complete and self.conn.their_state is not h11.SEND_BODY

    def _awaiting_request(self) -> bool:
        return self.cycle is None or (self.cycle.response_complete and self._body_done())

    def _follow_request(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle is not self._timed_cycle:
            # A new request's headers are in.
            self._timed_cycle = cycle
            self._cancel_deadlines()
            if not self._body_done():
                self._start_body_window()
        elif self._body_deadline is not None and self._body_done():
            self._cancel(self._body_deadline)
            self._body_deadline = None

    def _start_body_window(self) -> None:
        self._bytes_this_window = 0
        self._body_deadline = self.loop.call_later(
            self.limits.body_timeout_s, self._body_too_slow
        )

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(
            self.limits.header_timeout_s, self._headers_too_slow
        )

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or not self._awaiting_request():
            return
        self.logger.warning(
            "Closed a connection whose request headers took more than %g s.",
            self.limits.header_timeout_s,
        )
        self.transport.write(_raw_response(
            "408 Request Timeout",
            f"The request's headers did not arrive within {self.limits.header_timeout_s:g} s; "
            "the connection is closed.",
        ))
        self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing() or self._body_done():
            return
        if self._bytes_this_window >= self.limits.body_min_bytes:
            self._start_body_window()  # slow but coming: another window
            return
        self.logger.warning(
            "Closed a connection whose request body brought less than %d bytes in %g s.",
            self.limits.body_min_bytes, self.limits.body_timeout_s,
        )
        self.transport.close()

    def _cancel_deadlines(self) -> None:
        self._cancel(self._header_deadline)
        self._cancel(self._body_deadline)
        self._header_deadline = self._body_deadline = None

    @staticmethod
    def _cancel(handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's ``http`` setting, with these limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"limits": limits, "refusals_open": set()})
