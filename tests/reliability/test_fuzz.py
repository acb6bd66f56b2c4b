"""Schemathesis against the live central store's /openapi.json, over HTTP on 127.0.0.1.

Every operation of the public API, with generated valid *and* invalid data (``--mode all``),
every check (``--checks all``: no 5xx, status codes, content types, headers and bodies as
documented, invalid data rejected, valid data accepted, auth that is not ignored when left out
or wrong, unsupported methods, ...), run in two passes so each operation carries the right
kind of token.

Two checks have their expected statuses widened for the operations whose contract needs it
(``schemathesis.toml``), and three checks of ours (``schemathesis_checks.py``) make them exact
again: ``POST /api/v1/events`` answers an invalid event per event (200 with that event
``rejected``: one bad event must not block the batch), the reporting routes refuse
``from`` ≥ ``to`` and instants outside 0001-01-02..9999-12-30 with a 422, rules that OpenAPI
cannot state, and the
FFT return refuses a range of months that runs backwards or past 36 months with a 400.

tests/central/test_openapi_fuzz.py fuzzes the same spec in-process with valid tokens only;
this one goes over the wire, adds the negative and missing-auth cases, and counts the cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync.central import auth
from sync.central.permissions import Scope
from tests.reliability import figures
from tests.reliability.helpers import ROOT

# Schemathesis' own entry point in the interpreter running the tests: whichever virtual
# environment that is (.venv, a packager's, an IDE's), never a path inside the checkout.
SCHEMATHESIS = [sys.executable, "-c",
                "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"]
CONFIG = Path(__file__).with_name("schemathesis.toml")
OUR_CHECKS = "tests.reliability.schemathesis_checks"
CHECKS_SUMMARY = "all (3 widened per operation, made exact by 3 of ours); a one-site token"
# Each pass: the operations it covers and the token it carries. The reporting pass carries a
# token scoped to one site (the fuzzer's other site names must answer as unknown ones); the
# audit trail needs an admin token.
PASSES = {
    "device": r"^/api/v1/(events|config)$",
    "reporting": r"^/(api/v1/(metrics|alerts|export/.+)|healthz)$",
    "audit": r"^/api/v1/audit$",
}
EXAMPLES = 120


@pytest.mark.slow
def test_the_live_api_survives_schemathesis_with_every_check(central_server, tmp_path):
    started = time.monotonic()
    # The fuzzer sends wrong and missing tokens on purpose; it must not be rate limited.
    central_server.embedded.app.state.auth_failures.limit = 10**9
    device = central_server.add_device()
    with central_server.embedded.store.write() as db:
        scoped = auth.add_reporting_token(db, "one site", Scope(frozenset({device.site})))[1]
        admin = auth.add_reporting_token(db, "auditor", admin=True)[1]
    tokens = {"device": device.token, "reporting": scoped, "audit": admin}
    generated = 0
    operations = 0
    for name, paths in PASSES.items():
        report = tmp_path / f"schemathesis-{name}.json"
        run = subprocess.run(
            [*SCHEMATHESIS, "--config-file", str(CONFIG), "run",
             central_server.url("/openapi.json"), "--checks", "all", "--mode", "all",
             "--max-examples", str(EXAMPLES), "--include-path-regex", paths,
             "--header", f"Authorization: Bearer {tokens[name]}",
             "--workers", "2", "--suppress-health-check", "all", "--request-timeout", "10",
             "--report", "json", "--report-json-path", str(report)],
            cwd=tmp_path, capture_output=True, text=True, timeout=240,
            env={**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": OUR_CHECKS},
        )
        summary = json.loads(report.read_text())
        assert summary["complete"] and summary["operations"]["errored"] == 0, run.stdout[-4000:]
        assert summary["failures"] == [] and summary["errors"] == [], run.stdout[-6000:]
        assert run.returncode == 0, run.stdout[-4000:]
        generated += summary["test_cases"]["generated"]
        operations += summary["operations"]["tested"]
    # events, config, metrics, alerts, three exports, healthz, audit
    assert operations == 7 + 1 + 1
    figures.record(
        "api_fuzzing",
        title="Schemathesis on the live OpenAPI spec",
        figures={"fuzz_cases_run": generated, "operations": operations,
                 "modes": "positive + negative", "checks": CHECKS_SUMMARY},
        server_errors=0, seconds=time.monotonic() - started,
    )


class _Answer:
    status_code = 422

    def __init__(self, detail):
        self.detail = detail

    def json(self):
        return {"detail": self.detail}


class _ValidCase:
    meta = None


@pytest.mark.parametrize("detail", [
    "'from' must be before 'to'.",
    "'to' must lie between 0001-01-02 and 9999-12-30.",  # CI's seed: to=0001-01-01T18:00:01Z
    "'from' must lie between 0001-01-02 and 9999-12-30.",
])
def test_our_check_accepts_the_documented_range_rules(detail):
    from tests.reliability.schemathesis_checks import (
        valid_data_is_refused_only_for_the_range_rule as check,
    )

    assert check(None, _Answer(detail), _ValidCase()) is None


def test_our_check_still_fails_any_other_refusal_of_valid_data():
    from tests.reliability.schemathesis_checks import (
        valid_data_is_refused_only_for_the_range_rule as check,
    )

    with pytest.raises(AssertionError, match="valid data refused"):
        check(None, _Answer("'site' is unknown."), _ValidCase())
