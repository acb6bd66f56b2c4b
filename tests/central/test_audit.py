"""The audit trail: written by the admin commands and the dashboard in the change's own
transaction (rolled back with it), append-only, never holding a secret; read on the Audit page,
as CSV and through GET /api/v1/audit with an admin token only; the migration that made every
existing login and token an admin of every site."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys

import pytest
import requests

from sync.central import audit, auth, cli
from sync.central.dashboard import accounts
from sync.central.migrations import MIGRATIONS, SCHEMA_VERSION, _roles_scopes_and_audit, migrate
from sync.central.storage import CentralStore, connect, database_path
from tests.central.test_cli import ROOT, run_in_process
from tests.support.hashing import fast_hasher


def run(*args: str, input: str = "") -> subprocess.CompletedProcess:
    """``python main.py ...`` as an operator types it, with ``input`` on standard input."""
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, input=input)


def _trail(data_dir) -> list[dict]:
    db = connect(database_path(data_dir))
    try:
        return list(db.query("SELECT * FROM audit ORDER BY id"))
    finally:
        db.close()


def _dump(data_dir) -> str:
    """Every row of every table, as text: where a secret would show if it were stored."""
    db = connect(database_path(data_dir))
    try:
        return "\n".join(iterdump_line for iterdump_line in db.conn.iterdump())
    finally:
        db.close()


def test_admin_commands_are_recorded_with_who_where_before_and_after(tmp_path, capsys):
    data = str(tmp_path)
    code, out, _ = run_in_process(capsys, "device", "add", "--data", data, "--site", "North",
                                  "--name", "desk-1")
    assert code == 0
    device = json.loads(out)
    run_in_process(capsys, "site", "set", "--data", data, "--site", "North",
                   "--target-wait-min", "20")
    code, out, _ = run_in_process(capsys, "token", "add", "--data", data, "--name", "bi",
                                  "--sites", "North")
    token = json.loads(out)
    run_in_process(capsys, "token", "revoke", "--data", data, "--id", token["token_id"])
    run_in_process(capsys, "device", "revoke", "--data", data, "--device", device["device_id"])
    run_in_process(capsys, "alert", "rule", "set", "--data", data, "--site", "North",
                   "--rule", "long_wait", "--multiple", "3")
    run_in_process(capsys, "purge", "--data", data, "--days", "400")

    trail = _trail(tmp_path)
    assert [row["action"] for row in trail] == [
        "device.add", "site.set", "token.add", "token.revoke", "device.revoke",
        "alert_rule.set", "data.purge"]
    assert {row["actor_kind"] for row in trail} == {"command"}
    assert {row["origin"] for row in trail} == {"local"}
    assert all(row["actor"].startswith("command:") for row in trail)
    site_set = trail[1]
    assert json.loads(site_set["before_json"])["target_wait_min"] == 15
    assert json.loads(site_set["after_json"])["target_wait_min"] == 20
    rule = trail[5]
    assert json.loads(rule["before_json"])["multiple"] == 2
    assert json.loads(rule["after_json"])["multiple"] == 3
    dump = _dump(tmp_path)
    assert device["token"] not in dump and token["token"] not in dump


def test_token_revoke_records_the_tokens_real_state_before(tmp_path, capsys):
    data = str(tmp_path)
    code, out, _ = run_in_process(capsys, "token", "add", "--data", data, "--name", "bi")
    token_id = json.loads(out)["token_id"]
    for _ in range(2):  # the second revoke finds it revoked already, and says so
        assert run_in_process(capsys, "token", "revoke", "--data", data, "--id", token_id)[0] == 0
    revokes = [row for row in _trail(tmp_path) if row["action"] == "token.revoke"]
    assert [json.loads(row["before_json"]) for row in revokes] == [
        {"name": "bi", "revoked": False}, {"name": "bi", "revoked": True}]
    code, _, err = run_in_process(capsys, "token", "revoke", "--data", data, "--id", "nope")
    assert code == 2 and "no reporting token with id 'nope'" in err
    assert len([r for r in _trail(tmp_path) if r["action"] == "token.revoke"]) == 2


def test_the_embedded_stores_first_admin_and_enrolment_are_recorded(tmp_path):
    from sync.central.dashboard import one_time_login_url
    from sync.central.embedded import start_embedded

    with start_embedded(tmp_path, port=0) as central:
        central.enrol("North", "desk-1")
        central.enrol("North", "desk-1")  # reused: nothing new to record
    one_time_login_url(tmp_path, "http://127.0.0.1:1")
    one_time_login_url(tmp_path, "http://127.0.0.1:1")  # the admin exists: no second one
    trail = _trail(tmp_path)
    assert [(row["action"], row["actor_kind"], row["origin"]) for row in trail] == [
        ("device.add", "command", "local"), ("user.add", "command", "local")]
    assert json.loads(trail[0]["after_json"]) == {"site": "North", "name": "desk-1",
                                                  "by": "embedded store"}
    added = json.loads(trail[1]["after_json"])
    assert added["role"] == "admin" and added["password"] == "(set)"
    assert trail[1]["target"] == "admin"


def test_demo_data_records_its_sites_and_kiosks(tmp_path):
    from sync.central.dashboard import demo

    store = CentralStore(tmp_path)
    try:
        demo.fill(store, days=1, visits=20)
        devices = store.db.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
        site_count = store.db.execute("SELECT COUNT(*) FROM sites").fetchone()[0]
    finally:
        store.close()
    actions = [row["action"] for row in _trail(tmp_path)]
    assert actions.count("device.add") == devices and actions.count("site.set") == site_count
    assert all(json.loads(row["after_json"])["by"] == "demo-data" for row in _trail(tmp_path))


def test_a_failed_change_leaves_no_audit_row_and_no_change(tmp_path, capsys):
    data = str(tmp_path)
    run_in_process(capsys, "site", "set", "--data", data, "--site", "North",
                   "--target-wait-min", "15")
    before = _trail(tmp_path)
    # The wait target is written first; the opening hours then fail (before the audit row,
    # which is written last), and the whole transaction goes, the target with it.
    code, _, err = run_in_process(capsys, "site", "set", "--data", data, "--site", "North",
                                  "--target-wait-min", "25", "--opening-hours", "mon 25:00-26:00")
    assert code == 2 and err.startswith("error:")
    assert _trail(tmp_path) == before
    store = CentralStore(tmp_path)
    try:
        assert store.db.execute("SELECT target_wait_min FROM sites").fetchone()[0] == 15
    finally:
        store.close()


def test_a_command_failing_after_its_audit_row_leaves_neither(tmp_path, capsys, monkeypatch):
    """A failure after ``audit.record`` (as a full disk would give, which a test cannot cause
    for real at that instant) rolls back the change and its audit row through the CLI."""
    data = str(tmp_path)
    run_in_process(capsys, "site", "set", "--data", data, "--site", "North",
                   "--target-wait-min", "15")
    before = _trail(tmp_path)
    real_record = audit.record

    def record_then_fail(db, *args, **kwargs):
        real_record(db, *args, **kwargs)
        assert db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == len(before) + 1
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(audit, "record", record_then_fail)
    code, _, err = run_in_process(capsys, "site", "set", "--data", data, "--site", "North",
                                  "--target-wait-min", "25")
    assert code == 2 and "could not be used: database or disk is full" in err
    monkeypatch.undo()
    assert _trail(tmp_path) == before
    store = CentralStore(tmp_path)
    try:
        assert store.db.execute("SELECT target_wait_min FROM sites").fetchone()[0] == 15
    finally:
        store.close()


def test_the_audit_row_is_rolled_back_with_its_change_inside_one_transaction(tmp_path):
    store = CentralStore(tmp_path)
    try:
        with pytest.raises(RuntimeError), store.write() as db:
            auth.add_device(db, "North", "desk-1")
            audit.record(db, audit.command_actor(), "device.add", "x", "North")
            raise RuntimeError("the change fails after its audit row was written")
        assert store.db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
        assert store.db.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0
    finally:
        store.close()


def test_the_trail_is_append_only(tmp_path):
    store = CentralStore(tmp_path)
    try:
        with store.write() as db:
            audit.record(db, audit.command_actor(), "data.purge")
        for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"), store.write() as db:
                db.execute(statement)
        assert store.db.execute("SELECT actor FROM audit").fetchone()[0].startswith("command:")
    finally:
        store.close()


def test_secrets_are_never_written():
    scrubbed = audit.scrub({"url": "https://hooks.example/x", "secret": "s3cret",
                            "smtp_password": "pw", "token": "rep_x", "nested": {"password": ""},
                            "name": "desk-1"})
    assert scrubbed == {"url": "https://hooks.example/x", "secret": "(set)",
                        "smtp_password": "(set)", "token": "(set)",
                        "nested": {"password": None}, "name": "desk-1"}


def test_user_add_with_a_role_and_sites_and_its_refusals(tmp_path, capsys):
    data = str(tmp_path)
    for site in ("North", "South"):
        run_in_process(capsys, "site", "set", "--data", data, "--site", site)
    added = run("user", "add", "--data", data, "--name", "north-manager", "--password-stdin",
                "--role", "manager", "--sites", "North,South", input="steady rivers of tea\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["role"] == "manager"
    assert json.loads(added.stdout)["sites"] == ["North", "South"]
    typo = run("user", "add", "--data", data, "--name", "x-viewer", "--password-stdin",
               "--role", "viewer", "--sites", "Nroth", input="steady rivers of tea\n")
    assert typo.returncode == 2 and typo.stderr == "error: there is no site named 'Nroth'.\n"
    common = run("user", "add", "--data", data, "--name", "weak", "--password-stdin",
                 input="password1234\n")
    assert common.returncode == 2
    assert "common and breached passwords" in common.stderr
    short = run("user", "add", "--data", data, "--name", "weak", "--password-stdin",
                input="eleven char\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    listed = json.loads(run_in_process(capsys, "user", "list", "--data", data)[1])
    assert [(p["name"], p["role"], p["sites"]) for p in listed] == [
        ("north-manager", "manager", ["North", "South"])]
    trail = _trail(tmp_path)
    user_rows = [row for row in trail if row["action"].startswith("user.")]
    assert [row["action"] for row in user_rows] == ["user.add"]
    assert "steady rivers" not in _dump(tmp_path)


def test_token_add_with_sites_or_admin_and_their_refusals(tmp_path, capsys):
    data = str(tmp_path)
    run_in_process(capsys, "site", "set", "--data", data, "--site", "North")
    code, out, _ = run_in_process(capsys, "token", "add", "--data", data, "--name", "north-bi",
                                  "--sites", "North")
    assert code == 0 and json.loads(out)["sites"] == ["North"]
    assert json.loads(out)["role"] == "viewer"
    code, out, _ = run_in_process(capsys, "token", "add", "--data", data, "--name", "auditor",
                                  "--admin")
    assert code == 0 and json.loads(out)["role"] == "admin" and json.loads(out)["sites"] == "all"
    code, _, err = run_in_process(capsys, "token", "add", "--data", data, "--name", "odd",
                                  "--admin", "--sites", "North")
    assert code == 2 and "an admin token reads every site" in err
    code, _, err = run_in_process(capsys, "token", "add", "--data", data, "--name", "typo",
                                  "--sites", "Nowhere")
    assert (code, err) == (2, "error: there is no site named 'Nowhere'.\n")
    # An empty or blank --sites is not "every site" (an unset shell variable gives it).
    for blank in ("", " , ", ","):
        code, _, err = run_in_process(capsys, "token", "add", "--data", data, "--name",
                                      "blank", "--sites", blank)
        assert code == 2 and "names no site" in err and "the word all" in err, blank
    user = run("user", "add", "--data", data, "--name", "blank-viewer", "--password-stdin",
               "--role", "viewer", "--sites", " , ", input="steady rivers of tea\n")
    assert user.returncode == 2 and "names no site" in user.stderr
    code, out, _ = run_in_process(capsys, "token", "add", "--data", data, "--name", "group-bi",
                                  "--sites", "ALL")
    assert code == 0 and json.loads(out)["sites"] == "all"
    tokens = [row for row in _trail(tmp_path) if row["action"] == "token.add"]
    assert [json.loads(row["after_json"])["name"] for row in tokens] == [
        "north-bi", "auditor", "group-bi"]
    assert "blank-viewer" not in _dump(tmp_path)


def test_existing_logins_and_tokens_become_admins_of_every_site(tmp_path):
    accounts.set_hasher(fast_hasher())
    before = MIGRATIONS.index(_roles_scopes_and_audit)
    db = connect(database_path(tmp_path))
    try:
        migrate(db, target=before)
        db["users"].insert({"id": "u1", "name": "front-desk", "password_hash": "x",
                            "created_at": "2026-01-01T00:00:00.000Z"})
        db["reporting_tokens"].insert({"id": "t1", "name": "bi", "token_sha256": "abc",
                                       "revoked": 0, "created_at": "2026-01-01T00:00:00.000Z"})
        assert migrate(db) == SCHEMA_VERSION
        assert db.execute("SELECT role, sites, disabled FROM users").fetchone() == \
            ("admin", None, 0)
        assert db.execute("SELECT role, sites FROM reporting_tokens").fetchone() == \
            ("admin", None)
        # A later insert that names no role gets the least one, never admin.
        db["users"].insert({"id": "u2", "name": "later", "password_hash": "x",
                            "created_at": "2026-01-02T00:00:00.000Z"})
        db["reporting_tokens"].insert({"id": "t2", "name": "later-bi", "token_sha256": "def",
                                       "revoked": 0, "created_at": "2026-01-02T00:00:00.000Z"})
        assert db.execute("SELECT role FROM users WHERE id = 'u2'").fetchone() == ("viewer",)
        assert db.execute("SELECT role FROM reporting_tokens WHERE id = 't2'").fetchone() == \
            ("viewer",)
    finally:
        db.close()


# --- reading the trail -----------------------------------------------------------------------


@pytest.fixture
def audited(central_server):
    """A store with a few recorded changes and an admin and a viewer reporting token."""
    accounts.set_hasher(fast_hasher())
    store = central_server.embedded.store
    with store.write() as db:
        admin_token = auth.add_reporting_token(db, "auditor", admin=True)[1]
        viewer_token = auth.add_reporting_token(db, "bi")[1]
        accounts.add_user(db, "admin", "quiet harbour lanterns", role="admin")
        for action, site in (("site.set", "North"), ("site.set", "South"),
                             ("user.change", None)):
            audit.record(db, audit.Actor("command", "command:root", "local"), action, site,
                         site, {"secret": "old"}, {"secret": "new", "target_wait_min": 20})
    return central_server, admin_token, viewer_token


def test_the_audit_api_needs_an_admin_token_and_filters(audited):
    central, admin_token, viewer_token = audited
    url = central.url("/api/v1/audit")
    refused = requests.get(url, headers={"Authorization": f"Bearer {viewer_token}"}, timeout=10)
    assert refused.status_code == 403 and "may not do this" in refused.json()["detail"]
    headers = {"Authorization": f"Bearer {admin_token}"}
    everything = requests.get(url, headers=headers, timeout=10).json()["entries"]
    assert [e["action"] for e in everything] == ["user.change", "site.set", "site.set"]
    assert everything[0]["after"] == {"secret": "(set)", "target_wait_min": 20}
    north = requests.get(url, params={"site": "North"}, headers=headers, timeout=10).json()
    assert [e["site"] for e in north["entries"]] == ["North"]
    prefix = requests.get(url, params={"action": "site."}, headers=headers, timeout=10).json()
    assert len(prefix["entries"]) == 2
    bad = requests.get(url, params={"from": "yesterday"}, headers=headers, timeout=10)
    assert bad.status_code == 422 and "'from' must be an RFC 3339 instant" in \
        bad.json()["detail"]
    unknown = requests.get(url, params={"who": "x"}, headers=headers, timeout=10)
    assert unknown.status_code == 422


def test_the_audit_page_and_its_csv_for_an_admin_login(audited):
    central, _, _ = audited
    session = requests.Session()
    form = session.get(central.url("/login"), timeout=10).text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    logged_in = session.post(central.url("/login"), timeout=10, data={
        "username": "admin", "password": "quiet harbour lanterns", "csrf": csrf})
    assert logged_in.status_code == 200
    page = session.get(central.url("/audit"), params={"action": "site.set"}, timeout=10)
    assert page.status_code == 200 and page.text.count('data-action="site.set"') == 2
    assert 'data-action="user.change"' not in page.text
    exported = session.get(central.url("/audit.csv"), timeout=10)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["action"] for row in rows] == ["site.set", "site.set", "user.change", "login"]
    assert rows[-1]["actor"] == "user:admin" and rows[-1]["origin"] == "127.0.0.1"
    assert "old" not in exported.text and "new" not in exported.text.replace("new_", "")
    bad = session.get(central.url("/audit"), params={"from": "soon"}, timeout=10)
    assert bad.status_code == 422
    # The last day a date picker offers: the day after it is past what a date can hold.
    for path in ("/audit", "/audit.csv"):
        beyond = session.get(central.url(path), params={"to": "9999-12-31"}, timeout=10)
        assert beyond.status_code == 422 and "outside the days" in beyond.text, path
    last = session.get(central.url("/audit.csv"), params={"to": "9999-12-30"}, timeout=10)
    assert last.status_code == 200 and len(list(csv.DictReader(io.StringIO(last.text)))) == 4


def test_logins_and_failed_logins_are_recorded_without_the_password(audited):
    central, _, _ = audited
    session = requests.Session()
    for name, password in (("admin", "not the password at all"),
                           ("quiet harbour lanterns", "typed into the wrong field"),
                           ("admin", "quiet harbour lanterns")):
        form = session.get(central.url("/login"), timeout=10).text
        csrf = form.split('name="csrf" value="')[1].split('"')[0]
        session.post(central.url("/login"), timeout=10, allow_redirects=False,
                     data={"username": name, "password": password, "csrf": csrf})
    rows = central.rows("SELECT actor, action, target, after_json FROM audit "
                        "WHERE action LIKE 'login%' ORDER BY id")
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [
        ("anonymous", "login.failed", "admin"),
        ("anonymous", "login.failed", "(not a login name)"),
        ("user:admin", "login", "admin")]
    everything = json.dumps(central.rows("SELECT * FROM audit"))
    assert "lanterns" not in everything and "wrong field" not in everything


def test_cli_main_lists_people_in_help():
    assert "user list" in cli.__doc__


def test_user_add_will_not_demote_the_last_admin(tmp_path):
    first = run("user", "add", "--data", str(tmp_path), "--name", "admin", "--password-stdin",
                input="quiet harbour lanterns\n")
    assert first.returncode == 0, first.stderr
    demoted = run("user", "add", "--data", str(tmp_path), "--name", "admin", "--password-stdin",
                  "--role", "viewer", input="quiet harbour lanterns\n")
    assert demoted.returncode == 2 and "last admin" in demoted.stderr


def test_a_role_or_admin_totp_value_that_does_not_exist_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as role:
        cli.main(["user", "add", "--data", str(tmp_path), "--name", "x", "--role", "owner"])
    assert role.value.code == 2 and "invalid choice: 'owner'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as totp:
        cli.main(["site", "set", "--data", str(tmp_path), "--site", "North", "--admin-totp",
                  "sometimes"])
    assert totp.value.code == 2 and "invalid choice: 'sometimes'" in capsys.readouterr().err
    code, out, _ = run_in_process(capsys, "site", "set", "--data", str(tmp_path), "--site",
                                  "North", "--admin-totp", "required")
    assert code == 0 and json.loads(out)["admin_totp"] == "required"
    assert _trail(tmp_path)[-1]["after_json"].count('"admin_totp": "required"') == 1
