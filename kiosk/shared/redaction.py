"""Redaction of a patient's comment: what could identify someone becomes ``[removed]``.

Applied on the kiosk before a comment is written anywhere (the outbox included) and again by
the central store on ingest, so a kiosk that skipped it (an old or a third-party client)
still cannot put a phone number into the store. Pure: text in, text out.

Caught: e-mail addresses, NHS numbers (10 digits, spaced or not, with a valid mod-11 check
digit), phone numbers (Google's libphonenumber, via ``phonenumbers``, UK numbering by
default), dates (numeric and with month names), UK postcodes, and any run of six or more
digits (a hospital number, a date written 12031980). Names cannot be caught by a pattern;
the comment box asks, on screen, for none to be written.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import phonenumbers

from kiosk.shared.wire import MAX_COMMENT_CHARS

REMOVED = "[removed]"
PHONE_REGION = "GB"

EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Three, three and four digits with optional single spaces or hyphens, as NHS numbers are
# printed ("943 476 5919"); the check digit decides whether it is one.
NHS_NUMBER = re.compile(r"(?<![\d])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![\d])")
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
DATES = (
    # 12/03/1980, 12-3-80, 12.03.1980, 1980-03-12
    re.compile(r"(?<![\d])\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?![\d])"),
    re.compile(r"(?<![\d])\d{4}[/.-]\d{1,2}[/.-]\d{1,2}(?![\d])"),
    # 12 March 1980, 12th of March, 3rd Dec 79
    re.compile(rf"(?<![\w])\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b\.?"
               r"(?:,?\s+\d{2,4}\b)?", re.IGNORECASE),
    # March 12, 1980 / March 12th / March 1980
    re.compile(rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}}\b)?",
               re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\.?\s+\d{{4}}\b", re.IGNORECASE),
)
# The UK postcode shape (outward code, then the inward digit and two letters).
POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE)
LONG_DIGIT_RUN = re.compile(r"\d{6,}")
MIN_PHONE_DIGITS = 8  # the shortest UK numbers dialled in full have 10; abroad, some have 8


class Finding(NamedTuple):
    kind: str  # "email", "nhs_number", "phone", "date", "postcode", "digits"
    start: int
    end: int


def is_nhs_number(digits: str) -> bool:
    """Ten digits whose last is the NHS modulus-11 check digit of the first nine."""
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    total = sum(int(d) * weight for d, weight in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def _phones(text: str) -> list[Finding]:
    matcher = phonenumbers.PhoneNumberMatcher(
        text, PHONE_REGION, leniency=phonenumbers.Leniency.POSSIBLE
    )
    # POSSIBLE rather than VALID: a number a patient mistypes by a digit is still theirs. The
    # digit floor keeps scores like "10/10", which libphonenumber calls possible, in the text.
    return [Finding("phone", match.start, match.end) for match in matcher
            if sum(c.isdigit() for c in match.raw_string) >= MIN_PHONE_DIGITS]


def find_personal(text: str) -> list[Finding]:
    """Every span of ``text`` that looks like personal details, in order, not overlapping."""
    found: list[Finding] = []
    found += [Finding("email", m.start(), m.end()) for m in EMAIL.finditer(text)]
    found += [Finding("nhs_number", m.start(), m.end()) for m in NHS_NUMBER.finditer(text)
              if is_nhs_number("".join(m.groups()))]
    found += _phones(text)
    for pattern in DATES:
        found += [Finding("date", m.start(), m.end()) for m in pattern.finditer(text)]
    found += [Finding("postcode", m.start(), m.end()) for m in POSTCODE.finditer(text)]
    found += [Finding("digits", m.start(), m.end()) for m in LONG_DIGIT_RUN.finditer(text)]
    # Earlier and longer spans win, so overlapping finds become one [removed].
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    merged: list[Finding] = []
    for finding in found:
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Finding(last.kind, last.start, max(last.end, finding.end))
        else:
            merged.append(finding)
    return merged


def redact(text: str) -> str:
    """``text`` with every personal-looking span replaced by ``[removed]``, cut to the limit."""
    parts: list[str] = []
    position = 0
    for finding in find_personal(text):
        parts += [text[position:finding.start], REMOVED]
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)[:MAX_COMMENT_CHARS]
