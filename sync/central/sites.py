"""A site's settings (time zone, wait target, rating scale, follow-up tags, idle timeout,
languages, the survey asked (smiley faces or the NHS Friends and Family Test) and whether a
comment box is offered).

A site comes into being with the defaults when its first device is enrolled; ``site set``
changes it. Kiosks read it through ``GET /api/v1/config``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from sqlite_utils import Database

from kiosk.shared.fft import DEFAULT_SURVEY, SURVEYS
from kiosk.shared.languages import DEFAULT_LANGUAGES, UnknownLanguage, check_languages
from kiosk.shared.metrics import DEFAULT_TARGET_MIN
from kiosk.shared.site_rules import (
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_RATING_SCALE,
    FOLLOWUP_TAG_COUNT,
    IDLE_TIMEOUT_S,
    RATING_SCALES,
    TARGET_WAIT_MIN,
    is_target_wait,
    is_zone_name,
)
from kiosk.shared.wire import DEFAULT_TAGS, TAG_PATTERN

SITE_NAME_PATTERN = re.compile(r"^[\w][\w .'&()-]{0,63}$")


class InvalidSetting(ValueError):
    """A site setting that cannot be used; the message says which and why."""


class UnknownSite(LookupError):
    """No site by that name exists in this data directory."""


@dataclass(frozen=True)
class SiteConfig:
    name: str
    timezone: str = "UTC"
    target_wait_min: float = DEFAULT_TARGET_MIN
    rating_scale: int = DEFAULT_RATING_SCALE
    followup_tags: tuple[str, ...] = DEFAULT_TAGS
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S
    survey: str = DEFAULT_SURVEY
    comments: bool = False  # off unless the site turns it on: the one free-text field
    languages: tuple[str, ...] = DEFAULT_LANGUAGES  # the default first

    def as_dict(self) -> dict:
        values = asdict(self)
        values["followup_tags"] = list(self.followup_tags)
        values["languages"] = list(self.languages)
        return values


def check_site_name(name: str) -> str:
    if not isinstance(name, str) or not SITE_NAME_PATTERN.match(name.strip()):
        raise InvalidSetting(
            f"site name {name!r} must be 1-64 letters, digits, spaces or . ' & ( ) -"
        )
    return name.strip()


def _check(settings: dict) -> dict:
    checked = {}
    for key, value in settings.items():
        if value is None:
            continue
        if key == "timezone":
            if not is_zone_name(value):
                raise InvalidSetting(
                    f"time zone {value!r} is not an IANA zone name like 'Europe/London'"
                )
        elif key == "target_wait_min":
            # The ranges a kiosk accepts too (kiosk.shared.site_rules), so the dashboard and
            # the desks always measure against the same target.
            value = float(value)
            if not is_target_wait(value):
                low, high = TARGET_WAIT_MIN
                raise InvalidSetting(
                    f"target wait {value:g} must be a whole number of minutes from {low} to {high}"
                )
        elif key == "rating_scale":
            if value not in RATING_SCALES:
                raise InvalidSetting(f"rating scale {value} must be 5 or 4")
        elif key == "followup_tags":
            value = list(value)
            if len(value) < FOLLOWUP_TAG_COUNT.low:
                raise InvalidSetting("give at least one follow-up tag")
            if len(value) > FOLLOWUP_TAG_COUNT.high:
                raise InvalidSetting(
                    f"{len(value)} follow-up tags are too many: a patient sees at most "
                    f"{FOLLOWUP_TAG_COUNT.high}"
                )
            bad = [tag for tag in value if not TAG_PATTERN.match(tag)]
            if bad:
                raise InvalidSetting(
                    f"follow-up tag {bad[0]!r} is not a tag name: use lower-case letters, digits "
                    "and underscores, like 'waiting_time'"
                )
            value = json.dumps(value)
        elif key == "idle_timeout_s":
            value = int(value)
            if not IDLE_TIMEOUT_S.holds(value):
                low, high = IDLE_TIMEOUT_S
                raise InvalidSetting(
                    f"idle timeout {value} must be between {low} and {high} seconds"
                )
        elif key == "survey":
            if value not in SURVEYS:
                raise InvalidSetting(f"survey {value!r} must be one of {', '.join(SURVEYS)}")
        elif key == "comments":
            if not isinstance(value, bool):
                raise InvalidSetting(f"comments {value!r} must be on or off")
            value = int(value)
        elif key == "languages":
            # Only languages the kiosk has catalogs for (kiosk/shared/languages.py): a kiosk
            # told to offer one it cannot show would show English under a foreign name.
            try:
                value = json.dumps(list(check_languages(value)))
            except UnknownLanguage as error:
                raise InvalidSetting(str(error)) from None
        else:
            raise InvalidSetting(f"{key!r} is not a site setting")
        checked[key] = value
    return checked


def _from_row(row: dict) -> SiteConfig:
    return SiteConfig(
        name=row["name"],
        timezone=row["timezone"],
        target_wait_min=row["target_wait_min"],
        rating_scale=row["rating_scale"],
        followup_tags=tuple(json.loads(row["followup_tags"])),
        idle_timeout_s=row["idle_timeout_s"],
        survey=row.get("survey") or DEFAULT_SURVEY,
        comments=bool(row.get("comments")),
        # A store not yet migrated to site languages (an old schema being repaired) has none.
        languages=tuple(json.loads(row.get("languages") or "null") or DEFAULT_LANGUAGES),
    )


def ensure_site(db: Database, name: str) -> SiteConfig:
    """The site's settings, creating the site with the defaults if it is new."""
    name = check_site_name(name)
    db.execute("INSERT OR IGNORE INTO sites (name) VALUES (?)", [name])
    return get_site(db, name)


def get_site(db: Database, name: str) -> SiteConfig:
    rows = list(db.query("SELECT * FROM sites WHERE name = ?", [name]))
    if not rows:
        raise UnknownSite(f"there is no site named {name!r}")
    return _from_row(rows[0])


def site_exists(db: Database, name: str) -> bool:
    return db.execute("SELECT 1 FROM sites WHERE name = ?", [name]).fetchone() is not None


def list_sites(db: Database) -> list[SiteConfig]:
    return [_from_row(row) for row in db.query("SELECT * FROM sites ORDER BY name")]


def update_site(db: Database, name: str, **settings) -> SiteConfig:
    """Change the given settings (None leaves one as it is); creates the site if it is new."""
    name = check_site_name(name)
    checked = _check(settings)
    ensure_site(db, name)
    if checked:
        assignments = ", ".join(f"{key} = :{key}" for key in checked)
        db.execute(f"UPDATE sites SET {assignments} WHERE name = :name", {**checked, "name": name})
    return get_site(db, name)


ADMIN_TOTP = ("optional", "required")


def set_admin_totp(db: Database, name: str, value: str) -> str:
    """``required``: every admin must use TOTP (admins see every site, so one site asking is
    enough); ``optional`` (the default): each login chooses."""
    if value not in ADMIN_TOTP:
        raise InvalidSetting(f"admin TOTP {value!r} must be optional or required")
    db.execute("UPDATE sites SET admin_totp = ? WHERE name = ?", [value, name])
    return value
