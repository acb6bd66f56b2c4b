"""`central migrate`: a SQLite store moved into PostgreSQL, as an operator moves it.

A real store (demo data through the ingest path, events through the real HTTP API, a reporting
token, a dashboard login), a real PostgreSQL database (``postgres_url``), the real command in a
child process; the figures are compared as the API serves them on both stores.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.shared.timeutil import to_rfc3339
from sync.central import cli
from sync.central.dashboard.demo import fill
from sync.central.move import MARKER_TABLE, PROGRESS_TABLE, MoveFailed, move_store, source_tables
from sync.central.storage import CentralStore, connect_to, database_path
from tests.support.central_server import running_central
from tests.support.engines import engines_for
from tests.support.wire_events import WireEvents

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def target_url(request) -> str:
    """A fresh, empty PostgreSQL database (skipped when the run leaves PostgreSQL out)."""
    if "postgres" not in engines_for(request.config, request.path):
        pytest.skip("PostgreSQL is not among --central-engines")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="module")
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def source(tmp_path, now) -> dict:
    """A SQLite store with a few days of demo data, a visit and a rating posted over HTTP,
    a reporting token and a dashboard login: what the move must carry."""
    data = tmp_path / "sqlite-store"
    store = CentralStore(data)
    try:
        fill(store, days=3, now=now)
    finally:
        store.close()
    with running_central(data) as server:
        device = server.add_device("Harbour Clinic", "desk-1")
        token = server.add_reporting_token("bi")
        events, visit = WireEvents(), str(uuid.uuid4())
        start = now - timedelta(hours=2)
        batch = [
            events.checked_in(visit, to_rfc3339(start)),
            events.called(visit, to_rfc3339(start + timedelta(minutes=12))),
            events.checked_out(visit, to_rfc3339(start + timedelta(minutes=30))),
            events.event("rating.submitted", to_rfc3339(start + timedelta(minutes=31)), visit,
                         {"score": 2, "scale": 5, "tags": ["waiting_time"], "misuse": False}),
        ]
        answer = server.post_events(device, batch)
        assert [r["status"] for r in answer.json()["results"]] == ["stored"] * 4
    added = run("user", "add", "--data", str(data), "--name", "ana", "--password-stdin",
                stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    return {"data": data, "token": token, "device": device}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, input=stdin)


def migrate(data: Path, url: str) -> subprocess.CompletedProcess:
    return run("central", "migrate", "--data", str(data), "--database-url", url)


def sqlite_counts(data: Path) -> dict[str, int]:
    conn = sqlite3.connect(database_path(data))
    try:
        return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in source_tables(conn)}
    finally:
        conn.close()


def pg_rows(url: str, sql: str) -> list[dict]:
    db = connect_to(None, url)
    try:
        return list(db.query(sql))
    finally:
        db.close()


def pg_counts(url: str, tables) -> dict[str, int]:
    return {table: pg_rows(url, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
            for table in tables}


def test_a_moved_store_holds_every_row_and_serves_the_same_metrics(source, target_url, now,
                                                                   tmp_path):
    expected = sqlite_counts(source["data"])
    # Everything the store has is moved: the list comes from the file, so check it is whole.
    for table in ("events", "visits", "ratings", "rating_hours", "visit_hours", "devices",
                  "reporting_tokens", "users", "sites", "audit", "alerts", "enrolment_codes"):
        assert table in expected
    assert expected["events"] > 1000 and expected["users"] == 1

    result = migrate(source["data"], target_url)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {t: v["rows"] for t, v in report["tables"].items()} == expected
    assert all(v["copied_now"] for v in report["tables"].values())
    assert report["verified"]["rows"] == sum(expected.values())
    assert "Harbour Clinic" in report["verified"]["sites"]
    assert pg_counts(target_url, expected) == expected
    marker = pg_rows(target_url, f"SELECT source, verified_at FROM {MARKER_TABLE}")
    assert marker[0]["source"] == str(database_path(source["data"]).resolve())
    assert marker[0]["verified_at"] is not None

    # The same reporting token reads the same figures from a server on each store.
    query = {"from": to_rfc3339(now - timedelta(days=4)), "to": to_rfc3339(now)}
    sites = [None, "Harbour Clinic", "Northgate Dental", "Riverside Medical"]
    with running_central(source["data"]) as server:
        before = [server.metrics(source["token"], **query, **({"site": s} if s else {}))
                  for s in sites]
    with running_central(tmp_path / "pg-side", database_url=target_url) as server:
        after = [server.metrics(source["token"], **query, **({"site": s} if s else {}))
                 for s in sites]
        # The identity columns continue past the copied rows: a new audit row gets a new id.
        highest = pg_rows(target_url, "SELECT MAX(id) AS id FROM audit")[0]["id"]
        server.add_device("Harbour Clinic", "desk-2")
        with server.embedded.store.write() as db:
            from sync.central import audit

            audit.record(db, audit.command_actor(), "device.add", "x", "Harbour Clinic", None, {})
        assert pg_rows(target_url, "SELECT MAX(id) AS id FROM audit")[0]["id"] == highest + 1
    for old, new in zip(before, after, strict=True):
        assert old.status_code == new.status_code == 200
        old_figures, new_figures = old.json(), new.json()
        # The live queue's waits are measured from each request's own instant.
        old_wait = old_figures.pop("longest_current_wait_min")
        new_wait = new_figures.pop("longest_current_wait_min")
        assert (old_wait is None) == (new_wait is None)
        if old_wait is not None:
            assert abs(new_wait - old_wait) < 2
        assert new_figures == old_figures
    assert before[1].json()["ratings"] == 1


def test_a_move_killed_half_way_finishes_on_the_next_run_without_duplicates(source,
                                                                               target_url):
    expected = sqlite_counts(source["data"])
    # A real kill: the child process dies (SIGKILL) once eight tables are committed.
    killer = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from sync.central.move import move_store\n"
        "done = []\n"
        "def after(table):\n"
        "    done.append(table)\n"
        "    if len(done) == 8:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "move_store(Path(sys.argv[1]), sys.argv[2], after_table=after)\n"
    )
    killed = subprocess.run([sys.executable, "-c", killer, str(source["data"]), target_url],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    progress = pg_rows(target_url, f"SELECT table_name FROM {PROGRESS_TABLE}")
    assert len(progress) == 8
    assert pg_rows(target_url, f"SELECT verified_at FROM {MARKER_TABLE}") == [
        {"verified_at": None}]

    result = migrate(source["data"], target_url)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resumed"] is True
    assert sum(not v["copied_now"] for v in report["tables"].values()) == 8
    assert pg_counts(target_url, expected) == expected
    # The rollup triggers are back on after the copy: a new rating is counted once.
    triggers = pg_rows(target_url, "SELECT tgname, tgenabled FROM pg_trigger "
                                   "WHERE NOT tgisinternal")
    assert triggers and all(t["tgenabled"] == "O" for t in triggers)


def test_a_failure_in_the_middle_of_a_table_leaves_nothing_of_it(source, target_url):
    expected = sqlite_counts(source["data"])
    tables = list(expected)

    def fail_after_events(table: str) -> None:
        if table == "events":
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        move_store(source["data"], target_url, after_table=fail_after_events)
    copied = {row["table_name"] for row in pg_rows(target_url,
                                                  f"SELECT table_name FROM {PROGRESS_TABLE}")}
    assert copied == set(tables[:tables.index("events") + 1])
    assert pg_counts(target_url, [t for t in tables if t not in copied]) == {
        t: 0 for t in tables if t not in copied}

    report = move_store(source["data"], target_url)
    assert report["resumed"] is True
    assert pg_counts(target_url, expected) == expected

    # Run again once done: nothing copied twice, the copy verified again.
    again = migrate(source["data"], target_url)
    assert again.returncode == 0, again.stderr
    assert not any(v["copied_now"] for v in json.loads(again.stdout)["tables"].values())
    assert pg_counts(target_url, expected) == expected


def test_a_database_holding_another_store_is_refused_and_left_as_it_was(source, target_url,
                                                                        tmp_path):
    other = CentralStore(None, database_url=target_url)
    try:
        with other.write() as db:
            from sync.central import auth

            auth.add_device(db, "Elsewhere", "desk-9")
    finally:
        other.close()
    tables_before = pg_rows(target_url, "SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = current_schema() ORDER BY 1")

    result = migrate(source["data"], target_url)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == ("error: the PostgreSQL database already holds a central "
                                     "store (devices has rows); move into an empty database.")
    assert pg_rows(target_url, "SELECT table_name FROM information_schema.tables "
                               "WHERE table_schema = current_schema() ORDER BY 1") == tables_before
    assert pg_rows(target_url, "SELECT name FROM devices") == [{"name": "desk-9"}]


def test_a_partial_copy_of_another_store_is_refused(source, target_url, tmp_path):
    first = tmp_path / "first-store"
    CentralStore(first).close()
    with pytest.raises(RuntimeError):
        move_store(first, target_url, after_table=lambda table: (_ for _ in ()).throw(
            RuntimeError("stopped")))

    result = migrate(source["data"], target_url)

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: the PostgreSQL database already holds a copy of another store "
        f"({database_path(first).resolve()}); move "
        f"{database_path(source['data']).resolve()} into an empty database.")
    with pytest.raises(MoveFailed, match="copy of another store"):
        move_store(source["data"], target_url)


def test_migrate_needs_a_store_and_a_postgresql_url(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["central", "migrate", "--data", str(tmp_path)]) == 2
    assert "give the PostgreSQL database to move into with --database-url" in (
        capsys.readouterr().err)
    assert cli.main(["central", "migrate", "--data", str(tmp_path), "--database-url",
                     "sqlite:///x"]) == 2
    assert "--database-url must be a postgresql:// URL" in capsys.readouterr().err
    assert cli.main(["central", "migrate", "--data", str(tmp_path / "missing"),
                     "--database-url", "postgresql://kiosk@127.0.0.1:1/central"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: there is no central store in {tmp_path / 'missing'} "
                           f"(no central.sqlite3): check the path.")


def test_a_url_libpq_cannot_read_or_a_server_that_is_down_is_a_sentence_without_the_password(
        tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    CentralStore(tmp_path).close()
    # "%ub" is not percent-encoding: libpq's own message would quote the password.
    assert cli.main(["central", "migrate", "--data", str(tmp_path), "--database-url",
                     "postgresql://kiosk:Tr%ub4dor@127.0.0.1:1/central"]) == 2
    err = capsys.readouterr().err
    assert "Tr%ub4dor" not in err and "ub4dor" not in err
    assert "the URL cannot be read" in err and "the move stopped" not in err
    # Port 1: nothing listens. Nothing was copied, so this is not "the move stopped".
    assert cli.main(["central", "migrate", "--data", str(tmp_path), "--database-url",
                     "postgresql://kiosk:s3cret@127.0.0.1:1/central"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot connect to PostgreSQL at "
                          "postgresql://kiosk@127.0.0.1:1/central: ")
    assert "s3cret" not in err and "the move stopped" not in err


def test_central_with_options_is_still_the_server_command():
    args = cli.build_parser().parse_args(["central", "--data", "somewhere", "--port", "0"])
    assert args.handler is cli.cmd_central
    assert (args.data, args.port) == ("somewhere", 0)
    help_text = run("central", "migrate", "--help")
    assert help_text.returncode == 0
    assert "main.py central migrate" in help_text.stdout


def test_a_token_revoked_between_runs_is_revoked_on_postgresql_after_the_rerun(
        source, target_url, tmp_path):
    """Run 1 copies devices, then fails; the operator revokes a desk on the SQLite store; run 2
    must carry the revocation, not keep run 1's copy (that desk's token would work again)."""
    def fail_after_devices(table: str) -> None:
        if table == "devices":
            raise RuntimeError("lost connection")

    with pytest.raises(RuntimeError, match="lost connection"):
        move_store(source["data"], target_url, after_table=fail_after_devices)
    device = source["device"]
    assert pg_rows(target_url, f"SELECT revoked FROM devices WHERE id = '{device.device_id}'") == [
        {"revoked": 0}]
    revoked = run("device", "revoke", "--data", str(source["data"]), "--device",
                  device.device_id)
    assert revoked.returncode == 0, revoked.stderr

    result = migrate(source["data"], target_url)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resumed"] is True
    assert report["tables"]["devices"]["copied_now"] is True
    assert report["tables"]["devices"]["replaced_earlier_copy"] is True
    # The revocation's audit row too (audit was copied by run 1, before devices).
    assert report["tables"]["audit"]["replaced_earlier_copy"] is True
    assert pg_rows(target_url, f"SELECT revoked FROM devices WHERE id = '{device.device_id}'") == [
        {"revoked": 1}]
    expected = sqlite_counts(source["data"])
    assert pg_counts(target_url, expected) == expected
    # Tables equal to the source were compared, not copied again.
    assert not report["tables"]["alerts"]["copied_now"]
    with running_central(tmp_path / "pg-side", database_url=target_url) as server:
        answer = server.post_events(device, [WireEvents().event(
            "device.heartbeat", to_rfc3339(datetime.now(UTC)), None,
            {"backlog": 0, "version": "1.0.0"})])
    assert answer.status_code == 401


def test_a_copy_that_no_longer_matches_is_not_declared_done_and_a_rerun_repairs_it(source,
                                                                                    target_url):
    tables = list(sqlite_counts(source["data"]))

    def change_copied(sql: str):
        def after(table: str) -> None:
            # Once the last table is in, something writes to a table copied earlier.
            if table == tables[-1]:
                db = connect_to(None, target_url)
                try:
                    db.execute(sql)
                finally:
                    db.close()
        return after

    # Equal counts, different figures: a site's target wait changed after the copy.
    with pytest.raises(MoveFailed, match=r"^the copy does not match: for .*target.*on "
                                         r"PostgreSQL$"):
        move_store(source["data"], target_url, after_table=change_copied(
            "UPDATE sites SET target_wait_min = target_wait_min + 7 "
            "WHERE name = 'Northgate Dental'"))
    assert pg_rows(target_url, f"SELECT verified_at FROM {MARKER_TABLE}") == [
        {"verified_at": None}]

    repaired = migrate(source["data"], target_url)

    assert repaired.returncode == 0, repaired.stderr
    report = json.loads(repaired.stdout)
    assert report["tables"]["sites"]["replaced_earlier_copy"] is True
    assert sum(v["copied_now"] for v in report["tables"].values()) == 1
    source_db = connect_to(source["data"], None)
    try:
        sites = [dict(row) for row in source_db.query("SELECT * FROM sites ORDER BY name")]
    finally:
        source_db.close()
    assert pg_rows(target_url, "SELECT * FROM sites ORDER BY name") == sites
    assert pg_rows(target_url, f"SELECT COUNT(*) AS n FROM {MARKER_TABLE} "
                               "WHERE verified_at IS NOT NULL") == [{"n": 1}]


def test_a_count_mismatch_says_run_again_and_the_rerun_copies_the_table_again(source,
                                                                             target_url):
    expected = sqlite_counts(source["data"])
    last = list(expected)[-1]

    def lose_an_event(table: str) -> None:
        # Once the last table is in, a row goes missing from events, copied earlier.
        if table == last:
            db = connect_to(None, target_url)
            try:
                db.execute("DELETE FROM events WHERE id = "
                           "(SELECT id FROM events ORDER BY id LIMIT 1)")
            finally:
                db.close()

    with pytest.raises(MoveFailed) as failed:
        move_store(source["data"], target_url, after_table=lose_an_event)
    assert str(failed.value) == (
        f"the copy does not match: events has {expected['events']} rows in SQLite and "
        f"{expected['events'] - 1} on PostgreSQL; run the command again")

    again = migrate(source["data"], target_url)

    assert again.returncode == 0, again.stderr
    tables = json.loads(again.stdout)["tables"]
    assert [t for t, v in tables.items() if v["copied_now"]] == ["events"]
    assert tables["events"]["replaced_earlier_copy"] is True
    assert pg_counts(target_url, expected) == expected

    # The same after a completed, verified move: a re-run finds the lost row and mends it.
    db = connect_to(None, target_url)
    try:
        db.execute("DELETE FROM events WHERE id = (SELECT id FROM events ORDER BY id LIMIT 1)")
    finally:
        db.close()
    mended = migrate(source["data"], target_url)
    assert mended.returncode == 0, mended.stderr
    assert [t for t, v in json.loads(mended.stdout)["tables"].items() if v["copied_now"]] == [
        "events"]
    assert pg_counts(target_url, expected) == expected


def test_two_moves_into_one_database_do_not_run_at_once(source, target_url):
    import psycopg

    from sync.central.move import MOVE_LOCK

    with psycopg.connect(target_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [MOVE_LOCK])
        result = migrate(source["data"], target_url)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: another move into this PostgreSQL database is "
                                     "running; wait for it to finish.")
    assert pg_rows(target_url, "SELECT COUNT(*) AS n FROM information_schema.tables "
                               "WHERE table_schema = current_schema()") == [{"n": 0}]
