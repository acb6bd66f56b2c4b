"""The live central server for the FFT and comment tests."""

from tests.support.central_server import central_server  # noqa: F401  (a fixture)
