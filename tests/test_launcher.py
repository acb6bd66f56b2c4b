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



def test_a_data_dir_that_is_a_file_is_a_sentence_naming_the_key(tmp_path, capsys):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    config = tmp_path / "kiosk.toml"
    config.write_text(f'data_dir = "{a_file}"\n')
    assert launcher.main(["--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "data_dir" in error and str(a_file) in error and "Traceback" not in error
    assert launcher.main(["--data", str(a_file / "below")]) == 2
    assert "data_dir" in capsys.readouterr().err


def test_main_lists_its_commands_and_names_an_unknown_one():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def run(*args):
        return subprocess.run([sys.executable, "main.py", *args], cwd=root,
                              capture_output=True, text=True, timeout=30)

    listed = run("help")
    assert listed.returncode == 0 and run("--help").stdout == listed.stdout
    for command in ("central", "device", "token", "site", "user", "purge", "demo-data", "test"):
        assert command in listed.stdout
    typo = run("centrl", "--data", "x")
    assert typo.returncode == 2 and "no command 'centrl'" in typo.stderr
