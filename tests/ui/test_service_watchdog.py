"""systemd's notify protocol, end to end: the kiosk in a real (offscreen) window talks to a real
Unix datagram socket the test owns, as systemd's NOTIFY_SOCKET would be.

READY=1 must come only after the first frame; WATCHDOG=1 must come from the UI thread's clock
at half the watchdog timeout; and when the UI thread hangs, the pings must stop (that silence is
what makes systemd restart a frozen kiosk).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import pytest

from kiosk.service_notify import ServiceNotifier

pytestmark = pytest.mark.ui
WATCHDOG_USEC = 200_000  # pings every 0.1 s: short, so the test is quick


@dataclass
class NotifySocket:
    """The test's stand-in for systemd: records each datagram with its arrival time."""

    sock: socket.socket
    path: str
    received: list[tuple[float, str]] = field(default_factory=list)

    def messages(self, name: str) -> list[float]:
        return [at for at, text in list(self.received) if text == name]


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    listener = NotifySocket(sock, path)
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            listener.received.append((time.monotonic(), data.decode()))

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    yield listener
    stop.set()
    thread.join(2)
    sock.close()


def run_frames(driver, seconds: float) -> None:
    """Let the UI thread run its event loop as it does in service."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        driver.idle(1)
        time.sleep(0.005)


def test_ready_after_first_frame_then_watchdog_pings_and_silence_when_the_ui_hangs(
    make_kiosk, notify_socket
):
    service = ServiceNotifier.from_environ(
        {"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    )
    assert service.watchdog_interval_s == pytest.approx(0.1)
    # Send times, not receipt times: a datagram sent just before the hang can be read by
    # the listener thread during it, so only the moment of sending says who pinged when.
    sent: list[float] = []
    real_ping = service.ping

    def timed_ping() -> bool:
        sent.append(time.monotonic())
        return real_ping()

    service.ping = timed_ping
    from kivy.core.window import Window

    # on_draw comes before the frame's flip (the app answers on_flip): the first draw must
    # precede READY=1, whatever order the on_flip handlers run in.
    draws: list[float] = []

    def drawn(*_args) -> None:
        draws.append(time.monotonic())

    Window.bind(on_draw=drawn)
    try:
        driver = make_kiosk(service=service)
        run_frames(driver, 0.3)
        ready = notify_socket.messages("READY=1")
        assert len(ready) == 1, notify_socket.received
        assert draws and draws[0] <= ready[0], "READY=1 came before the first frame was drawn"

        # Healthy: pings at about the interval while frames run.
        started = time.monotonic()
        run_frames(driver, 1.0)
        healthy = [at for at in notify_socket.messages("WATCHDOG=1") if at >= started]
        assert len(healthy) >= 5, f"only {len(healthy)} pings in 1 s at a 0.1 s interval"
        gaps = [b - a for a, b in zip(healthy, healthy[1:], strict=False)]
        assert max(gaps) < 0.5

        # Hung: the UI thread stuck in one callback for 0.8 s, eight intervals.
        from kivy.clock import Clock

        hang: dict[str, float] = {}

        def hang_ui(_dt: float) -> None:
            hang["from"] = time.monotonic()
            time.sleep(0.8)
            hang["to"] = time.monotonic()

        Clock.schedule_once(hang_ui, 0)
        driver.idle(1)
        assert "to" in hang, "the hang never ran"
        during = [at for at in sent if hang["from"] < at < hang["to"]]
        assert during == [], "the watchdog was pinged while the UI thread was hung"

        # Recovered: pings resume once the UI thread runs again.
        run_frames(driver, 0.4)
        before = [at for at in sent if at <= hang["from"]]
        after = [at for at in sent if at >= hang["to"]]
        assert after, "the pings did not resume after the hang"
        assert before, "no ping was sent before the hang"
        # The gap around the hang is at least the hang: no ping bridged it.
        assert after[0] - before[-1] >= hang["to"] - hang["from"]
    finally:
        Window.unbind(on_draw=drawn)
    driver.close()
    time.sleep(0.1)
    assert notify_socket.received[-1][1] == "STOPPING=1"


def test_no_socket_means_no_messages_and_bad_values_are_ignored():
    assert ServiceNotifier.from_environ({}) is None
    assert ServiceNotifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
    quiet = ServiceNotifier.from_environ({"NOTIFY_SOCKET": "@kiosk-test", "WATCHDOG_USEC": "x"})
    assert quiet.watchdog_interval_s is None
    assert ServiceNotifier("/nonexistent/notify.sock").ready() is False  # logged, not raised
