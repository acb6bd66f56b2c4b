"""The site's settings from the central store, laid over the kiosk's own.

A key set in the kiosk's config file, environment or command line is pinned on that kiosk; the
others follow the site's settings on the central store (``GET /api/v1/config``, set with
``main.py site set``), so a practice manager changes the target, the faces, the follow-up tags,
the idle timeout, the languages, the time zone, the survey (faces or the NHS FFT) or the
comment box for every kiosk of a site at once. Values are checked by the
same validators as the config file: one the kiosk cannot use is left out, with a sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kiosk.config import VALIDATORS, ConfigError, Settings

SITE_KEYS = (
    "site", "timezone", "target_wait_min", "rating_scale", "followup_tags", "idle_timeout_s",
    "survey", "comments",     "languages",
)


def site_part(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a fetched config that is the site's settings (not its clock or ids)."""
    return {key: config[key] for key in SITE_KEYS if key in config}


def with_site_settings(
    settings: Settings, config: Mapping[str, Any]
) -> tuple[Settings, list[str]]:
    """``settings`` with the site's values for every key it does not pin, and the sentences
    of the values refused."""
    changes: dict[str, Any] = {}
    refused: list[str] = []
    for key, value in site_part(config).items():
        if key in settings.pinned:
            continue
        if key == "target_wait_min" and isinstance(value, float) and value.is_integer():
            value = int(value)  # the central store keeps minutes as a float
        try:
            changes[key] = VALIDATORS[key](key, value)
        except ConfigError as error:
            refused.append(f"the central store's {error}")
    return replace(settings, **changes), refused
