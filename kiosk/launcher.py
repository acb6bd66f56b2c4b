"""Start the touchscreen kiosk: `python main.py [kiosk] [--config FILE] [--windowed] [--data DIR]`.

``build_kiosk()`` is the seam for what runs beside the screens: pass a ``sync_runner`` (the
sync client, or an embedded central store plus its client) and the kiosk starts it with the
app, stops it with the app, and shows its ``status()`` in the staff screen's sync corner.
Without one the kiosk records locally and says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from argon2 import PasswordHasher

from kiosk.config import (
    ConfigError,
    Settings,
    cleartext_token_warning,
    load_settings,
    lonely_token_warning,
)
from kiosk.enrolment import EnrolmentModel
from kiosk.enrolment_file import EnrolmentFileError
from kiosk.enrolment_start import StartPlan, keep, plan_start, with_enrolment
from kiosk.identity import machine_identity
from kiosk.service_notify import ServiceNotifier
from kiosk.set_aside import Drain, Sender
from kiosk.shared.timeutil import Clock, utc_now
from kiosk.store import Store, StoreError
from kiosk.sync_status import SyncStatus

if TYPE_CHECKING:
    from kiosk.app import KioskApp

WINDOWED_SIZE = (1280, 800)
# A warning that the database was replaced must stay up long enough for someone to see it.
RECOVERY_NOTICE_S = 120


class SyncStartFailed(RuntimeError):
    """A runner's ``prepare`` could not start what the kiosk syncs to (the embedded central
    store); the message says why and what to do."""


class SyncRunner(Protocol):
    """What the launcher needs from whatever moves data off the kiosk."""

    def start(self, store: Store, settings: Settings) -> None: ...

    def stop(self) -> None: ...

    def status(self) -> SyncStatus:
        """What the staff screen's sync corner shows, read without touching the network."""
        ...

    # Optionally ``site_config() -> dict | None``: the site's settings last fetched from the
    # central store, which the kiosk lays over its own (kiosk/site_settings.py); and
    # ``enrolment_service(settings)`` (None when it cannot enrol, e.g. an embedded store) and
    # ``drain(store, url, token, ca_file) -> int`` for enrolment by code (kiosk/enrolment*.py);
    # ``prepare(settings)``, called before the window opens, which may raise SyncStartFailed.


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py kiosk", description="The touchscreen kiosk.")
    parser.add_argument("--config", type=Path, help="settings file (TOML)")
    parser.add_argument("--windowed", action="store_true",
                        help=f"a {WINDOWED_SIZE[0]}x{WINDOWED_SIZE[1]} window, not fullscreen")
    parser.add_argument("--data", type=Path, help="folder for the local database")
    return parser.parse_args(argv)


def configure_kivy(windowed: bool) -> None:
    """Window settings; must run before anything imports kivy.core.window."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")  # our flags are not Kivy's
    # SDL would turn SIGTERM into a window-close request, which the kiosk refuses without the
    # PIN: then `systemctl stop` or a shutdown could not stop it. We handle the signals.
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    from kivy.config import Config

    if windowed:
        Config.set("graphics", "fullscreen", "0")
        Config.set("graphics", "borderless", "0")
        Config.set("graphics", "width", str(WINDOWED_SIZE[0]))
        Config.set("graphics", "height", str(WINDOWED_SIZE[1]))
    else:
        Config.set("graphics", "fullscreen", "auto")
        Config.set("graphics", "borderless", "1")
        Config.set("graphics", "show_cursor", "0")
    # A right click must not leave red multitouch dots on a kiosk tried out with a mouse.
    Config.set("input", "mouse", "mouse,multitouch_on_demand")


def build_kiosk(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock = utc_now,
    hasher: PasswordHasher | None = None,
    sync_runner: SyncRunner | None = None,
    enrolment: EnrolmentModel | None = None,
    machine: dict[str, str] | None = None,
    service: ServiceNotifier | None = None,
) -> KioskApp:
    """The app for these settings, ready to ``run()`` (or to drive from a test). With an
    ``enrolment`` model the kiosk first shows the enrolment screen and starts sync only once
    the store has given it a token (kept with ``machine``, this machine's identity)."""
    from kiosk.app import KioskApp
    from kiosk.enrolment_driver import EnrolmentDriver
    from kiosk.flow import KioskFlow

    store = store or Store(settings.database_path, clock=clock)
    flow = KioskFlow(store, settings, clock=clock, hasher=hasher)
    if store.recovered_from is not None:
        flow.notify(
            f"The local database was damaged. It was moved aside to {store.recovered_from.name} "
            "and the kiosk started with an empty one. Please tell IT.",
            seconds=RECOVERY_NOTICE_S,
        )
    app = KioskApp(
        flow,
        sync_status=sync_runner.status if sync_runner else store.sync_status,
        site_settings=getattr(sync_runner, "site_config", None),
        service=service,
    )
    enrol_client = None
    if enrolment is not None and sync_runner is not None:
        enrol_client = getattr(sync_runner, "enrolment_service", lambda _s: None)(settings)
    if enrol_client is not None:
        def enrolled(answer) -> None:
            keep(settings, answer, machine if machine is not None else machine_identity(), clock)
            working = with_enrolment(settings, answer)
            flow.adopt_settings(working)
            flow.enrolment.close()
            flow.notify(f"This kiosk is enrolled as {answer.device_name} at {answer.site}.",
                        "info")
            sync_runner.start(store, working)

        def show_code(code: str, link: str) -> None:
            # stdout, like the embedded store's login link: Kivy takes stderr over for its log.
            print(f"kiosk: enrolment code {code} (15 minutes): approve it on the dashboard, "
                  f"{link}, or with `main.py device approve --code {code} ...`", flush=True)

        def local() -> None:
            flow.enrolment.close()
            flow.notify("This kiosk records locally; nothing is sent to a central store.",
                        "info")
            sync_runner.start(store, settings)  # with no address it only reports

        flow.enrolment = EnrolmentDriver(enrolment, enrol_client, enrolled, on_code=show_code,
                                         on_local=local)
        app.stop_hooks.append(flow.enrolment.close)
        app.stop_hooks.append(sync_runner.stop)
    elif sync_runner is not None:
        app.start_hooks.append(lambda: sync_runner.start(store, settings))
        app.stop_hooks.append(sync_runner.stop)
    return app


def plan_for(settings: Settings, sync_runner: SyncRunner | None,
             machine: dict[str, str]) -> StartPlan:
    """Whether this start needs the enrolment screen (see kiosk.enrolment_start)."""
    service = None if sync_runner is None else getattr(
        sync_runner, "enrolment_service", lambda _s: None)(settings)
    can_enrol = service is not None
    if (close := getattr(service, "close", None)) is not None:
        close()  # only asked whether it can enrol; build_kiosk makes the one it uses
    return plan_start(settings, can_enrol, machine, drain=drain_for(settings, sync_runner))


def drain_for(settings: Settings, sync_runner: SyncRunner | None) -> Drain | None:
    """How to send another kiosk's unsent events (a copied disk's), if the runner can."""
    drain = getattr(sync_runner, "drain", None)
    if drain is None:
        return None
    return lambda store, url, token: drain(store, url, token, settings.ca_file)


class StopOnSignal:
    """SIGTERM / SIGINT from the operating system stop the kiosk cleanly (the PIN is for people
    at the screen, not for the service manager): hooks run, the store is closed.

    The handler only notes the request, and the Kivy clock stops the app on its next check. A
    handler runs between two bytecodes of the main thread, possibly inside a lock that stopping
    needs: stopping from the handler itself hung the kiosk for good when a second signal came
    during the first stop (``timeout`` and a shell each sending SIGTERM did it)."""

    CHECK_EVERY_S = 0.2

    def __init__(self, stop: Callable[[], None]):
        self._stop = stop
        self.requested = False

    def note(self, _signum: int, _frame: Any) -> None:
        self.requested = True  # a plain assignment: safe wherever the main thread was

    def check(self, _dt: float = 0.0) -> bool:
        """Stops once asked; False then ends the clock's interval (Kivy's convention)."""
        if not self.requested:
            return True
        self._stop()
        return False


def stop_on_signal(app: KioskApp) -> StopOnSignal:
    from kivy.clock import Clock as KivyClock

    stopper = StopOnSignal(app.stop)
    signal.signal(signal.SIGTERM, stopper.note)
    signal.signal(signal.SIGINT, stopper.note)
    KivyClock.schedule_interval(stopper.check, StopOnSignal.CHECK_EVERY_S)
    return stopper


def main(argv: list[str] | None = None, sync_runner: SyncRunner | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    overrides = {"data_dir": str(args.data)} if args.data else {}
    try:
        settings = load_settings(args.config, **overrides)
    except ConfigError as error:
        print(f"kiosk: {error}", file=sys.stderr)
        return 2
    machine = machine_identity()
    try:
        plan = plan_for(settings, sync_runner, machine)
    except (EnrolmentFileError, StoreError) as error:
        print(f"kiosk: {error}", file=sys.stderr)
        return 2
    settings = plan.settings
    if plan.copied_aside is not None:
        print(f"kiosk: this disk was enrolled on another machine; its database was moved "
              f"aside to {plan.copied_aside} and the kiosk asks to be enrolled again",
              file=sys.stderr)
    if warning := cleartext_token_warning(settings.central_url):
        print(f"kiosk: warning: {warning}", file=sys.stderr)
    if warning := lonely_token_warning(settings):
        print(f"kiosk: warning: {warning}", file=sys.stderr)
    try:
        store = Store(settings.database_path)
    except StoreError as error:
        print(f"kiosk: cannot open the local database: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # e.g. data_dir names a file, or a folder it may not write to
        print(
            f"kiosk: data_dir = {str(settings.data_dir)!r} cannot hold the local database "
            f"({error.strerror or error}); set data_dir (or --data) to a folder it can write to.",
            file=sys.stderr,
        )
        return 2
    if store.recovered_from is not None:
        print(f"kiosk: the local database was damaged and moved aside to {store.recovered_from}",
              file=sys.stderr)
    if (prepare := getattr(sync_runner, "prepare", None)) is not None:
        # The embedded central store starts before the window opens: one that cannot start
        # is a sentence here, with what to do, instead of a traceback from inside the window.
        try:
            prepare(settings)
        except SyncStartFailed as error:
            print(f"kiosk: {error}", file=sys.stderr)
            store.close()
            return 2
    configure_kivy(windowed=args.windowed)
    app = build_kiosk(settings, store=store, sync_runner=sync_runner,
                      enrolment=plan.enrolment, machine=machine)
    if (drain := drain_for(settings, sync_runner)) is not None:
        # A copied disk's events that could not be sent yet: tried again in the background.
        sender = Sender(settings.data_dir, drain,
                        lambda line: print(f"kiosk: {line}", file=sys.stderr, flush=True))
        app.start_hooks.append(sender.start)
        app.stop_hooks.append(sender.stop)
    stop_on_signal(app)
    try:
        app.run()
    finally:
        app.flow.disk.wait(10)  # a purge under way finishes before its store is closed
        store.close()
    return 0
