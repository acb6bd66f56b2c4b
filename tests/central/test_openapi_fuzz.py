"""Property-based requests generated from our own OpenAPI spec: never a 500, always the
documented response shape. In-process (ASGI), a few dozen examples per operation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from sync.central import auth
from sync.central.app import create_app

_app = create_app(Path(tempfile.mkdtemp(prefix="central-fuzz-")))
with _app.state.store.write() as _db:
    _DEVICE_TOKEN = auth.add_device(_db, "Test Clinic", "Desk 1")[1]
    _REPORTING_TOKEN = auth.add_reporting_token(_db, "fuzz")[1]
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@schema.parametrize()
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_api_never_fails_and_answers_as_documented(case):
    reporting = case.path in ("/api/v1/metrics", "/api/v1/alerts")
    token = _REPORTING_TOKEN if reporting else _DEVICE_TOKEN
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
