"""The short code a kiosk shows while it waits to be enrolled, as both sides read it.

Eight letters from RFC 8628's suggested set: consonants only, so no word can be spelt and no
letter looks like a digit or another letter (no vowels, hence no I or O; no digits, hence no
0/O, 1/I/L, 5/S, 8/B confusions). 20^8 is about 2.6e10 codes, enough for a code that lives
15 minutes behind a login and a rate limit. Shown as two groups of four (``BCDF-GHJK``);
typed in any case, with or without the hyphen or spaces.
"""

from __future__ import annotations

CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
CODE_LENGTH = 8
_IGNORED = str.maketrans("", "", "- \t")


def normalise_code(text: str) -> str | None:
    """The code in capitals without separators, or None if it cannot be a code."""
    if not isinstance(text, str):
        return None
    code = text.translate(_IGNORED).upper()
    if len(code) != CODE_LENGTH or any(letter not in CODE_ALPHABET for letter in code):
        return None
    return code


def format_code(code: str) -> str:
    """``BCDFGHJK`` as shown to people: ``BCDF-GHJK``."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}" if code else code
