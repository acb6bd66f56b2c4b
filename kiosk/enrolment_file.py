"""The kiosk's enrolment, kept beside its database: the central store's address, the device
token it was given, and the machine it was given on (``kiosk.identity``).

One small JSON file, ``enrolment.json`` in ``data_dir``, readable by the kiosk's user alone
(mode 0600, set when the file is created, so the token is never readable by others even for
an instant) and replaced atomically, so a power cut leaves the old file or the new one. It
is kept out of the SQLite file on purpose: a database moved aside (damaged, or copied from
another kiosk) must not take the token with it, and the token is never logged.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

FILE_NAME = "enrolment.json"


class EnrolmentFileError(ValueError):
    """The enrolment file exists but cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class KioskEnrolment:
    central_url: str
    token: str
    device_id: str
    site: str
    device_name: str
    role: str
    machine: dict[str, str] = field(default_factory=dict)
    enrolled_at: str = ""

    def __repr__(self) -> str:  # never print the token, in a log line or a traceback
        return (f"KioskEnrolment(central_url={self.central_url!r}, device_id="
                f"{self.device_id!r}, site={self.site!r}, device_name={self.device_name!r})")


def path_in(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def load(data_dir: Path) -> KioskEnrolment | None:
    return load_from(path_in(data_dir))


def load_from(path: Path) -> KioskEnrolment | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return KioskEnrolment(**document)
    except (FileNotFoundError, NotADirectoryError):
        return None  # (data_dir naming a file is reported when the database is opened)
    except (OSError, ValueError, TypeError) as error:
        raise EnrolmentFileError(
            f"the enrolment file {path} cannot be read ({error}); delete it to enrol this "
            "kiosk again"
        ) from None


def save(data_dir: Path, enrolment: KioskEnrolment) -> Path:
    return save_to(path_in(data_dir), enrolment)


def save_to(path: Path, enrolment: KioskEnrolment) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    # A .new left by a power cut (or made by someone else) may have other owners' bits: it
    # goes, and the new one is made 0600 before a byte of the token is written to it.
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(descriptor, 0o600)  # the umask can only remove bits, but be plain about it
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(asdict(enrolment), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _sync_folder(path.parent)  # the rename itself survives a power cut
    return path


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def forget(data_dir: Path) -> None:
    path_in(data_dir).unlink(missing_ok=True)
