"""The commands on a PostgreSQL store: ``--database-url`` (or ``DATABASE_URL``) where ``--data``
is taken, their mistakes as sentences, and ``central --workers N`` as a real process tree.

Run the way an operator runs them (``python main.py ...``, or ``cli.main`` in this process where
a new interpreter adds nothing), against a real PostgreSQL cluster (``postgres_url``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from sync.central import auth, cli
from sync.central.storage import CentralStore
from tests.reliability.helpers import CentralProcess
from tests.support.wire_events import WireEvents

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict | None = None, stdin: str | None = None
        ) -> subprocess.CompletedProcess:
    # DATABASE_URL from the test runner's own environment must not choose the store.
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "READ_DATABASE_URL")}
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**base, **(env or {})}, input=stdin)


def run_in_process(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _no_database_url_from_outside(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("READ_DATABASE_URL", raising=False)


@pytest.fixture
def store_args(tmp_path, central_database_url) -> list[str]:
    """How a command names the store under test: its data directory or its database."""
    if central_database_url is None:
        return ["--data", str(tmp_path)]
    return ["--database-url", central_database_url]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_admin_commands_work_on_either_engine(store_args, capsys):
    code, out, err = run_in_process(capsys, "device", "add", *store_args,
                                    "--site", "Main St", "--name", "Desk 1")
    assert code == 0, err
    added = json.loads(out)
    listed = json.loads(run_in_process(capsys, "device", "list", *store_args)[1])
    assert [(d["id"], d["site"], d["name"]) for d in listed] == [
        (added["device_id"], "Main St", "Desk 1")]

    code, out, err = run_in_process(capsys, "site", "set", *store_args, "--site", "Main St",
                                    "--target-wait-min", "25")
    assert code == 0, err
    sites = json.loads(run_in_process(capsys, "site", "list", *store_args)[1])
    assert [(s["name"], s["target_wait_min"]) for s in sites] == [("Main St", 25)]

    token = run("token", "add", *store_args, "--name", "BI tool")
    assert token.returncode == 0, token.stderr
    assert json.loads(token.stdout)["token"].startswith("rep_")

    user = run("user", "add", *store_args, "--name", "alice", "--password-stdin",
               stdin="correct horse battery\n")
    assert user.returncode == 0, user.stderr
    users = json.loads(run_in_process(capsys, "user", "list", *store_args)[1])
    assert [u["name"] for u in users] == ["alice"]


def test_database_url_from_the_environment(postgres_url, tmp_path):
    added = run("device", "add", "--site", "S", "--name", "From env",
                env={"DATABASE_URL": postgres_url})
    listed = run("device", "list", "--database-url", postgres_url)

    assert added.returncode == 0, added.stderr
    assert [d["name"] for d in json.loads(listed.stdout)] == ["From env"]
    # The URL wins over --data: nothing was written to the directory.
    with_data = run("device", "list", "--data", str(tmp_path), env={"DATABASE_URL": postgres_url})
    assert [d["name"] for d in json.loads(with_data.stdout)] == ["From env"]
    assert list(tmp_path.iterdir()) == []


def test_an_alert_command_takes_the_database_url(postgres_url, capsys):
    run_in_process(capsys, "site", "set", "--database-url", postgres_url, "--site", "S")
    code, out, err = run_in_process(capsys, "alert", "rule", "list", "--database-url",
                                    postgres_url, "--site", "S")
    assert code == 0, err
    assert json.loads(out)


def test_a_url_that_is_not_postgresql_is_one_sentence(capsys):
    code, out, err = run_in_process(capsys, "device", "list", "--database-url",
                                    "mysql://kiosk:s3cret@db.example.org/kiosk")
    assert (code, out) == (2, "")
    assert err == ("error: --database-url must be a PostgreSQL URL starting with postgresql:// "
                   "or postgres:// (e.g. postgresql://kiosk@db.example.org:5432/kiosk), not "
                   "mysql://.\n")


def test_a_bad_url_in_the_environment_is_named_as_such(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///tmp/x")
    code, _, err = run_in_process(capsys, "site", "list")
    assert code == 2
    assert err.startswith("error: DATABASE_URL in the environment must be a PostgreSQL URL")


def test_a_server_that_is_down_is_one_sentence_without_the_password(capsys):
    port = closed_port()
    code, out, err = run_in_process(
        capsys, "device", "list", "--database-url",
        f"postgresql://kiosk:s3cret@127.0.0.1:{port}/clinic")
    assert (code, out) == (2, "")
    assert err == (f"error: cannot connect to PostgreSQL at postgresql://kiosk@127.0.0.1:{port}"
                   f"/clinic: Connection refused.\n")


@pytest.mark.parametrize("password", ["Tr%ub4dor", "s3cret pass"])
def test_a_url_libpq_cannot_read_is_a_sentence_that_never_quotes_it(password, capsys):
    # libpq's own parse error quotes the part it could not read: here, the password.
    code, out, err = run_in_process(
        capsys, "device", "list", "--database-url", f"postgresql://kiosk:{password}@127.0.0.1:1/db")
    assert (code, out) == (2, "")
    assert err.startswith("error: cannot use the PostgreSQL database: the URL cannot be read")
    assert password not in err and password.split()[0] not in err


def test_a_missing_database_is_named(postgres_url, capsys):
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    code, _, err = run_in_process(capsys, "site", "list", "--database-url", missing)
    assert code == 2
    assert err.startswith(f"error: cannot connect to PostgreSQL at {missing}: ")
    assert 'database "no_such_db" does not exist' in err and err.count("\n") == 1


def test_neither_data_nor_a_url_says_to_give_one(capsys):
    code, _, err = run_in_process(capsys, "device", "list")
    assert code == 2
    assert err == ("error: give the store: --data DIR for a SQLite store, or --database-url URL "
                   "(or DATABASE_URL in the environment) for PostgreSQL.\n")


@pytest.mark.parametrize("command", [["backup", "--to", "x.sqlite3"],
                                     ["restore", "--from", "x.sqlite3"]])
def test_backup_and_restore_point_to_postgresqls_own_tools(command, capsys):
    code, out, err = run_in_process(capsys, *command, "--database-url",
                                    "postgresql://kiosk@127.0.0.1:1/kiosk")
    assert (code, out) == (2, "")
    assert f"`{command[0]}` copies a SQLite store" in err
    assert "pg_dump" in err and "pg_basebackup" in err and err.count("\n") == 1


def test_several_workers_need_postgresql(tmp_path, capsys):
    code, _, err = run_in_process(capsys, "central", "--data", str(tmp_path), "--port", "0",
                                  "--workers", "2")
    assert code == 2
    assert err.startswith("error: --workers above 1 needs PostgreSQL (--database-url)")
    assert list(tmp_path.iterdir()) == []  # refused before the store was made


def test_a_read_replica_needs_a_primary(tmp_path, capsys):
    code, _, err = run_in_process(capsys, "central", "--data", str(tmp_path), "--port", "0",
                                  "--read-database-url", "postgresql://r@127.0.0.1:1/kiosk")
    assert code == 2
    assert err.startswith("error: --read-database-url names a read replica")


def test_central_on_a_server_that_is_down_is_one_sentence(tmp_path):
    port = closed_port()
    result = run("central", "--database-url", f"postgresql://kiosk:pw@127.0.0.1:{port}/kiosk",
                 "--port", "0", "--workers", "2")
    assert result.returncode == 2
    assert result.stderr == (f"error: cannot connect to PostgreSQL at postgresql://kiosk@"
                             f"127.0.0.1:{port}/kiosk: Connection refused.\n")


# --- central --workers N, a real process tree -------------------------------------------------


def children_of(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def wait_for(condition, timeout: float = 30.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"


def test_central_from_database_url_alone_needs_no_data_directory(postgres_url, tmp_path):
    base = {k: v for k, v in os.environ.items() if k != "READ_DATABASE_URL"}
    process = subprocess.Popen(
        [sys.executable, "main.py", "central", "--port", "0"], cwd=ROOT, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**base, "DATABASE_URL": postgres_url, "PYTHONUNBUFFERED": "1"})
    try:
        first, note = process.stderr.readline(), process.stderr.readline()
        port = int(first.split("http://127.0.0.1:", 1)[1].split(" ", 1)[0])
        assert first == (f"Central store on http://127.0.0.1:{port} (database "
                         f"{postgres_url}); Ctrl+C stops it.\n")
        assert note.startswith("No daily backup: --backup-keep is for SQLite stores")
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), what="the store")
        process.send_signal(signal.SIGINT)  # Ctrl+C: a clean stop, exit 0
        assert process.wait(timeout=20) == 0
        assert "Central store stopped." in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stderr.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def two_workers(tmp_path, postgres_url):
    central = CentralProcess(tmp_path, extra_args=("--database-url", postgres_url,
                                                    "--workers", "2"))
    central.start()
    yield central
    central.stop()


def test_two_workers_serve_one_port_and_a_killed_one_is_replaced(two_workers, postgres_url):
    central = two_workers
    first_line = central.log[0]
    assert "database postgresql://postgres@127.0.0.1:" in first_line and "2 workers" in first_line
    workers = wait_for(lambda: len(children_of(central.pid)) == 2 and children_of(central.pid),
                       what="two workers")
    with requests.Session() as session:
        for _ in range(50):
            # A new connection each time, so the kernel may hand it to either worker.
            assert requests.get(central.url + "/healthz", timeout=5).status_code == 200
            assert session.get(central.url + "/healthz", timeout=5).status_code == 200

    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    answered = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # The other worker keeps answering while the dead one is replaced.
        assert requests.get(central.url + "/healthz", timeout=5).status_code == 200
        answered += 1
        now = children_of(central.pid)
        if len(now) == 2 and victim not in now:
            break
    replaced = children_of(central.pid)
    assert len(replaced) == 2 and victim not in replaced and answered >= 1
    wait_for(lambda: any(f"Worker {victim} stopped unexpectedly (killed by SIGKILL)" in line
                         for line in central.log), what="the restart's log line")
    for _ in range(20):
        assert requests.get(central.url + "/healthz", timeout=5).status_code == 200

    os.kill(central.pid, signal.SIGTERM)
    assert central.process.wait(timeout=20) == 0
    assert not any(alive(pid) for pid in replaced)
    assert "Central store stopped." in "".join(central.log[-3:]) or wait_for(
        lambda: "Central store stopped.\n" in central.log, timeout=5, what="the goodbye")
    with pytest.raises(requests.ConnectionError):
        requests.get(central.url + "/healthz", timeout=2)


def test_a_batch_posted_at_once_to_two_workers_is_stored_once(two_workers, postgres_url):
    store = CentralStore(None, database_url=postgres_url, pool_size=2)
    try:
        with store.write() as db:
            _, token = auth.add_device(db, "Test Clinic", "Desk 1")
    finally:
        store.close()
    events = WireEvents()
    batch = []
    for n in range(100):
        _, visit = events.visit(checked_in=n, called=n + 5, checked_out=n + 20)
        batch.extend(visit)
    body = {"events": batch}

    def post(_) -> list[dict]:
        with requests.Session() as session:  # its own connection: either worker may take it
            answer = session.post(two_workers.url + "/api/v1/events", json=body, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            return answer.json()["results"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, range(8)))

    ids = [event["id"] for event in batch]
    for results in answers:
        assert [r["id"] for r in results] == ids
        assert {r["status"] for r in results} <= {"stored", "duplicate"}
    stored = [r["id"] for results in answers for r in results if r["status"] == "stored"]
    assert sorted(stored) == sorted(ids)  # each event answered "stored" exactly once
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT id, count(*) FROM events GROUP BY id").fetchall()
    assert sorted(rows) == sorted((event_id, 1) for event_id in ids)


def test_ctrl_c_to_the_whole_group_stops_every_worker(postgres_url, tmp_path):
    # A terminal's Ctrl+C reaches the parent and its workers at once.
    process = subprocess.Popen(
        [sys.executable, "main.py", "central", "--database-url", postgres_url, "--port", "0",
         "--workers", "2", "--backup-keep", "0"],
        cwd=ROOT, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = process.stderr.readline()
        port = int(first.split("http://127.0.0.1:", 1)[1].split(" ", 1)[0])
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), what="the store")
        workers = wait_for(lambda: len(children_of(process.pid)) == 2
                           and children_of(process.pid), what="two workers")
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=20) == 0
        rest = process.stderr.read()
        assert "stopped unexpectedly" not in rest and "Central store stopped." in rest
        assert not any(alive(pid) for pid in workers)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        process.stderr.close()
