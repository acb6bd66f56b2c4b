"""Property-based requests generated from our own OpenAPI spec: never a 500, always the
documented response shape. In-process (ASGI), a few dozen examples per operation.

The app is built by a fixture when the test runs (never while pytest collects), over a data
directory of the test's own, and closed afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from sync.central import auth
from sync.central.app import create_app
from sync.central.permissions import Scope


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory) -> Iterator[tuple]:
    """The app, and a device token and a reporting token it accepts."""
    app = create_app(tmp_path_factory.mktemp("central-fuzz"))
    with app.state.store.write() as db:
        device_token = auth.add_device(db, "Test Clinic", "Desk 1")[1]
        # A token of one site: the reporting routes answer other sites as unknown ones.
        reporting_token = auth.add_reporting_token(
            db, "fuzz", Scope(frozenset({"Test Clinic"})))[1]
        admin_token = auth.add_reporting_token(db, "auditor", admin=True)[1]
    yield app, device_token, reporting_token, admin_token
    app.state.store.close()


def _fuzz(operation, headers: dict[str, str]) -> int:
    """The operation's generated cases, each checked: never a 500, always the documented
    shape. Returns how many were sent."""
    sent = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def answers_as_documented(case):
        sent.append(case)
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )

    answers_as_documented()
    return len(sent)


def test_the_api_never_fails_and_answers_as_documented(fuzzed_app):
    """Every operation of the spec, each with its own generated cases."""
    app, device_token, reporting_token, admin_token = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/events", "/api/v1/metrics"}
    for operation in operations:
        reporting = operation.path in ("/api/v1/metrics", "/api/v1/alerts")
        token = reporting_token if reporting else device_token
        if operation.path == "/api/v1/audit":
            token = admin_token
        assert _fuzz(operation, {"Authorization": f"Bearer {token}"}) > 0, operation.path
