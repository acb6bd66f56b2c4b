"""One typed settings object for a kiosk: TOML file, then environment variables, validated.

Every key can come from the file (flat keys, e.g. ``target_wait_min = 15``) or from an
environment variable ``KIOSK_<KEY>`` (e.g. ``KIOSK_ROLE=ratings``), the environment winning.
A bad value stops the kiosk at start with a sentence naming the key, the value and what is
allowed: a kiosk that starts with a half-understood config misreports waits all day.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platformdirs import user_data_dir

from kiosk.shared.fft import DEFAULT_SURVEY, SURVEYS
from kiosk.shared.languages import DEFAULT_LANGUAGES, LANGUAGES, UnknownLanguage, check_languages
from kiosk.shared.site_rules import IDLE_TIMEOUT_S, RATING_SCALES, TARGET_WAIT_MIN
from kiosk.shared.wire import DEFAULT_TAGS, MAX_TAGS, TAG_PATTERN

ROLES = ("desk", "ratings", "staff")
FOLLOWUP_MODES = ("negative", "all", "never")
# The allowed range of each whole-number setting; the two a site sets centrally (target, idle
# timeout) come from kiosk/shared/site_rules.py, so both sides accept exactly the same values.
WHOLE_NUMBER_RANGES: dict[str, tuple[int, int]] = {
    "target_wait_min": tuple(TARGET_WAIT_MIN),
    "idle_timeout_s": tuple(IDLE_TIMEOUT_S),
    "thanks_s": (1, 60),
    "staff_lock_s": (15, 3600),
    "undo_window_s": (3, 120),
    "retention_days": (1, 3650),
    "comment_retention_days": (1, 3650),
    "min_free_mb": (0, 100_000),
}
DEFAULT_COMMENT_RETENTION_DAYS = 90
ENV_PREFIX = "KIOSK_"


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key, the value and the rule."""


def default_data_dir() -> Path:
    return Path(user_data_dir("clinic-kiosk", appauthor=False))


@dataclass(frozen=True)
class Settings:
    site: str = "Main site"
    timezone: str = "UTC"
    device_name: str = field(default_factory=socket.gethostname)
    role: str = "desk"
    ticket_prefix: str = "A"
    target_wait_min: int = 15
    rating_scale: int = 5
    followup_tags: tuple[str, ...] = DEFAULT_TAGS
    # The patient's language buttons, the site's default first (``site set --languages``).
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    # The staff screens' language; None follows the site's default (the first of ``languages``).
    staff_language: str | None = None
    followup_for: str = "negative"
    idle_timeout_s: int = 20
    thanks_s: int = 4
    staff_lock_s: int = 120
    undo_window_s: int = 10
    misuse_interval_s: float = 5.0
    retention_days: int = 400
    survey: str = DEFAULT_SURVEY
    comments: bool = False
    # Comments are kept for less time than the rest: they are the one free text.
    comment_retention_days: int = DEFAULT_COMMENT_RETENTION_DAYS
    # Below this much room for the local database, the disk guard purges and then warns
    # (kiosk/disk_guard.py); 0 turns the guard off.
    min_free_mb: int = 200
    central_url: str | None = None
    central_token: str | None = None
    ca_file: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    # The keys this kiosk's file, environment or command line set: the site's settings from
    # the central store never override them (see kiosk/site_settings.py).
    pinned: frozenset[str] = frozenset()

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def staff_screen_language(self) -> str:
        return self.staff_language or self.default_language

    @property
    def database_path(self) -> Path:
        return self.data_dir / "kiosk.sqlite"


def _fail(key: str, value: Any, rule: str) -> ConfigError:
    return ConfigError(f"config key '{key}' = {value!r} is not allowed: {rule}")


WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")


def _as_int(key: str, value: Any, low: int, high: int) -> int:
    # A text of ASCII digits only: "--5", "²" (a digit to str.isdigit, not to int) and 5,000
    # digits (past int()'s limit) are refused here with the sentence, not as a ValueError.
    if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(key, value, f"use a whole number from {low} to {high}")
    return value


def _as_float(key: str, value: Any, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(key, value, f"use a number from {low} to {high}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise _fail(key, value, f"use a number from {low} to {high}")
    return number


def _as_choice(key: str, value: Any, choices: tuple) -> Any:
    if (isinstance(value, str) and WHOLE_NUMBER.fullmatch(value)
            and all(isinstance(c, int) for c in choices)):
        value = int(value)
    if value not in choices:
        raise _fail(key, value, "use one of " + ", ".join(repr(c) for c in choices))
    return value


def _as_text(key: str, value: Any, max_len: int = 80) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise _fail(key, value, f"use a non-empty text of at most {max_len} characters")
    return value.strip()


def _as_tags(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= MAX_TAGS:
        raise _fail(key, value, f"use a list of 1 to {MAX_TAGS} tag names")
    for tag in value:
        if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
            raise _fail(key, value, f"tag {tag!r} must be lower-case letters, digits and _")
    return tuple(value)


def _as_switch(key: str, value: Any) -> bool:
    """on/off, true/false (TOML booleans, or the words in an environment variable)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("on", "true", "yes", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("off", "false", "no", "0"):
        return False
    raise _fail(key, value, "use on or off (true or false)")


def _as_languages(key: str, value: Any) -> tuple[str, ...]:
    try:
        return check_languages(value)
    except UnknownLanguage as error:
        raise _fail(key, value, str(error)) from None


def _as_staff_language(key: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or value not in LANGUAGES:
        raise _fail(key, value, "use one of " + ", ".join(LANGUAGES))
    return value


def _as_timezone(key: str, value: Any) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        # OSError: a folder of the zone database ('Europe'), or a name too long for a path
        raise _fail(key, value, "use an IANA time zone such as 'Europe/London'") from None
    return value


def _as_url(key: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise _fail(key, value, "use an http:// or https:// address")
    return value.rstrip("/")


def cleartext_token_warning(central_url: str | None) -> str | None:
    """A sentence when the device token would travel unencrypted over a network: an
    ``http://`` central URL whose host is not this machine. None otherwise (https, or the
    loopback address, where nothing leaves the machine)."""
    if not central_url or not central_url.lower().startswith("http://"):
        return None
    host = (urlsplit(central_url).hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a name: it may resolve anywhere
    return (
        f"central_url {central_url} is plain http:// to another machine: this kiosk's token "
        "and its events travel in clear and can be read or reused by anyone on the network. "
        "Use an https:// address (a TLS reverse proxy in front of the central store)."
    )


def _as_optional_text(key: str, value: Any) -> str | None:
    return None if value in (None, "") else _as_text(key, value, 4096)


def _as_ca_file(key: str, value: Any) -> str | None:
    """A CA bundle that is there now: a mistyped path would otherwise surface only at the
    first HTTPS request, as an error from deep inside the TLS library, at every sync pass."""
    path = _as_optional_text(key, value)
    if path is not None and not os.path.isfile(path):
        raise _fail(key, value, "no such file; give the path of the CA bundle (PEM) that "
                                "signed the central store's certificate")
    if path is not None and not os.access(path, os.R_OK):
        raise _fail(key, value, "the file cannot be read by this user")
    return path


def _as_ticket_prefix(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.isalpha() or not value.isupper() or len(value) > 3:
        raise _fail(key, value, "use 1 to 3 capital letters, e.g. 'A'")
    return value


def _as_path(key: str, value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise _fail(key, value, "use a folder path")
    return Path(value).expanduser()


def _whole_number(key: str, value: Any) -> int:
    return _as_int(key, value, *WHOLE_NUMBER_RANGES[key])


VALIDATORS = {
    "site": lambda k, v: _as_text(k, v),
    "timezone": _as_timezone,
    "device_name": lambda k, v: _as_text(k, v, 64),
    "role": lambda k, v: _as_choice(k, v, ROLES),
    "ticket_prefix": _as_ticket_prefix,
    "target_wait_min": _whole_number,
    "rating_scale": lambda k, v: _as_choice(k, v, RATING_SCALES),
    "followup_tags": _as_tags,
    "languages": _as_languages,
    "staff_language": _as_staff_language,
    "followup_for": lambda k, v: _as_choice(k, v, FOLLOWUP_MODES),
    "idle_timeout_s": _whole_number,
    "thanks_s": _whole_number,
    "staff_lock_s": _whole_number,
    "undo_window_s": _whole_number,
    "misuse_interval_s": lambda k, v: _as_float(k, v, 0, 600),
    "retention_days": _whole_number,
    "survey": lambda k, v: _as_choice(k, v, SURVEYS),
    "comments": _as_switch,
    "comment_retention_days": _whole_number,
    "min_free_mb": _whole_number,
    "central_url": _as_url,
    "central_token": _as_optional_text,
    "ca_file": _as_ca_file,
    "data_dir": _as_path,
}
assert set(VALIDATORS) == {f.name for f in fields(Settings)} - {"pinned"}, (
    "every setting needs a validator"
)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        # TOML is UTF-8; a file saved as Latin-1 or UTF-16 (an editor's other choice) is not.
        raise ConfigError(
            f"config file {path} is not UTF-8 (byte {error.start}): save it as UTF-8"
        ) from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None


def load_settings(
    path: Path | str | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """File, then ``KIOSK_*`` environment variables, then keyword overrides; all validated."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw.update(_read_file(Path(path)))
    unknown = sorted(set(raw) - set(VALIDATORS))
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(VALIDATORS)}"
        )
    environ = os.environ if environ is None else environ
    for key in VALIDATORS:
        name = ENV_PREFIX + key.upper()
        if name in environ:
            raw[key] = environ[name]
    raw.update(overrides)
    values = {key: VALIDATORS[key](key, value) for key, value in raw.items()}
    settings = Settings(**values, pinned=frozenset(values))
    # A central_url alone is where the kiosk asks for an enrolment code (kiosk/enrolment.py);
    # a central_token alone was always accepted (see lonely_token_warning), and still is.
    return settings


def lonely_token_warning(settings: Settings) -> str | None:
    """A sentence when ``central_token`` is set without ``central_url``: the token cannot be
    used (there is no store to send to), but older set-ups have it, so it is a warning and the
    kiosk records locally as it always did."""
    if settings.central_token and not settings.central_url:
        return ("config key 'central_token' is set but 'central_url' is not, so the kiosk "
                "records locally and sends nothing; add central_url to sync")
    return None
