"""Throwaway PostgreSQL clusters, and a real streaming replica, for the central store's tests on
its PostgreSQL engine (a ``postgresql://`` URL).

The fixtures come from ``tests/conftest.py``; a test asks for them by name and imports nothing:
``postgres_cluster`` (one cluster for the whole session), ``postgres_url`` (a fresh database per
test, dropped after it), ``postgres_replica`` (a hot standby of that cluster) and
``replica_database`` (a fresh database on the primary and its URL on the replica). Do not import
them into a test module or another conftest: a second definition of a session fixture is a
second cluster. A test that must break a cluster of its own uses ``PostgresCluster`` directly
(``with PostgresCluster() as cluster: ...``).

Why it is built this way:

- The server runs from Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``,
  the highest version found), never a service: no service manager in a container, and a test
  must own what it stops and kills. A missing package fails the test with the package to
  install; it never skips, since the test command installs it.
- ``initdb`` and the server refuse to run as root, so as root every program runs as the
  ``postgres`` user (the same as ``runuser -u postgres --``, through ``subprocess``'s ``user=``:
  the process the test holds is the server itself, not a ``runuser`` waiting on it), in a
  temporary folder that user owns. ``tmp_path`` will not do: pytest makes it root-only.
- ``--no-locale``: C collation, since the store compares RFC 3339 timestamps as text.
- Loopback only, on a free port (taken by someone else between the probe and the bind: the
  first start tries another), the unix socket inside the folder: runs never meet.
- ``synchronous_commit`` stays on: durability is what the tests check. ``fsync`` and
  ``full_page_writes`` are off, which only matters if the machine itself crashes; a test about
  the disk asks for ``durable=True``, which keeps PostgreSQL's defaults.
- ``max_connections=300``: the 1,000-kiosk tests' workers each hold pooled connections.
- The server gets an immediate shutdown if the test process dies without stopping it (killed by
  a timeout): a cluster left running would hold 300 connections' memory until the next reboot.
- SQL goes through psycopg (autocommit), never ``psql``: ``CREATE DATABASE`` cannot run in a
  transaction, and no shell quoting is involved.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

POSTGRES_ROOT = Path("/usr/lib/postgresql")
PROGRAMS = ("initdb", "postgres", "pg_basebackup")
SERVER_USER = "postgres"
INSTALL_HINT = "install Debian's `postgresql` package (apt-get install postgresql)"
START_TIMEOUT = 60.0  # seconds: a hot standby replays WAL before it answers
PORT_ATTEMPTS = 5
LOG_TAIL_LINES = 30
PORT_TAKEN = "Address already in use"
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class PostgresNotInstalled(RuntimeError):
    """PostgreSQL's server programs (or the user that runs them) are missing."""


class PostgresStartError(RuntimeError):
    """A cluster or replica did not start; the message ends with the tail of its log."""

    def __init__(self, message: str, log_tail: str):
        super().__init__(f"{message}\n--- last lines of the log ---\n{log_tail}")
        self.log_tail = log_tail


def find_binaries(root: Path | None = None) -> Path:
    """The ``bin`` folder of the highest PostgreSQL version installed under ``root``
    (``POSTGRES_ROOT``)."""
    root = POSTGRES_ROOT if root is None else root
    found = []
    for initdb in root.glob("*/bin/initdb"):
        version = initdb.parent.parent.name
        if re.fullmatch(r"\d+(\.\d+)*", version):
            found.append((tuple(int(part) for part in version.split(".")), initdb.parent))
    if not found:
        raise PostgresNotInstalled(
            f"PostgreSQL's server programs are not installed (no {root}/*/bin/initdb): "
            f"{INSTALL_HINT}."
        )
    bin_dir = max(found)[1]
    missing = [name for name in PROGRAMS if not (bin_dir / name).is_file()]
    if missing:
        raise PostgresNotInstalled(
            f"{bin_dir} lacks {', '.join(missing)}: {INSTALL_HINT} (the whole server)."
        )
    return bin_dir


def free_port() -> int:
    """A port nobody listens on now on 127.0.0.1 (the system's pick for a port-0 bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique_database_name(label: str = "test") -> str:
    """A database name of at most 63 bytes that says which test made it, and never repeats."""
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40] or "test"
    return f"t_{slug}_{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class _ServerUser:
    """Who runs PostgreSQL's programs: ``postgres`` when the tests run as root, else ourselves
    (``uid`` None)."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_this_process(cls) -> _ServerUser:
        if os.geteuid() != 0:
            return cls()
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresNotInstalled(
                f"the tests run as root, and PostgreSQL refuses root, but there is no "
                f"`{SERVER_USER}` user to run it as: {INSTALL_HINT}, which creates that user."
            ) from None
        return cls(entry.pw_uid, entry.pw_gid)

    def process_options(self) -> dict:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def take(self, path: Path) -> None:
        """Give ``path`` to this user (root made it)."""
        if self.uid is not None:
            os.chown(path, self.uid, self.gid)


def _parent_death_guard() -> list[str]:
    """``setpriv --pdeathsig QUIT``: an immediate shutdown of the server if the process that
    started it dies first. Linux sends it when the *thread* that started the server ends, so a
    start from any other thread than the main one goes without."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "QUIT", "--"]


class _Server:
    """What a primary and a replica share: a folder of their own, the server process on a free
    loopback port, its log, SQL over psycopg. Subclasses make the data directory."""

    role = "server"

    def __init__(
        self,
        parent_dir: Path | str | None = None,
        *,
        port: int | None = None,
        durable: bool = False,
        settings: Mapping[str, str] | None = None,
        folder: Path | str | None = None,
    ):
        self.bin_dir = find_binaries()
        self._user = _ServerUser.for_this_process()
        self.durable = durable
        self.settings = dict(settings or {})
        if folder is not None:
            # A server kept (stopped) by an earlier run, started again with its data as it
            # was: a benchmark's filled store (figure 13). Give it the port it had.
            self.folder = Path(folder)
            if not (self.folder / "data" / "PG_VERSION").exists():
                raise ValueError(f"{self.folder} is not the folder of a kept PostgreSQL server "
                                 "(it has no data/PG_VERSION)")
        else:
            self.folder = Path(tempfile.mkdtemp(prefix=f"kiosk-pg-{self.role}-", dir=parent_dir))
            self._user.take(self.folder)
        self.data_dir = self.folder / "data"
        self.log_path = self.folder / "server.log"
        self.port = port
        # A port of our choosing may be taken by someone else before the server binds it: the
        # first start then tries another. A restart keeps its port (URLs handed out stay true).
        self._may_change_port = port is None
        self._process: subprocess.Popen | None = None

    # --- what subclasses provide ---

    def _make_data_dir(self) -> None:
        raise NotImplementedError

    # --- the server ---

    def server_settings(self) -> dict[str, str]:
        """The ``-c`` settings the server starts with."""
        settings = {
            "listen_addresses": "127.0.0.1",
            "max_connections": "300",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
        }
        if not self.durable:
            settings.update(fsync="off", full_page_writes="off")
        settings.update(self.settings)
        return settings

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def start(self) -> None:
        """Start the server (making its data directory the first time); returns once it
        accepts connections. Raises ``PostgresStartError`` with the log's tail otherwise."""
        if self.running:
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self._make_data_dir()
        attempts = PORT_ATTEMPTS if self._may_change_port else 1
        for attempt in range(1, attempts + 1):
            if self.port is None:
                self.port = free_port()
            try:
                self._launch()
            except PostgresStartError as error:
                if attempt == attempts or PORT_TAKEN not in error.log_tail:
                    raise
                self.port = None
            else:
                self._may_change_port = False
                return

    def _launch(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            *_parent_death_guard(),
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self.folder),
        ]
        for name, value in self.server_settings().items():
            command += ["-c", f"{name}={value}"]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, cwd=self.folder, env=self._environment(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                **self._user.process_options(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None:
                code, self._process = self._process.returncode, None
                raise PostgresStartError(
                    f"PostgreSQL ({self.role}, port {self.port}, {self.folder}) exited with "
                    f"status {code} while starting", self._log_tail(offset))
            if time.monotonic() > deadline:
                self.stop("immediate")
                raise PostgresStartError(
                    f"PostgreSQL ({self.role}, port {self.port}, {self.folder}) did not accept "
                    f"connections within {START_TIMEOUT:.0f} s", self._log_tail(offset))
            time.sleep(0.02)

    def _answers(self) -> bool:
        """True once this server accepts connections. Asked on its unix socket, inside our
        folder: over TCP, whoever else holds the port could answer, or hang."""
        if self._process.poll() is not None:
            return False
        try:
            psycopg.connect(host=str(self.folder), port=self.port, user=SERVER_USER,
                            dbname="postgres", connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected, a clean shutdown) or ``immediate``
        (no shutdown checkpoint: the next start recovers from the WAL, as after a crash)."""
        if mode not in STOP_SIGNALS:
            raise ValueError(f"stop mode {mode!r}: one of {', '.join(STOP_SIGNALS)}")
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(STOP_SIGNALS[mode])
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # its children notice the postmaster is gone and exit
            process.wait()

    def close(self) -> None:
        """Stop the server and remove its folder (data and log)."""
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- connecting ---

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        """A new autocommit connection (close it, or use it in a ``with``)."""
        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10)

    def query(self, statement: str | sql.Composable, params=None, dbname: str = "postgres"):
        """Run one statement on a connection of its own; its rows (``[]`` when it has none)."""
        with self.connect(dbname) as db:
            cursor = db.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    # --- helpers ---

    def _environment(self) -> dict[str, str]:
        """Ours without libpq's ``PG*`` variables (a PGHOST or PGOPTIONS of the machine must
        not reach the server or pg_basebackup), in the C locale (messages the start checks)."""
        kept = {
            name: value for name, value in os.environ.items()
            if not name.startswith(("PG", "LC_")) and name not in ("LANG", "LANGUAGE")
        }
        return {**kept, "HOME": str(self.folder), "LC_ALL": "C", "LANG": "C"}

    def _run(self, program: str, *args: str) -> None:
        """One of PostgreSQL's programs, as the server's user, to its end."""
        result = subprocess.run(
            [str(self.bin_dir / program), *args], cwd=self.folder, env=self._environment(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=300, check=False, **self._user.process_options(),
        )
        if result.returncode != 0:
            tail = "\n".join(result.stdout.splitlines()[-LOG_TAIL_LINES:])
            raise PostgresStartError(
                f"{program} exited with status {result.returncode} ({self.folder})", tail)

    def _log_tail(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log was written)"
        return "\n".join(text.splitlines()[-LOG_TAIL_LINES:]) or "(the log is empty)"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {state} on port {self.port}, {self.folder}>"


class PostgresCluster(_Server):
    """A throwaway cluster: ``initdb`` in a temporary folder on the first ``start()``.

    ``durable=True`` keeps ``fsync`` and ``full_page_writes`` on; ``settings`` adds or
    overrides server settings; ``port`` fixes the port (no retry if it is taken);
    ``parent_dir`` is where the folder goes (default: the system's temp folder; the ``postgres``
    user must be able to reach it). ``close()`` (or leaving the ``with``) removes it all.
    """

    role = "primary"

    def _make_data_dir(self) -> None:
        options = ["-D", str(self.data_dir), "-A", "trust", "-U", SERVER_USER,
                   "--no-locale", "-E", "UTF8"]
        if not self.durable:
            options.append("--no-sync")
        self._run("initdb", *options)

    def create_database(self, name: str) -> str:
        """A new, empty database (a copy of ``template0``: UTF-8, C collation); its URL."""
        self.query(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database with whoever is still connected to it (a pool left open, a worker)
        disconnected first; ``WITH (FORCE)`` also covers one that reconnects in between."""
        with self.connect() as db:
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class PostgresReplica(_Server):
    """A real streaming replica (read-only hot standby) of a running ``PostgresCluster``.

    The first ``start()`` copies the primary with ``pg_basebackup -R -X stream``; it streams
    from the primary's port from then on, reconnecting within a fraction of a second when the
    primary restarts. It keeps the primary's durability and settings (a hot standby needs
    ``max_connections`` and the like at least as high as its primary's).
    """

    role = "replica"

    def __init__(self, primary: PostgresCluster, parent_dir: Path | str | None = None, *,
                 port: int | None = None, folder: Path | str | None = None):
        super().__init__(parent_dir, port=port, durable=primary.durable,
                         settings=primary.settings, folder=folder)
        self.primary = primary

    def server_settings(self) -> dict[str, str]:
        # How soon it asks the primary again after losing it (5 s by default).
        return {"wal_retrieve_retry_interval": "100ms", **super().server_settings()}

    def _make_data_dir(self) -> None:
        if not self.primary.running:
            raise RuntimeError(f"the primary of {self!r} is not running: start it first")
        options = ["-h", "127.0.0.1", "-p", str(self.primary.port), "-U", SERVER_USER,
                   "-D", str(self.data_dir), "-R", "-X", "stream", "--checkpoint=fast"]
        if not self.durable:
            options.append("--no-sync")
        self._run("pg_basebackup", *options)

    def wait_caught_up(self, timeout: float = 10.0) -> None:
        """Return once this replica has replayed everything the primary had written when
        called; ``TimeoutError`` (saying whether replay is paused) after ``timeout`` s."""
        target = self.primary.query("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        with self.connect() as db:
            while True:
                caught_up, replayed, state = db.execute(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false),"
                    " pg_last_wal_replay_lsn()::text, pg_get_wal_replay_pause_state()",
                    [target],
                ).fetchone()
                if caught_up:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the replica had replayed the WAL up to {replayed}, not {target}, "
                        f"after {timeout} s (replay: {state})"
                    )
                time.sleep(0.01)

    def pause_replay(self) -> None:
        """Replay nothing more until ``resume_replay()``: rows committed on the primary from
        now on are not visible here (the WAL still arrives). This is real replication lag."""
        self.query("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.query("SELECT pg_wal_replay_resume()")

    @contextmanager
    def replay_paused(self) -> Iterator[PostgresReplica]:
        """``pause_replay()`` for a ``with`` block, resumed even if the block fails."""
        self.pause_replay()
        try:
            yield self
        finally:
            self.resume_replay()


@dataclass(frozen=True)
class ReplicaDatabase:
    """A database made on the primary, and already visible on the replica."""

    name: str
    primary_url: str
    replica_url: str
    replica: PostgresReplica


def _keep_log(server: _Server, tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """Copy the server's log where pytest keeps the last runs' temp folders; the cluster's own
    folder goes with it."""
    if server.log_path.exists():
        shutil.copyfile(server.log_path, tmp_path_factory.getbasetemp() / name)


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory) -> Iterator[PostgresCluster]:
    """The session's cluster, started by the first test that needs it, removed at the end (its
    log is kept as ``postgres-primary.log`` in pytest's temp folder)."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        _keep_log(cluster, tmp_path_factory, "postgres-primary.log")
        cluster.close()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster, request) -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT/NAME`` of a database made for this test alone,
    dropped after it (with any connection the test left open)."""
    name = unique_database_name(request.node.name)
    url = postgres_cluster.create_database(name)
    try:
        yield url
    finally:
        postgres_cluster.drop_database(name)


@pytest.fixture(scope="session")
def postgres_replica(postgres_cluster: PostgresCluster, tmp_path_factory
                     ) -> Iterator[PostgresReplica]:
    """A streaming replica of the session's cluster, for the whole session."""
    replica = PostgresReplica(postgres_cluster)
    try:
        replica.start()
        yield replica
    finally:
        _keep_log(replica, tmp_path_factory, "postgres-replica.log")
        replica.close()


@pytest.fixture
def replica_database(postgres_cluster: PostgresCluster, postgres_replica: PostgresReplica,
                     request) -> Iterator[ReplicaDatabase]:
    """A database made for this test on the primary, handed over once the replica has it;
    afterwards replay is resumed (a test that paused it and failed) and the database dropped."""
    name = unique_database_name(request.node.name)
    primary_url = postgres_cluster.create_database(name)
    try:
        postgres_replica.wait_caught_up()
        yield ReplicaDatabase(name, primary_url, postgres_replica.url(name), postgres_replica)
    finally:
        postgres_replica.resume_replay()
        postgres_cluster.drop_database(name)
