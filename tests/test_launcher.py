"""The kiosk launcher's failures happen before any window opens (no Kivy needed here)."""

from __future__ import annotations

from kiosk import launcher


def test_a_bad_config_prints_the_sentence_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "kiosk.toml"
    bad.write_text('role = "lobby"\n')
    assert launcher.main(["--config", str(bad), "--data", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "role" in error and "lobby" in error


def test_a_missing_config_exits_2(tmp_path, capsys):
    assert launcher.main(["--config", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_arguments():
    args = launcher.parse_args(["--windowed", "--data", "/tmp/x"])
    assert args.windowed and str(args.data) == "/tmp/x" and args.config is None

