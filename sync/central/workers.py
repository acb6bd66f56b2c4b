"""``central --workers N``: N server processes on one listening socket, kept running.

The parent binds the socket and migrates the schema, then forks the workers; each builds its
own app (its own pool of PostgreSQL connections, its own threads) and serves the inherited
socket, and the kernel hands each new connection to whichever worker accepts first. Forking
is why the parent must hold no threads and no pools when it does so: a fork copies only the
calling thread, so a lock another thread held would stay locked in the child for ever.

The parent only supervises: a worker that dies when nobody asked it to (a crash, an OOM kill,
``kill -9``) is replaced at once, with one line in the log; SIGTERM or SIGINT to the parent is
passed on to every worker as SIGTERM (uvicorn's graceful stop) and the parent exits when they
have. Under systemd (``Type=notify``, ``NotifyAccess=main``) the parent speaks for its workers:
READY=1 once they are started, WATCHDOG=1 while it supervises.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

# How often the parent looks for a worker that has exited (and pings systemd's watchdog).
POLL_S = 0.2
# A worker that dies this soon after starting is restarted only after this pause, so a
# worker that cannot start (its database gone) does not fork hundreds of times a second.
QUICK_DEATH_S = 1.0
# Workers still running this long after SIGTERM are killed (uvicorn's own graceful stop
# gives connections 3 s).
STOP_GRACE_S = 15.0


class ThreadsBeforeFork(RuntimeError):
    """The parent would fork while other threads run; their locks would stay held in a child."""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"killed by {name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    """Forks ``count`` workers, each running ``serve()``; replaces those that die; stops all
    on SIGTERM/SIGINT. ``serve`` runs in the child and returns when the worker has stopped."""

    def __init__(self, count: int, serve: Callable[[], None], service=None):
        self.count = count
        self.serve = serve
        self.service = service
        self.children: dict[int, float] = {}  # pid -> when it was started
        self.stop_requests = 0
        self.signalled: dict[int, int] = {}  # pid -> stop requests passed on to it
        self.restarts = 0
        self.last_ping = 0.0

    def _fork(self) -> int:
        if threading.active_count() > 1:
            raise ThreadsBeforeFork(
                f"{threading.active_count() - 1} other thread(s) are running; workers must be "
                "forked from a process with one thread")
        sys.stderr.flush()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the worker: it never returns into the parent's code
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                self.serve()
                code = 0
            except KeyboardInterrupt:
                code = 0
            except BaseException:  # noqa: BLE001 - a worker's end, logged for the operator
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = time.monotonic()
        return pid

    def _on_signal(self, signum, frame) -> None:
        # Only counted here; the loop passes it on, so a worker forked at that very moment
        # is not missed.
        self.stop_requests += 1

    @property
    def stopping(self) -> bool:
        return self.stop_requests > 0

    def _pass_on_stop(self) -> None:
        # The first request asks each worker to stop gracefully (SIGTERM); a second (Ctrl+C
        # again) is passed on as SIGINT, which makes uvicorn stop at once.
        for pid in list(self.children):
            sent = self.signalled.get(pid, 0)
            wanted = min(self.stop_requests, 2)
            if sent >= wanted:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if wanted == 1 else signal.SIGINT)
            self.signalled[pid] = wanted

    def run(self) -> int:
        """Supervise until asked to stop and every worker has exited; 0."""
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self.count):
                self._fork()
            if self.service is not None:
                self.service.ready()
            self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.service is not None:
                self.service.stopping()
        return 0

    def _supervise(self) -> None:
        stop_deadline = None
        while self.children:
            if self.stopping:
                self._pass_on_stop()
                if stop_deadline is None:
                    stop_deadline = time.monotonic() + STOP_GRACE_S
                elif time.monotonic() > stop_deadline:
                    self._kill_all()
                    stop_deadline = float("inf")
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                self._ping_if_due()
                time.sleep(POLL_S)
                continue
            started = self.children.pop(pid, None)
            self.signalled.pop(pid, None)
            if started is None or self.stopping:
                continue
            if time.monotonic() - started < QUICK_DEATH_S:
                time.sleep(QUICK_DEATH_S)
                if self.stopping:
                    continue
            new_pid = self._fork()
            self.restarts += 1
            _log(f"Worker {pid} stopped unexpectedly ({describe_exit(status)}); "
                 f"started worker {new_pid} in its place.")

    def _ping_if_due(self) -> None:
        interval = self.service.watchdog_interval_s if self.service is not None else None
        if interval is None or self.stopping:
            return
        now = time.monotonic()
        if now - self.last_ping >= interval:
            self.service.ping()
            self.last_ping = now

    def _kill_all(self) -> None:
        for pid in list(self.children):
            _log(f"Worker {pid} did not stop within {STOP_GRACE_S:.0f} s; killing it.")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
