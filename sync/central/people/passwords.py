"""The password rule, after NIST SP 800-63B (5.1.1.2): length, and not a known password.

At least 12 characters (at most 256), no composition rules (no "one digit, one capital"),
and not one of the 30,000 most common passwords from public breach corpora, the list the
``zxcvbn`` package ships (its ``passwords`` frequency list), compared without regard to case
or surrounding spaces, and not the login's own name. Nothing is sent anywhere.

Length alone lets through "123456789012" or "Summer2024!!": NIST also asks to refuse
"repetitive or sequential characters" and "context-specific words", so zxcvbn's estimate
must reach its top score (at least 10^10 guesses, its "strong protection from an offline
attack": what a stolen copy of the users table would face), with the login's name as a word
an attacker would try. A passphrase of a few unrelated words scores it easily.
"""

from __future__ import annotations

from functools import lru_cache

MIN_LENGTH = 12
MAX_LENGTH = 256
MIN_SCORE = 4  # zxcvbn's 0-4 scale
# zxcvbn refuses longer input (its matching is quadratic); the first 72 characters of a
# longer password are scored, which only ever understates it.
SCORED_LENGTH = 72


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
    if _score(password, user_name) < MIN_SCORE:
        raise WeakPassword(
            "that password is too easy to guess (a word with digits, a repeated or "
            "keyboard pattern, a year or the login's name); a few unrelated words make a "
            "strong one"
        )
    return password


def _score(password: str, user_name: str) -> int:
    from zxcvbn import zxcvbn

    inputs = [user_name.strip()] if user_name.strip() else []
    return zxcvbn(password[:SCORED_LENGTH], user_inputs=inputs)["score"]
