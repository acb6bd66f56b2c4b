"""Fixtures for the reliability scenarios: the live central server (the shared fixture), and
the engine each test's figures are recorded under."""

import pytest

from tests.reliability import figures
from tests.support.central_server import central_server  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def _figures_engine(request):
    """Figures recorded by this test go under its central store engine: the ``central_engine``
    parameter of a test run on both engines, else SQLite (the suite's store until then)."""
    callspec = getattr(request.node, "callspec", None)
    figures.set_engine(callspec.params.get("central_engine", "sqlite") if callspec else "sqlite")
    yield
    figures.set_engine("sqlite")
