"""Which machine this is, to notice a kiosk whose disk was copied onto another machine.

A cloned disk image carries the first kiosk's device token; two kiosks sending under one
device would mix their visits, numbers and health. At enrolment the kiosk records this
machine's identity beside its token; when the two differ at start, the kiosk asks to be
enrolled again (``kiosk.launcher``).

The identity is a few independent marks, each kept only as a SHA-256 (systemd asks that the
machine id itself never leaves the machine): ``/etc/machine-id`` (or D-Bus's copy), and the
hardware's own serial or UUID where readable (a Raspberry Pi's board serial, a PC's DMI
product UUID), which a disk image cannot carry along, since an image made without resetting
the machine id copies it too. A mark present both then and now that changed means "another
machine"; a mark that cannot be read now is ignored (permissions differ between a service
and a shell), so at least one mark must be readable both times to tell. Only when no mark
can be read at all is the network card's hardware address used, and then the host name.
"""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
HARDWARE_FILES = (
    Path("/sys/firmware/devicetree/base/serial-number"),  # Raspberry Pi and other boards
    Path("/sys/class/dmi/id/product_uuid"),  # PCs and most virtual machines (root only)
)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _first_readable(paths) -> str | None:
    for path in paths:
        try:
            value = Path(path).read_text(encoding="ascii", errors="replace").strip("\x00\n ")
        except OSError:
            continue
        if value:
            return value
    return None


def _network_card() -> str | None:
    node = uuid.getnode()
    # uuid sets the multicast bit when it made a random number up: not the machine's.
    return None if node >> 40 & 1 else f"{node:012x}"


def machine_identity(
    machine_id_files=MACHINE_ID_FILES, hardware_files=HARDWARE_FILES
) -> dict[str, str]:
    """This machine's marks, as digests: ``{"machine_id": ..., "hardware": ...}``."""
    marks = {}
    if (machine_id := _first_readable(machine_id_files)) is not None:
        marks["machine_id"] = _digest(machine_id)
    if (hardware := _first_readable(hardware_files)) is not None:
        marks["hardware"] = _digest(hardware)
    if not marks:
        fallback = _network_card()
        marks["fallback"] = _digest(fallback if fallback else socket.gethostname())
    return marks


def is_other_machine(recorded: Mapping[str, str], now: Mapping[str, str]) -> bool:
    """True when a mark readable both at enrolment and now has changed."""
    return any(key in now and now[key] != value for key, value in recorded.items())
