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


def _kiosk_process(data_dir):
    """``python3 main.py --data DIR`` (the kiosk with its embedded central store) as a user
    runs it; it must stop with a sentence before any window opens."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1"}
    return subprocess.run([sys.executable, "main.py", "--data", str(data_dir)], cwd=root,
                          env=env, capture_output=True, text=True, timeout=60)


def test_a_damaged_embedded_central_store_is_a_sentence_and_nothing_is_touched(tmp_path):
    central = tmp_path / "central"
    central.mkdir()
    damaged = central / "central.sqlite3"
    damaged.write_bytes(b"not a database, a power cut's leftovers " * 100)
    run = _kiosk_process(tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert f"kiosk: the embedded central store in {central} cannot start: " in run.stderr
    assert f"If {damaged} is damaged, move it aside or put a backup back (python3 main.py " \
           f"restore --from FILE --data {central} --force; the daily ones are in " \
           f"{central / 'backups'})" in run.stderr
    assert "Nothing the kiosk recorded was touched." in run.stderr
    assert damaged.read_bytes() == b"not a database, a power cut's leftovers " * 100


def test_an_embedded_central_store_from_a_newer_version_is_a_sentence(tmp_path):
    import sqlite3

    from sync.central.storage import CentralStore

    central = tmp_path / "central"
    CentralStore(central).close()
    with sqlite3.connect(central / "central.sqlite3") as db:
        db.execute("PRAGMA user_version = 9999")
    run = _kiosk_process(tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert f"kiosk: the embedded central store in {central} cannot start: " in run.stderr
    assert "9999" in run.stderr
