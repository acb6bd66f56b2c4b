"""Set-up: the commands use another virtual environment as it is when it has everything, so
a packager's, a CI image's or an IDE's environment runs the tests without a .venv."""

from __future__ import annotations

import sys

from kiosk import bootstrap


def test_dot_venv_itself_is_not_another_environment(monkeypatch):
    monkeypatch.setattr(sys, "prefix", str(bootstrap.VENV))
    assert not bootstrap._in_other_environment(with_tests=True)


def test_another_environment_with_every_dependency_is_used_as_it_is(monkeypatch, tmp_path):
    # The modules are the ones this interpreter has: only the environment's place differs.
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "ci-image-env"))
    assert bootstrap._in_other_environment(with_tests=True)


def test_another_environment_missing_a_dependency_gets_dot_venv(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "half-made-env"))
    monkeypatch.setattr(bootstrap, "TEST_MODULES", (*bootstrap.TEST_MODULES, "not_installed_x"))
    assert bootstrap._in_other_environment(with_tests=False)
    assert not bootstrap._in_other_environment(with_tests=True)


def test_the_system_python_is_not_an_environment(monkeypatch):
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    assert not bootstrap._in_other_environment(with_tests=False)
