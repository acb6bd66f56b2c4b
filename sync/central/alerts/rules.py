"""The alert rules, their defaults, and each site's settings of them.

A site has every rule on at its default until someone changes one (``alert rule set`` or the
dashboard): only changed rules are stored, so a new site is covered from its first kiosk.
Every rule has a cool-down (minutes after an alert of it closes before the same rule may open
another at the same site) and a clear time (minutes its condition must stay clear before the
alert closes by itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339, utc_now

# Rules evaluated as ratings arrive; the others need the clock (nothing arrives while a
# patient waits or a kiosk is silent) and run on the scheduled evaluation too.
RATING_RULES = ("negative_burst", "low_happy_index", "waits_and_mood")
CLOCK_RULES = ("long_wait", "kiosk_silent", "kiosk_backlog")

COMMON = {"cooldown_min": 30.0, "clear_min": 10.0}
DEFAULTS: dict[str, dict[str, float]] = {
    # >= threshold % negative of >= min_ratings ratings in the last window_min minutes.
    "negative_burst": {"threshold": 50.0, "min_ratings": 4, "window_min": 15.0},
    # Happy Index below threshold over the last window_min minutes, with >= min_ratings.
    "low_happy_index": {"threshold": 50.0, "min_ratings": 10, "window_min": 60.0},
    # A visit still waiting longer than multiple x the site's target wait.
    "long_wait": {"multiple": 2.0},
    # The longest current wait over target AND >= min_negative negative ratings in window_min.
    "waits_and_mood": {"min_negative": 2, "window_min": 30.0},
    # No contact from a kiosk for more than silent_min minutes during opening hours.
    "kiosk_silent": {"silent_min": 5.0},
    # A kiosk whose backlog (or rejected count) rose at each of its last `heartbeats`
    # heartbeats: its events are not getting through, or are being refused.
    "kiosk_backlog": {"heartbeats": 3},
}
RULES = tuple(DEFAULTS)
# What each parameter may be: (lowest, highest, whole numbers only).
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "threshold": (0.0, 100.0, False),
    "min_ratings": (1, 10_000, True),
    "window_min": (1.0, 24 * 60.0, False),
    "multiple": (1.0, 20.0, False),
    "min_negative": (1, 10_000, True),
    "silent_min": (1.0, 24 * 60.0, False),
    "heartbeats": (2, 20, True),
    "cooldown_min": (0.0, 7 * 24 * 60.0, False),
    "clear_min": (0.0, 24 * 60.0, False),
}


class InvalidRule(ValueError):
    """A rule name or parameter that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class RuleSetting:
    rule: str
    enabled: bool = True
    params: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.params[name]

    def as_dict(self) -> dict:
        return {"rule": self.rule, "enabled": self.enabled, **self.params}


def default_setting(rule: str) -> RuleSetting:
    return RuleSetting(rule, True, {**DEFAULTS[rule], **COMMON})


def check_rule(rule: str) -> str:
    if rule not in DEFAULTS:
        raise InvalidRule(f"there is no alert rule {rule!r}; the rules are {', '.join(RULES)}")
    return rule


def check_params(rule: str, params: dict) -> dict:
    """The given parameters (None left out), checked against the rule and its bounds."""
    allowed = {*DEFAULTS[check_rule(rule)], *COMMON}
    checked = {}
    for name, value in params.items():
        if value is None:
            continue
        if name not in allowed:
            raise InvalidRule(
                f"{name!r} is not a parameter of {rule}; it takes {', '.join(sorted(allowed))}"
            )
        low, high, whole = BOUNDS[name]
        number = float(value)
        if not low <= number <= high or (whole and not number.is_integer()):
            kind = "a whole number" if whole else "a number"
            raise InvalidRule(f"{name} of {rule} must be {kind} from {low:g} to {high:g}")
        checked[name] = int(number) if whole else number
    return checked


def site_rules(db: Database, site: str) -> dict[str, RuleSetting]:
    """Every rule for the site: its stored setting over the defaults."""
    stored = {
        row[0]: (bool(row[1]), json.loads(row[2]))
        for row in db.execute(
            "SELECT rule, enabled, params FROM alert_rules WHERE site = ?", [site]
        )
    }
    settings = {}
    for rule in RULES:
        base = default_setting(rule)
        if rule in stored:
            enabled, params = stored[rule]
            base = RuleSetting(rule, enabled, {**base.params, **params})
        settings[rule] = base
    return settings


def set_rule(db: Database, site: str, rule: str, enabled: bool | None = None,
             **params) -> RuleSetting:
    """Change a rule at a site (None leaves a value as it is); the site must exist."""
    checked = check_params(rule, params)
    current = site_rules(db, site)[rule]
    changed = RuleSetting(
        rule,
        current.enabled if enabled is None else bool(enabled),
        {**current.params, **checked},
    )
    db.execute(
        "INSERT INTO alert_rules (site, rule, enabled, params, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (site, rule) DO UPDATE SET enabled = excluded.enabled, "
        "params = excluded.params, updated_at = excluded.updated_at",
        [site, rule, int(changed.enabled), json.dumps(changed.params), to_rfc3339(utc_now())],
    )
    return changed
