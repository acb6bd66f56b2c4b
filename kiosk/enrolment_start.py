"""At start: is this kiosk enrolled, does it need to enrol, or was its disk copied?

- A token in the config (``central_token``, from ``device add``): used as it is, as before.
- An enrolment kept from a code (``enrolment.json``) made on this machine: its address and
  token are used, and the site, desk name and role the manager chose, unless the kiosk's own
  config pins them.
- None, and a sync runner that can enrol: the first-start screen (``kiosk.enrolment``), with
  the config's ``central_url`` as the address if it has one; but only for a new kiosk (no
  database yet) or one whose config names a ``central_url``. A kiosk that already records
  locally with neither key (the offline-first set-up) starts on its staff screen as it
  always did. The screen's "Use without a central store" records locally too.
- An enrolment made on another machine (``kiosk.identity``): the disk was copied from
  another kiosk, or moved to new hardware. The kiosk must not go on as that kiosk. What it
  recorded before is that kiosk's: it is first sent under that kiosk's token (the central
  store keeps each event of a device once, so if the original kiosk sent them too, nothing
  is counted twice; if the disk was moved, this is the only way they arrive). Then the
  database is moved aside whole (``kiosk.sqlite.copied-<UTC stamp>``: events that could not
  be sent stay in it, and the original kiosk still holds them if it runs), the token is
  forgotten, and the kiosk enrols as a new kiosk with a fresh database: its numbering starts
  at 1 and it shows none of the other kiosk's visits. Events that could not be sent then are
  sent later (``kiosk.set_aside``), at each start and every few minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from kiosk import enrolment_file
from kiosk.config import Settings
from kiosk.enrolment import Enrolled, EnrolmentModel
from kiosk.enrolment_file import KioskEnrolment
from kiosk.identity import is_other_machine
from kiosk.local_db import move_aside
from kiosk.set_aside import Drain, keep_enrolment
from kiosk.shared.timeutil import Clock, to_rfc3339, utc_now
from kiosk.store import Store

ADOPTED_KEYS = ("site", "device_name", "role")


@dataclass
class StartPlan:
    settings: Settings
    enrolment: EnrolmentModel | None = None  # the first-start screen, when one is needed
    copied_aside: Path | None = None


def with_enrolment(settings: Settings, enrolment: KioskEnrolment | Enrolled) -> Settings:
    """The settings with the enrolment's address and token, and its site, desk name and role
    where the kiosk's own config does not pin them."""
    chosen = {key: getattr(enrolment, key) for key in ADOPTED_KEYS
              if key not in settings.pinned and getattr(enrolment, key)}
    if chosen.get("role") not in (None, "desk", "ratings", "staff"):
        chosen.pop("role")
    # An address pinned in the config wins over the one the enrolment was made at (IT moved
    # the store, or put a proxy in front of it): the config is what IT edits.
    url = settings.central_url if "central_url" in settings.pinned and settings.central_url \
        else enrolment.central_url
    return replace(settings, central_url=url, central_token=enrolment.token, **chosen)


def keep(settings: Settings, enrolled: Enrolled, machine: dict[str, str],
         clock: Clock = utc_now) -> Path:
    """Write the enrolment the store just gave (mode 0600)."""
    return enrolment_file.save(settings.data_dir, KioskEnrolment(
        central_url=enrolled.central_url, token=enrolled.token, device_id=enrolled.device_id,
        site=enrolled.site, device_name=enrolled.device_name, role=enrolled.role,
        machine=machine, enrolled_at=to_rfc3339(clock()),
    ))


def plan_start(
    settings: Settings,
    can_enrol: bool,
    machine: dict[str, str],
    drain: Drain | None = None,
    clock: Clock = utc_now,
) -> StartPlan:
    if settings.central_token or not can_enrol:
        return StartPlan(settings)
    saved = enrolment_file.load(settings.data_dir)
    if saved is not None and not is_other_machine(saved.machine, machine):
        return StartPlan(with_enrolment(settings, saved))
    if saved is None and not settings.central_url and settings.database_path.exists():
        return StartPlan(settings)  # an existing kiosk that records locally: as before
    reason, aside = None, None
    if saved is not None:
        aside, unsent = _set_aside_copied(settings, saved, drain)
        enrolment_file.forget(settings.data_dir)
        reason = (
            "This kiosk's disk comes from another kiosk (the machine is not the one it was "
            "enrolled on), so it needs its own enrolment. "
            + (f"{unsent} event{'s' if unsent != 1 else ''} recorded before could not be "
               f"sent yet; {'they are' if unsent != 1 else 'it is'} kept in {aside.name} and "
               "sent as that kiosk's when the central store can be reached. "
               if unsent else "What it recorded before was sent as that kiosk's. "
               if aside is not None else "")
        ).strip()
    address = settings.central_url or (saved.central_url if saved else None)
    model = EnrolmentModel(address=address, device_name=settings.device_name, reason=reason,
                           clock=clock)
    return StartPlan(settings, model, aside)


def _set_aside_copied(settings: Settings, saved: KioskEnrolment,
                      drain: Drain | None) -> tuple[Path | None, int]:
    path = settings.database_path
    if not path.exists():
        return None, 0
    store = Store(path)
    try:
        unsent = store.sync_status().backlog
        if unsent and drain is not None:
            unsent = drain(store, saved.central_url, saved.token)
    finally:
        store.close()
    aside = move_aside(path, "copied")
    if unsent:
        keep_enrolment(aside, saved)  # kiosk.set_aside tries again until they are sent
    return aside, unsent
