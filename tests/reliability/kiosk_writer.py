"""A kiosk that writes as fast as it can, for the crash test; run as a *zygote*.

``python -m tests.reliability.kiosk_writer`` imports the kiosk once, then reads commands on
stdin, one a line: ``spawn DATA_DIR [CENTRAL_URL TOKEN]``. For each it forks a writer (a real
process: the test SIGKILLs it) and relays what the writer says to stdout:

    PID <pid>            the writer exists
    ACK <event id>       that event's transaction has committed (said after COMMIT returned)
    END <pid> <how>      the writer is dead and reaped (``signal 9`` or ``exit N``): its
                         files are closed and its locks gone

Forking from an interpreter that has already imported everything makes a writer start in
milliseconds instead of half a second, so a run can afford well over a hundred kills. The
zygote itself has no threads, so forking it is safe; each writer starts its own sync thread.
"""

from __future__ import annotations

import os
import random
import sys
import traceback
from pathlib import Path

from kiosk.config import load_settings
from kiosk.desk import FrontDesk
from kiosk.rating_flow import RatingFlow
from kiosk.store import RecordedEvent, Store
from sync.client import SyncClient
from sync.loop import SyncLoop

# Short timeouts: a writer is killed within a second anyway; they only bound a stuck request.
TIMEOUTS = (0.5, 2.0)


def write_forever(data_dir: str, ack_fd: int, url: str | None, token: str | None) -> None:
    """Check patients in, call them, check them out and rate, as fast as the disk allows."""
    settings = load_settings(
        environ={}, data_dir=data_dir, device_name="crash-desk", followup_for="all",
        misuse_interval_s=0,
    )
    store = Store(settings.database_path)

    def acknowledge(event: RecordedEvent) -> None:
        # One write() of a short line to a pipe is atomic, whichever thread recorded it.
        os.write(ack_fd, f"ACK {event.id}\n".encode())

    store.on_record(acknowledge)
    if url:
        loop = SyncLoop(store, SyncClient(store, url, token, timeouts=TIMEOUTS),
                        heartbeat_s=3600, base_delay=0.05, max_delay=0.2)
        loop.start()
    desk = FrontDesk(store, settings)
    rating = RatingFlow(store, settings)
    chance = random.Random(os.getpid())
    while True:
        desk.check_in()
        waiting = [e for e in desk.queue() if e.status == "waiting"]
        if waiting:
            desk.call_in(waiting[0].visit_id)
        in_chair = [e for e in desk.queue() if e.status == "in_chair"]
        if not in_chair:
            continue
        visit_id = in_chair[0].visit_id
        if chance.random() < 0.1:
            desk.cancel(visit_id)
            continue
        desk.check_out(visit_id)
        rating.start(visit_id)
        if rating.choose(chance.randint(1, 5)) == "followup":
            if chance.random() < 0.5:
                rating.toggle_tag(chance.choice(settings.followup_tags))
            rating.send_followup()


def _spawn(arguments: list[str]) -> None:
    data_dir = arguments[0]
    url, token = (arguments[1], arguments[2]) if len(arguments) == 3 else (None, None)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            write_forever(data_dir, write_end, url, token)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(3)  # only a SIGKILL should ever end a writer
    os.close(write_end)
    sys.stdout.write(f"PID {pid}\n")
    sys.stdout.flush()
    with os.fdopen(read_end, "rb") as acks:
        for line in acks:  # ends when the writer dies and the kernel closes its end
            sys.stdout.write(line.decode())
            sys.stdout.flush()
    _, status = os.waitpid(pid, 0)
    how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {status >> 8}"
    sys.stdout.write(f"END {pid} {how}\n")
    sys.stdout.flush()


def main() -> int:
    for line in sys.stdin:
        command, *arguments = line.split()
        if command == "spawn":
            Path(arguments[0]).mkdir(parents=True, exist_ok=True)
            _spawn(arguments)
        elif command == "quit":
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
