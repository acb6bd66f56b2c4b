"""A kiosk's token check never holds up the server's event loop while the database waits.

On SQLite the check runs on the event loop on a connection that never waits (a lock makes it
fail at once and go to the thread pool). On PostgreSQL every read is a round trip to another
server, which may stall: the check then runs in the thread pool, so the other requests (and
``/healthz``'s answer that the store is alive) are still served meanwhile. The stall here is
real: another session holds an ACCESS EXCLUSIVE lock on ``devices``, which the check reads.
"""

from __future__ import annotations

import threading
import time

import psycopg
import requests

from tests.support.central_server import running_central

HELD_S = 4.0


def test_a_stalled_token_check_leaves_other_requests_served(tmp_path, postgres_url):
    with running_central(tmp_path / "central", database_url=postgres_url) as server:
        device = server.add_device()
        stalled: dict = {}
        with psycopg.connect(postgres_url, autocommit=True) as locker:
            locker.execute("BEGIN")
            locker.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
            let_go = threading.Timer(HELD_S, locker.execute, ["ROLLBACK"])
            let_go.start()

            def post() -> None:
                stalled["answer"] = server.post_events(device, [])

            kiosk = threading.Thread(target=post)
            kiosk.start()
            time.sleep(0.5)  # the kiosk's request is now waiting on the lock
            asked = time.monotonic()
            other = requests.get(server.url("/openapi.json"), timeout=HELD_S * 3)
            answered_in = time.monotonic() - asked
            let_go.join()
        kiosk.join(30)
    assert other.status_code == 200
    # Served while the lock was still held, not after it was let go.
    assert answered_in < HELD_S / 2, answered_in
    assert stalled["answer"].status_code == 200, stalled["answer"].text
