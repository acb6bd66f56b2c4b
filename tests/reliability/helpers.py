"""What the reliability scenarios share: polling, the central store as a real process, and
counting a process's open files, threads and memory."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from sync.central import auth
from sync.central.storage import CentralStore, connect_to

ROOT = Path(__file__).resolve().parents[2]
URL_PATTERN = re.compile(r"http://127\.0\.0\.1:(\d+)")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for process {pid}")


def snapshot() -> tuple[int, int]:
    """(open file descriptors, live threads) of this process."""
    return open_fds(), threading.active_count()


class CentralProcess:
    """``python main.py central --data DIR --port P`` as a child process, killable for real.

    The one way tests run the central store as a separate process (the real command, signals,
    a crash); a server in the test's own process is ``tests.support.central_server``'s.
    With ``database_url`` the store is that PostgreSQL database (``--database-url``), and
    ``workers`` above 1 runs the supervisor and its forked workers (``--workers N``).

    It prints its bound port on its first line of stderr (before uvicorn starts); ``start()``
    then polls ``/healthz`` until it answers. Everything it logs is kept in ``log``.
    """

    def __init__(self, data_dir: Path, port: int = 0, log_level: str = "info",
                 extra_args: tuple[str, ...] = (), database_url: str | None = None,
                 workers: int = 1):
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.workers = workers
        self.port = port
        self.log_level = log_level
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.log: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, timeout: float = 30.0) -> CentralProcess:
        database = ["--database-url", self.database_url] if self.database_url else []
        workers = ["--workers", str(self.workers)] if self.workers != 1 else []
        self.process = subprocess.Popen(
            [sys.executable, "main.py", "central", "--data", str(self.data_dir), *database,
             *workers, "--port", str(self.port), "--log-level", self.log_level,
             *self.extra_args],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        first = self.process.stderr.readline()
        found = URL_PATTERN.search(first)
        if not found:
            rest = self.process.stderr.read() if self.process.poll() is not None else ""
            raise RuntimeError(f"central did not say its port: {first!r} {rest[-2000:]}")
        self.port = int(found.group(1))
        self.log.append(first)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"central exited while starting: {''.join(self.log)[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"central did not answer within {timeout} s")
            time.sleep(0.01)

    def _read_log(self) -> None:
        for line in self.process.stderr:
            self.log.append(line)

    def worker_pids(self) -> list[int]:
        """The supervisor's forked workers (``--workers N``); empty for a single process."""
        if self.workers == 1 or self.process is None or self.process.poll() is not None:
            return []
        pid = self.process.pid
        try:
            listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            return []
        return [int(child) for child in listed]

    def wait_for_workers(self, timeout: float = 30.0) -> list[int]:
        """The workers' pids once ``workers`` of them run (the supervisor replaces killed
        ones) and the store answers again."""
        deadline = time.monotonic() + timeout
        while len(pids := self.worker_pids()) < self.workers or not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pids)} of {self.workers} workers after {timeout} s: "
                                   f"{''.join(self.log)[-2000:]}")
            time.sleep(0.02)
        return pids

    def answers(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """SIGKILL the whole tree (the supervisor and its workers, if any): no shutdown
        handler, no flush, no goodbye. Workers first: an orphaned worker would go on serving
        the inherited socket."""
        workers = self.worker_pids()
        os.kill(self.process.pid, signal.SIGKILL)
        for pid in workers:
            _kill_quietly(pid)
        self.process.wait(timeout=10)
        for pid in workers:
            _wait_gone(pid)
        self._reader.join(timeout=5)

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker, leaving the supervisor to replace them; the pids killed."""
        workers = self.worker_pids()
        if not workers:
            raise RuntimeError("no workers to kill: the store runs as a single process")
        for pid in workers:
            _kill_quietly(pid)
        for pid in workers:
            _wait_gone(pid)
        return workers

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)

    def enrol(self, site: str = "Test Clinic", name: str = "Desk 1") -> tuple[str, str]:
        """(device id, token): what `device add` does, on the same store, without a new
        process."""
        return enrol(self.data_dir, site, name, database_url=self.database_url)

    def rows(self, sql: str, params: tuple | list = ()) -> list[dict]:
        return central_rows(self.data_dir, sql, params, database_url=self.database_url)


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it died meanwhile
        os.kill(pid, signal.SIGKILL)


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Until ``pid`` (a worker: the supervisor's child, not ours to reap) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in ("Z", "X") or time.monotonic() > deadline:
            return  # dead, waiting for its parent to reap it
        time.sleep(0.01)


def enrol(data_dir: Path, site: str = "Test Clinic", name: str = "Desk 1",
          database_url: str | None = None) -> tuple[str, str]:
    store = CentralStore(Path(data_dir), database_url=database_url, pool_size=2)
    try:
        with store.write() as db:
            device, token = auth.add_device(db, site, name)
    finally:
        store.close()
    return device.id, token


def central_rows(data_dir: Path, sql: str, params: tuple | list = (),
                 database_url: str | None = None) -> list[dict]:
    """What the central store has committed, read through a connection of our own (the
    SQLite file in ``data_dir``, or the PostgreSQL database at ``database_url``)."""
    db = connect_to(Path(data_dir), database_url)
    try:
        return list(db.query(sql, params))
    finally:
        db.close()
