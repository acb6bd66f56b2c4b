"""A server that lies with JSON nested a few thousand levels deep (4 KB of brackets): Python's
parser raises RecursionError, not ValueError. Every answer the kiosk reads (a batch's results,
an error's detail, the site's config, an enrolment poll) takes it as an answer that is not
JSON: nothing is marked sent, and the sync loop lives on (its thread once died of it)."""

from __future__ import annotations

from kiosk.enrolment import Request
from sync.client import SyncClient
from sync.enrol_client import EnrolmentClient
from sync.loop import SyncLoop
from tests.support.waiting import wait_until
from tests.sync.conftest import TEST_TIMEOUTS, UNSENT_TOKEN, tap
from tests.sync.scripted_server import Reply, ScriptedServer

DEEP = b"[" * 5000 + b"]" * 5000


def deep_server(status: int = 200) -> ScriptedServer:
    return ScriptedServer(lambda request: Reply(status, DEEP,
                                                {"Content-Type": "application/json"}))


def one_pass(kiosk_store, status: int):
    """One tap, then one sync pass against a server answering ``status`` with DEEP."""
    server = deep_server(status)
    client = SyncClient(kiosk_store, server.url, UNSENT_TOKEN, timeouts=TEST_TIMEOUTS)
    try:
        tap(kiosk_store)
        return client.sync_once()
    finally:
        client.close()
        server.close()


def test_a_deep_answer_to_a_batch_marks_nothing_and_says_what_is_wrong(kiosk_store):
    result = one_pass(kiosk_store, 200)
    assert not result.ok and "not JSON" in result.error
    assert kiosk_store.sync_status().backlog == 1


def test_a_deep_error_detail_is_still_an_error_with_a_reason(kiosk_store):
    result = one_pass(kiosk_store, 422)
    assert not result.ok and kiosk_store.sync_status().backlog == 1


def test_a_deep_site_config_leaves_the_loop_running(kiosk_store):
    server = deep_server()
    client = SyncClient(kiosk_store, server.url, UNSENT_TOKEN, timeouts=TEST_TIMEOUTS)
    assert client.fetch_config() is None
    loop = SyncLoop(kiosk_store, client, heartbeat_s=3600)
    loop.start()
    try:
        # Its passes fail (the batch answer is as deep), the config is asked for at each
        # successful one; either way the thread goes on.
        wait_until(lambda: loop.status().consecutive_failures >= 1, what="a failed pass")
        assert loop.status().running
    finally:
        assert loop.stop()
        client.close()
        server.close()


def test_a_deep_enrolment_answer_reads_as_no_json(tmp_path):
    server = deep_server(status=400)
    client = EnrolmentClient()
    try:
        status, document = client.send(Request("token", server.url, device_code="x"), None)
    finally:
        client.close()
        server.close()
    assert (status, document) == (400, None)
