"""Figure 2: kiosk start to first frame (offscreen), and resident memory after it, beside a bare
Kivy app with one label.

Each start is a fresh process (``start_probe``), so nothing is warm in Python; the OS file cache
is warmed by one discarded start of each first, as it is on a kiosk that has booted before.
Kiosk and bare starts alternate, so a busy moment on the machine hits both. The kiosk reuses one
data folder, as it does every morning after the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from tests.benchmarks.common import PYTHON, ROOT, median, row, scratch_dir

MAX_START_RATIO = 2.0
MAX_EXTRA_MB = 60.0


def _env(kivy_home) -> dict[str, str]:
    env = {
        **os.environ,
        "KIVY_NO_ARGS": "1",
        "KIVY_NO_CONFIG": "1",
        "KIVY_NO_FILELOG": "1",
        "KIVY_NO_CONSOLELOG": "1",
        "KIVY_HOME": str(kivy_home),
    }
    if not os.environ.get("DISPLAY"):
        env["SDL_VIDEODRIVER"] = "offscreen"
    return env


def _start(which: str, data_dir, env) -> dict:
    env = {**env, "BENCH_T0": repr(time.time())}
    done = subprocess.run(
        [PYTHON, "-m", "tests.benchmarks.start_probe", which, str(data_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {which} app drew no frame (exit {done.returncode}): "
                           f"{done.stderr[-1500:]}")
    return json.loads(lines[-1])


def run(quick: bool) -> list[dict]:
    runs = 5 if quick else 11
    with scratch_dir("start") as folder:
        env = _env(folder / "kivy-home")
        data_dir = folder / "kiosk"
        _start("bare", data_dir, env)
        _start("kiosk", data_dir, env)
        bare, kiosk = [], []
        for _ in range(runs):
            bare.append(_start("bare", data_dir, env))
            kiosk.append(_start("kiosk", data_dir, env))
    start_s = median([r["first_frame_s"] for r in kiosk])
    bare_s = median([r["first_frame_s"] for r in bare])
    rss = median([r["rss_mb"] for r in kiosk])
    bare_rss = median([r["rss_mb"] for r in bare])
    return [
        row(f"2. kiosk start to first frame, median of {runs}", start_s, "s", bare_s,
            f"<= {MAX_START_RATIO:g}x bare", start_s / bare_s <= MAX_START_RATIO),
        row(f"2. kiosk RSS after first frame, median of {runs}", rss, "MB", bare_rss,
            f"<= bare + {MAX_EXTRA_MB:g} MB", rss - bare_rss <= MAX_EXTRA_MB),
    ]
