"""The login limiter: per (name, address), and per address whatever the names."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from sync.central.app import create_app
from sync.central.dashboard import accounts
from sync.central.storage import CentralStore
from tests.support.clock import FakeClock
from tests.support.hashing import fast_hasher


def test_one_name_is_limited_from_one_address():
    clock = FakeClock()
    limiter = accounts.LoginRateLimiter(limit=5, window_s=60, clock=clock.seconds, address_limit=20)
    for _ in range(5):
        assert limiter.retry_after("Alice", "10.0.0.1") == 0
        limiter.failed("Alice", "10.0.0.1")
    # One rule with the API's token limiter: the wait is until the oldest counted failure is
    # window_s old.
    assert limiter.retry_after(" alice ", "10.0.0.1") == 60
    assert limiter.retry_after("alice", "10.0.0.2") == 0
    assert limiter.address_retry_after("10.0.0.1") == 0
    clock.advance(seconds=61)
    assert limiter.retry_after("alice", "10.0.0.1") == 0


def test_one_password_across_many_names_is_limited_per_address():
    clock = FakeClock()
    limiter = accounts.LoginRateLimiter(limit=5, window_s=60, clock=clock.seconds, address_limit=20)
    for index in range(20):
        assert limiter.address_retry_after("10.0.0.1") == 0
        limiter.failed(f"name-{index}", "10.0.0.1")
        clock.advance(seconds=1)
    # Every name is under its own limit, the address is at its cap until its oldest failure
    # leaves the window.
    assert limiter.retry_after("name-0", "10.0.0.1") == 0
    assert limiter.address_retry_after("10.0.0.1") == 40
    assert limiter.address_retry_after("10.0.0.2") == 0
    # A successful login (an account of one's own) does not reset the address's count.
    limiter.succeeded("name-0", "10.0.0.1")
    assert limiter.address_retry_after("10.0.0.1") == 40
    clock.advance(seconds=40)
    assert limiter.address_retry_after("10.0.0.1") == 0


def _post_login(client: TestClient, name: str, password: str):
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        data={"username": name, "password": password, "csrf": csrf, "next": "/"},
        follow_redirects=False,
    )


def test_the_login_form_answers_429_once_an_address_tried_too_many_names(tmp_path):
    accounts.set_hasher(fast_hasher())
    store = CentralStore(tmp_path)
    with store.write() as db:
        accounts.add_user(db, "manager", "calm waters 2026")
    store.close()
    with TestClient(create_app(tmp_path), base_url="https://testserver") as client:
        limiter = client.app.state.login_limiter
        for index in range(limiter.address_limit):
            answer = _post_login(client, f"guess-{index}", "Summer2026!")
            assert answer.status_code == 401
        answer = _post_login(client, "guess-next", "Summer2026!")
        assert answer.status_code == 429
        assert "from this computer" in answer.text and "Wait" in answer.text
        assert int(answer.headers["Retry-After"]) > 0
        # The right password is refused too while the address is at its cap.
        assert _post_login(client, "manager", "calm waters 2026").status_code == 429
