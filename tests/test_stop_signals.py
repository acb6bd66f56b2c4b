"""SIGTERM / SIGINT stop the kiosk (``launcher.StopOnSignal``): the handler only notes the
request and the Kivy clock stops the app, because a handler runs wherever the main thread was,
possibly inside a lock that stopping needs. A second SIGTERM during the first stop once hung
the kiosk for good (found by hand: ``timeout`` and ``pkill`` each sent one)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

from kiosk.launcher import StopOnSignal
from tests.central.test_cli import ROOT
from tests.support.waiting import wait_until


def test_the_handler_never_waits_for_what_stopping_needs():
    """Called while the main thread holds a lock the stop needs (as the hang did), the handler
    returns at once; the clock's next check stops, once."""
    held = threading.Lock()
    stops = []

    def stop() -> None:
        with held:
            stops.append(1)

    stopper = StopOnSignal(stop)
    assert stopper.check() is True and not stops  # nothing asked: the checks go on
    with held:
        done = threading.Event()
        threading.Thread(target=lambda: (stopper.note(signal.SIGTERM, None), done.set()),
                         daemon=True).start()
        assert done.wait(5), "the handler waited for the lock the stop takes"
        stopper.note(signal.SIGTERM, None)  # a second signal: still nothing waits
    assert stopper.check() is False  # stopped; the interval ends
    assert stops == [1]


def test_a_real_kiosk_stops_on_two_quick_sigterms(tmp_path):
    # Kivy's own log says when the main loop runs; a UI test's process may have silenced it.
    env = {name: value for name, value in os.environ.items() if name != "KIVY_NO_CONSOLELOG"}
    env = {**env, "KIOSK_CENTRAL_URL": "http://127.0.0.1:9", "SDL_VIDEODRIVER": "offscreen",
           "KIVY_NO_ARGS": "1", "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1",
           "KIVY_HOME": str(tmp_path / "kivy-home"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "main.py", "kiosk", "--windowed", "--data",
                                str(tmp_path / "kiosk")], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        try:
            wait_until(lambda: re.search("Start application main loop", "".join(lines)),
                       timeout=60, what="the kiosk's main loop")
        except BaseException:
            print("".join(lines)[-3000:])
            raise
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "".join(lines)[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
