"""Secrets stay secret: the device token and the staff PIN appear in no log and in no database
file in clear; the PIN lockout survives the kiosk being killed and started again."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from kiosk.config import load_settings
from kiosk.pin import PinLock
from kiosk.store import Store
from sync.client import SyncClient
from sync.loop import SyncLoop
from tests.reliability import figures
from tests.reliability.helpers import ROOT, CentralProcess
from tests.support.hashing import fast_hasher
from tests.support.waiting import wait_until

PIN = "73915046"
FAST = fast_hasher()


def _files_containing(folder: Path, secrets: dict[str, bytes]) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{name} in {path.name}" for name, secret in secrets.items()
                      if secret in data]
    return found


def test_the_token_and_the_pin_never_reach_a_log_or_a_database(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    central = CentralProcess(tmp_path / "central", log_level="debug").start()
    try:
        _, token = central.enrol()
        settings = load_settings(environ={}, data_dir=str(tmp_path / "kiosk"),
                                 central_url=central.url, central_token=token)
        store = Store(settings.database_path)
        pin = PinLock(store, hasher=FAST)
        pin.set_pin(PIN)
        assert not pin.verify("00000000") and pin.verify(PIN)
        client = SyncClient(store, settings.central_url, settings.central_token)
        loop = SyncLoop(store, client, heartbeat_s=3600, base_delay=0.05, max_delay=0.2)
        loop.start()
        store.record("rating.submitted", {"score": 5, "scale": 5, "tags": [], "misuse": False})
        wait_until(lambda: store.sync_status().backlog == 0, what="the sync")
        assert loop.stop(timeout=5)
        # A refused token must not be echoed either (a typo of the real one is still a secret).
        wrong = SyncClient(store, central.url, token[:-4] + "XXXX")
        store.record("rating.submitted", {"score": 1, "scale": 5, "tags": [], "misuse": False})
        assert wrong.sync_once().token_refused
        wrong.close()
        client.close()
        store.close()
    finally:
        central.stop()
    secrets = {"token": token.encode(), "token body": token[4:].encode(), "PIN": PIN.encode(),
               "mistyped token": (token[:-4] + "XXXX").encode()}
    logs = "".join(central.log) + caplog.text
    assert len(central.log) > 3  # the access log was on: it really was written
    leaked = [name for name, secret in secrets.items() if secret.decode() in logs]
    leaked += _files_containing(tmp_path / "kiosk", secrets)
    leaked += _files_containing(tmp_path / "central", secrets)
    assert not leaked, leaked
    figures.record("secrets", title="Token and PIN in logs and database files",
                   figures={"log_lines_checked": len(central.log) + len(caplog.records),
                            "files_checked": sum(1 for p in tmp_path.rglob("*") if p.is_file()),
                            "found_in_clear": 0})


LOCK_OUT = """
import os, signal, sys
from kiosk.pin import PinLock
from kiosk.store import Store
from tests.support.hashing import fast_hasher
pin = PinLock(Store(sys.argv[1]), hasher=fast_hasher())
pin.set_pin(sys.argv[2])
for _ in range(PinLock.FREE_ATTEMPTS):
    pin.verify("0000")
print(pin.seconds_locked(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no clean shutdown: the lockout must already be on disk
"""

TRY_PIN = """
import json, sys
from kiosk.errors import PinLocked
from kiosk.pin import PinLock
from kiosk.store import Store
from tests.support.hashing import fast_hasher
pin = PinLock(Store(sys.argv[1]), hasher=fast_hasher())
try:
    print(json.dumps({"unlocked": pin.verify(sys.argv[2])}))
except PinLocked as error:
    print(json.dumps({"locked_for": error.seconds_left, "message": str(error)}))
"""


def test_the_pin_lockout_survives_a_kill_and_a_restart(tmp_path):
    database = str(tmp_path / "kiosk.sqlite")
    first = subprocess.run([sys.executable, "-c", LOCK_OUT, database, PIN], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == -9 and float(first.stdout) > 0, first.stderr[-2000:]
    second = subprocess.run([sys.executable, "-c", TRY_PIN, database, PIN], cwd=ROOT,
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ})
    answer = json.loads(second.stdout)
    assert answer.get("locked_for", 0) > 0, answer  # even the right PIN waits
    assert "Too many wrong PINs" in answer["message"]
