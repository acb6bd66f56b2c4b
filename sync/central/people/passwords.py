"""The password rule, after NIST SP 800-63B (5.1.1.2): length, and not a known password.

At least 12 characters (at most 256), no composition rules (no "one digit, one capital"),
and not one of the 30,000 most common passwords from public breach corpora, the list the
``zxcvbn`` package ships (its ``passwords`` frequency list), compared without regard to case
or surrounding spaces, and not the login's own name. Nothing is sent anywhere.
"""

from __future__ import annotations

from functools import lru_cache

MIN_LENGTH = 12
MAX_LENGTH = 256


class WeakPassword(ValueError):
    """A password the rule refuses; the message says why and what to do."""


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def check_password(password: str, user_name: str = "") -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"the password must be at least {MIN_LENGTH} characters long (a few words make "
            "a good one)"
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must be at most {MAX_LENGTH} characters long")
    folded = password.strip().lower()
    if folded in _common() or folded == user_name.strip().lower():
        raise WeakPassword(
            "that password is on the list of common and breached passwords; choose another"
        )
    return password
