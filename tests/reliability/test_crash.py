"""Crash tests: SIGKILL the kiosk while it writes, and the central store while it ingests.

The kiosk: a writer process (forked from ``kiosk_writer``'s zygote) checks patients in, calls
them, checks them out and rates as fast as the disk allows, syncing in the background, and
says ``ACK <id>`` after each commit. It is SIGKILLed at a random moment (while starting, after a
random time, or after a random number of acks), over and over; after each kill the kiosk's own
start-up path reopens the file. Every acknowledged write must be there, the file must pass
``PRAGMA integrity_check`` and must not be mistaken for a corrupt one, and the sequence must stay
gapless. Then a sync pass runs and the central store must hold each event exactly once.

The central store: ``main.py central`` runs as a process and is SIGKILLed while a 500-event
batch is in flight; read straight from its file afterwards, each batch is stored wholly or not
at all, and after a restart the kiosk's retry completes the delivery, once. On PostgreSQL the
store runs as a supervisor and two workers (``--workers 2``), and the kills take every worker
or the whole tree; and PostgreSQL itself is stopped at once (no shutdown checkpoint, as in a
crash) mid-batch: the store answers 503 meanwhile and its workers carry on once it is back.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from kiosk.store import Store
from sync.central.postgres import POOL_WAIT_S
from sync.client import SyncClient
from sync.loop import SyncLoop
from sync.replies import CentralUnreachable
from tests.reliability import figures
from tests.reliability.helpers import ROOT, CentralProcess
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_until

KIOSK_KILLS = 120
CENTRAL_KILLS = 8
POSTGRES_KILLS = 2
# Seconds from PostgreSQL's restart to the store storing again (the pool's retry window, 10 s,
# is what bounds it; the library's default backoff made it as long as the outage had been).
RECOVERY_BOUND_S = 20
SEED = int(os.environ.get("RELIABILITY_SEED", time.time_ns() % 1_000_000))


class Zygote:
    """The writer factory (see kiosk_writer): spawn a writer, read its acks, see it end."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.kiosk_writer"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.errors.append),
                         daemon=True).start()

    @staticmethod
    def _pump(stream, put) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def spawn(self, data_dir: Path, url: str, token: str) -> int:
        self.process.stdin.write(f"spawn {data_dir} {url} {token}\n")
        self.process.stdin.flush()
        line = self.line(timeout=30)
        if line is None or not line.startswith("PID "):
            pytest.fail(f"the zygote did not spawn a writer: {line!r} {self.errors[-20:]}")
        return int(line.split()[1])

    def line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _verify_kiosk_file(path: Path, acknowledged: set[str]) -> int:
    """Reopen as the kiosk does at start; returns how many events the file holds."""
    store = Store(path)
    try:
        assert store.recovered_from is None, "a SIGKILL made a good database look corrupt"
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        events = store.events()
        on_disk = {event["id"] for event in events}
        missing = acknowledged - on_disk
        assert not missing, f"{len(missing)} acknowledged writes are gone: {sorted(missing)[:3]}"
        seqs = [event["device_seq"] for event in events]
        assert seqs == list(range(1, len(seqs) + 1)), "device_seq has a gap or a repeat"
        return len(events)
    finally:
        store.close()


@pytest.mark.slow
def test_a_kiosk_killed_at_random_moments_loses_no_acknowledged_write(tmp_path, central_server):
    started = time.monotonic()
    device = central_server.add_device(name="Crash desk")
    data_dir = tmp_path / "kiosk"
    chance = random.Random(SEED)
    acknowledged: set[str] = set()
    ends: Counter[str] = Counter()
    moments: Counter[str] = Counter()
    zygote = Zygote()
    try:
        for _ in range(KIOSK_KILLS):
            pid = zygote.spawn(data_dir, central_server.base_url, device.token)
            spawned = time.monotonic()
            roll = chance.random()
            if roll < 0.15:  # while the interpreter opens, checks and migrates the file
                moment, deadline, target = "starting", spawned + chance.uniform(0, 0.005), None
            elif roll < 0.55:
                moment, target = "after a time", None
                deadline = spawned + chance.uniform(0.005, 0.1)
            else:
                moment, deadline, target = "after acks", spawned + 10, chance.randint(1, 40)
            moments[moment] += 1
            acks = 0
            while target is None or acks < target:
                line = zygote.line(deadline - time.monotonic())
                if line is None:
                    break
                assert not line.startswith("END"), f"a writer died by itself: {zygote.errors[-30:]}"
                acknowledged.add(line.split()[1])
                acks += 1
            os.kill(pid, signal.SIGKILL)
            while (line := zygote.line(timeout=30)) is not None and not line.startswith("END"):
                acknowledged.add(line.split()[1])  # committed and said before the kill landed
            assert line is not None, "a killed writer was never reaped"
            ends[line.split(maxsplit=2)[2]] += 1
            _verify_kiosk_file(data_dir / "kiosk.sqlite", acknowledged)
    finally:
        zygote.close()
    assert ends == {"signal 9": KIOSK_KILLS}, f"writers ended otherwise: {ends} {zygote.errors}"

    store = Store(data_dir / "kiosk.sqlite")
    client = SyncClient(store, central_server.base_url, device.token)
    try:
        for _ in range(20):
            if store.sync_status().backlog == 0:
                break
            client.sync_once()
        status = store.sync_status()
        assert (status.backlog, status.rejected) == (0, 0), store.rejected_events()[:3]
        local = store.events()
        rating_count = len(store.ratings_between("0", "9"))
    finally:
        client.close()
        store.close()

    central = central_server.rows(
        "SELECT id, device_seq FROM events WHERE device_id = ?", [device.device_id])
    ids = Counter(row["id"] for row in central)
    seqs = Counter(row["device_seq"] for row in central)
    duplicated = sum(n - 1 for n in ids.values()) + sum(n - 1 for n in seqs.values())
    lost = len({event["id"] for event in local} - set(ids)) + len(acknowledged - set(ids))
    assert (lost, duplicated) == (0, 0)
    assert len(central) == len(local) >= len(acknowledged)
    assert central_server.rows("SELECT COUNT(*) AS n FROM ratings WHERE device_id = ?",
                               [device.device_id]) == [{"n": rating_count}]
    figures.record(
        "crash_kiosk",
        title="Kiosk SIGKILLed at random moments",
        figures={"kills": KIOSK_KILLS, "acknowledged_writes_checked": len(acknowledged),
                 "events_synced": len(central), "integrity_checks_ok": KIOSK_KILLS,
                 "kill_moments": dict(moments), "seed": SEED},
        lost=lost, duplicated=duplicated, seconds=time.monotonic() - started,
    )


class WatchedClient(SyncClient):
    """The real client; it also says when a batch is on its way and which events it holds.

    One batch per pass: on a fast moment the real client would drain every batch before the
    kill, leave nothing for the next pass to post, and the test would wait for a post in vain.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.posting = threading.Event()
        self.batches: list[list[str]] = []
        self.one_batch_per_pass = True

    def _post(self, batch):
        if self.one_batch_per_pass and self.batches:
            raise CentralUnreachable("this test's client sends one batch per pass")
        self.batches.append([event.id for event in batch])
        self.posting.set()
        return super()._post(batch)


class BatchesUnderFire:
    """A kiosk with ``(kills + 1) * 500`` ratings (and a few spare) recorded, pushing them one
    500-event batch per pass at ``central`` while the test breaks something mid-batch, then
    delivering the rest with the real sync loop; it counts how each batch in flight was
    stored."""

    BATCH = 500
    SPARE = 10  # recorded beyond the batches, for a test's own requests

    def __init__(self, tmp_path: Path, central: CentralProcess, kills: int, seed: int,
                 spread: float = 1.2):
        self.central = central
        self.spread = spread
        self.chance = random.Random(seed)
        self.store = Store(tmp_path / "kiosk" / "kiosk.sqlite")
        self.outcomes: Counter[str] = Counter()
        _, token = central.enrol(name="Desk under fire")
        self.headers = {"Authorization": f"Bearer {token}"}
        for n in range((kills + 1) * self.BATCH + self.SPARE):
            self.store.record("rating.submitted", {"score": 1 + n % 5, "scale": 5, "tags": [],
                                                   "misuse": False})
        self.client = WatchedClient(self.store, central.url, token, batch_size=self.BATCH,
                                    timeouts=(1, 10))
        # One batch without a fault, to learn how long the store takes over one.
        self.client.one_batch_per_pass = False
        took = time.monotonic()
        first = self.store.unsynced(self.BATCH)
        self.client._post(first)
        self.store.mark_synced([event.id for event in first])
        self.took = time.monotonic() - took
        self.client.one_batch_per_pass = True

    def break_mid_batch(self, fault) -> None:
        """Start a pass, call ``fault()`` at a random moment of its batch, see the pass end,
        and check what the store holds of the batch it was sending: all or none of it."""
        self.client.posting.clear()
        self.client.batches.clear()
        passing = threading.Thread(target=self.client.sync_once)
        passing.start()
        assert self.client.posting.wait(10)
        # The fault's timing, not a wait for a state.
        time.sleep(self.chance.uniform(0, self.took * self.spread))
        fault()
        passing.join(15)
        assert not passing.is_alive()

    def check_batches_in_flight(self) -> None:
        for sent in self.client.batches:
            placeholders = ",".join("?" * len(sent))
            stored = self.central.rows(
                f"SELECT COUNT(*) AS n FROM events WHERE id IN ({placeholders})", sent
            )[0]["n"]
            assert stored in (0, len(sent)), f"a batch was stored in part: {stored}/{len(sent)}"
            self.outcomes["whole" if stored else "none"] += 1

    def deliver_the_rest(self) -> tuple[int, int, int]:
        """The real loop's retries until the backlog is empty; (lost, duplicated, events)."""
        self.client.one_batch_per_pass = False
        loop = SyncLoop(self.store, self.client, heartbeat_s=3600, base_delay=0.05,
                        max_delay=0.5)
        loop.start()
        try:
            wait_until(lambda: self.store.sync_status().backlog == 0, timeout=60,
                       what="the retries to deliver the backlog")
        finally:
            stopped = loop.stop(timeout=15)  # a request in flight may take its read timeout
        assert stopped
        local = {event["id"] for event in self.store.events()
                 if event["type"] == "rating.submitted"}
        rows = self.central.rows(
            "SELECT id, device_seq FROM events WHERE type = 'rating.submitted'")
        ids = Counter(row["id"] for row in rows)
        duplicated = sum(n - 1 for n in ids.values())
        lost = len(local - set(ids))
        assert (lost, duplicated, len(ids)) == (0, 0, len(local))
        assert self.central.rows("SELECT COUNT(*) AS n FROM ratings") == [{"n": len(local)}]
        assert self.store.sync_status().rejected == 0
        return lost, duplicated, len(local)

    def close(self) -> None:
        self.client.close()
        self.store.close()


def _is_server_error(line: str) -> bool:
    return " 500 " in line or "Traceback" in line


def _server_errors(central: CentralProcess) -> int:
    return sum(_is_server_error(line) for line in central.log)


def _server_error_lines(central: CentralProcess) -> str:
    """Each 500 or traceback in the log with the lines after it (the tail may not hold it)."""
    log = central.log
    return "".join("".join(log[n:n + 12]) + "---\n"
                   for n, line in enumerate(log) if _is_server_error(line))[-6000:]


def _central_for(tmp_path: Path, database_url: str | None) -> CentralProcess:
    """SQLite: the one process. PostgreSQL: a supervisor and two workers on one port."""
    workers = 2 if database_url else 1
    return CentralProcess(tmp_path / "central", log_level="warning", database_url=database_url,
                          workers=workers)


@pytest.mark.slow
def test_the_central_store_killed_mid_batch_stores_it_whole_or_not_at_all(
        tmp_path, central_database_url, central_engine):
    """SQLite: the one process is SIGKILLed and started again. PostgreSQL (2 workers): every
    worker is SIGKILLed (the one writing the batch among them) and the supervisor replaces
    them, or, every other time, the whole tree (supervisor and workers) and it is started
    again; the kiosk's URL stays the same throughout."""
    started = time.monotonic()
    central = _central_for(tmp_path, central_database_url).start()
    kinds: Counter[str] = Counter()
    fire: BatchesUnderFire | None = None
    try:
        if central.workers > 1:
            central.wait_for_workers()
        # Batches vary more with workers on PostgreSQL (0.5-1.2 s on a busy 2-CPU machine, a
        # fresh worker the slowest): a wider spread so that some kills land after the commit.
        spread = 1.2 if central.workers == 1 else 1.8
        fire = BatchesUnderFire(tmp_path, central, CENTRAL_KILLS, SEED + 1, spread)
        for round_number in range(CENTRAL_KILLS):
            if central.workers == 1:
                kind, kill = "process", central.kill
            elif round_number % 2 == 0:
                kind, kill = "workers", central.kill_workers
            else:
                kind, kill = "tree", central.kill
            fire.break_mid_batch(kill)
            fire.check_batches_in_flight()  # read straight from the database, store down
            if kind == "workers":
                central.wait_for_workers()  # the supervisor's replacements
            else:
                central.start()  # the same port: the kiosk's URL does not change
                if central.workers > 1:
                    central.wait_for_workers()
            kinds[kind] += 1
        lost, duplicated, events = fire.deliver_the_rest()
        if central.workers > 1:
            replaced = sum("stopped unexpectedly" in line for line in central.log)
            assert replaced == 2 * kinds["workers"], "".join(central.log)[-3000:]
    finally:
        if fire is not None:
            fire.close()
        central.stop()
    server_errors = _server_errors(central)
    assert server_errors == 0, _server_error_lines(central)
    figures.record(
        "crash_central",
        title="Central store SIGKILLed mid-batch",
        figures={"kills": CENTRAL_KILLS, "workers": central.workers, "kinds": dict(kinds),
                 "batches_in_flight": sum(fire.outcomes.values()),
                 "stored_whole": fire.outcomes["whole"],
                 "stored_not_at_all": fire.outcomes["none"],
                 "stored_in_part": 0, "events_checked": events, "seed": SEED},
        lost=lost, duplicated=duplicated, server_errors=server_errors,
        seconds=time.monotonic() - started, engine=central_engine,
    )


@pytest.mark.slow
def test_postgresql_killed_mid_batch_is_answered_503_and_the_workers_carry_on(tmp_path):
    """PostgreSQL's own server stopped at once (``immediate``: no checkpoint, WAL recovery on
    the next start, as after a crash) while a batch is being written, then started again on
    the same port. Meanwhile the store answers 503 with a sentence and Retry-After; after,
    the same two worker processes serve again (their pools replace the broken connections)
    and the kiosk's retries deliver everything once. A cluster of its own: the session's
    cluster serves other tests' databases."""
    started = time.monotonic()
    fire: BatchesUnderFire | None = None
    answers: Counter[int] = Counter()
    slowest_503 = slowest_recovery = 0.0
    with PostgresCluster() as cluster:
        url = cluster.create_database("crash")
        central = CentralProcess(tmp_path / "central", log_level="warning", database_url=url,
                                 workers=2).start()
        try:
            workers = central.wait_for_workers()
            fire = BatchesUnderFire(tmp_path, central, POSTGRES_KILLS, SEED + 2, spread=1.8)
            for _ in range(POSTGRES_KILLS):
                fire.break_mid_batch(lambda: cluster.stop("immediate"))
                # Ten events not in the batch in flight (that one is checked whole or none):
                # recorded now, so they exist however far the passes before got.
                behind = [fire.store.record("rating.submitted", {
                    "score": 3, "scale": 5, "tags": [], "misuse": False})
                    for _ in range(fire.SPARE)]
                waiting = [event.to_wire() for event in behind]
                asked = time.monotonic()
                answer = requests.post(central.url + "/api/v1/events", json={"events": waiting},
                                       headers=fire.headers, timeout=(1, 60))
                slowest_503 = max(slowest_503, time.monotonic() - asked)
                answers[answer.status_code] += 1
                assert answer.status_code == 503, answer.text
                assert "cannot reach its database" in answer.json()["detail"]
                assert int(answer.headers["Retry-After"]) > 0
                # Found by a new connection, not after the 30 s a busy pool is waited for.
                assert time.monotonic() - asked < POOL_WAIT_S / 2
                health = requests.get(central.url + "/healthz", timeout=(1, 60))
                assert health.status_code == 503, health.text
                cluster.start()
                back = time.monotonic()
                # The same events again (the kiosk's resend would be answered "duplicate"):
                # how soon after PostgreSQL is back the store stores again.
                while requests.post(central.url + "/api/v1/events", json={"events": waiting},
                                    headers=fire.headers, timeout=(1, 60)).status_code != 200:
                    assert time.monotonic() - back < RECOVERY_BOUND_S, "no recovery"
                    time.sleep(0.1)
                slowest_recovery = max(slowest_recovery, time.monotonic() - back)
                # Answered: synced, as the kiosk marks them (else the next batch holds them).
                fire.store.mark_synced([event.id for event in behind])
                fire.check_batches_in_flight()
            lost, duplicated, events = fire.deliver_the_rest()
            assert central.worker_pids() == workers, "the workers were restarted"
            assert not any("stopped unexpectedly" in line for line in central.log)
        finally:
            if fire is not None:
                fire.close()
            central.stop()
    server_errors = _server_errors(central)
    assert server_errors == 0, _server_error_lines(central)
    figures.record(
        "crash_postgres",
        title="PostgreSQL stopped at once mid-batch",
        figures={"kills": POSTGRES_KILLS, "workers": 2,
                 "batches_in_flight": sum(fire.outcomes.values()),
                 "stored_whole": fire.outcomes["whole"],
                 "stored_not_at_all": fire.outcomes["none"], "stored_in_part": 0,
                 "answered_503": answers[503], "slowest_503_s": round(slowest_503, 1),
                 "slowest_recovery_s": round(slowest_recovery, 1), "events_checked": events,
                 "worker_restarts": 0, "seed": SEED},
        lost=lost, duplicated=duplicated, server_errors=server_errors,
        seconds=time.monotonic() - started, engine="postgres",
    )
