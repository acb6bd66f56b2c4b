"""Fixtures for the reliability scenarios: the live central server (the shared fixture)."""

from tests.support.central_server import central_server  # noqa: F401  (a fixture)
