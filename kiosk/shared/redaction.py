"""Redaction of a patient's comment: what could identify someone becomes ``[removed]``.

Applied on the kiosk before a comment is written anywhere (the outbox included) and again by
the central store on ingest, so a kiosk that skipped it (an old or a third-party client)
still cannot put a phone number into the store. Pure: text in, text out.

Caught: e-mail addresses (also spelled out, "bob at example dot com", as the kiosk's keyboard
has no "@"), NHS numbers (10 digits, spaced or not, with a valid mod-11 check digit), phone
numbers (Google's libphonenumber, via ``phonenumbers``, UK numbering by default; and a local
number without its area code, "496 0000"), dates (numeric with / . - or spaces, and with
month names: "12-Mar-80", "Mar-12-1980", "2nd May"), UK postcodes (spaced, joined or
hyphenated), and any run of six or more digits (a hospital number, a date written 12031980),
also when its groups are joined by a comma, full stop, apostrophe or hyphen ("943,476,5919").
A month name that is also a word ("may", "march") makes a date only with a year, an ordinal
or "of", so "it was 2 may have been 3" stays. Names cannot be caught by a pattern;
the comment box asks, on screen, for none to be written.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import phonenumbers

from kiosk.shared.wire import MAX_COMMENT_CHARS

REMOVED = "[removed]"
# Control characters other than line breaks and tabs: no keyboard types them, and a NUL is a
# text PostgreSQL cannot store (a rating would be refused for its comment).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
PHONE_REGION = "GB"

EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# The kiosk's keyboard has no "@": an address is typed as "bob at example dot com" or
# "bob at example.com". The last label must be a usual top-level domain, so "looked at the
# clock. Then" or "at home.then" stay.
_TLD = (r"(?:com|org|net|info|biz|io|co|uk|nhs|gov|ac|edu|me|eu|ie|scot|wales|cymru|online|"
        r"email|xyz|de|fr|es|it|nl|pl|pt|in|us|ca|au)")
EMAIL_SPOKEN = re.compile(
    rf"(?<![\w.+'-])[\w.+'-]+\s+at\s+[\w-]+(?:(?:\s+dot\s+|\.)[\w-]+)*"
    rf"(?:\s+dot\s+|\.){_TLD}(?![\w])",
    re.IGNORECASE,
)
# Three, three and four digits with optional single spaces or hyphens, as NHS numbers are
# printed ("943 476 5919"); the check digit decides whether it is one.
NHS_NUMBER = re.compile(r"(?<![\d])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![\d])")
# Month names. "may", "mar" and "march" are English words too ("it was 2 may have been 3",
# "march 3 floors"): with them a date needs a year, an ordinal ("2nd May") or "of".
_PLAIN_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|apr(?:il)?|june?|july?|aug(?:ust)?|"
                r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_MONTH = rf"(?:{_PLAIN_MONTH}|mar(?:ch)?|may)"
_ORDINAL = r"(?:st|nd|rd|th)"
_YEAR = r"(?:\d{4}|\d{2})(?![\w])"
_SEP = r"[-.,\s]+"  # what the keyboard can put between a date's parts: - . , and spaces
DATES = (
    # 12/03/1980, 12-3-80, 12.03.1980, 1980-03-12; the keyboard's comma and apostrophe too
    # (12,3,80 and 12'03'1980)
    re.compile(r"(?<![\d])\d{1,2}[/.,'-]\d{1,2}[/.,'-](?:\d{4}|\d{2})(?![\d])"),
    re.compile(r"(?<![\d])\d{4}[/.-]\d{1,2}[/.-]\d{1,2}(?![\d])"),
    # With a year: 12 March 1980, 12-Mar-80, 12.Mar.1980, 3rd of Dec 79
    re.compile(rf"(?<![\w])\d{{1,2}}{_ORDINAL}?{_SEP}(?:of\s+)?{_MONTH}\b\.?{_SEP}{_YEAR}",
               re.IGNORECASE),
    # Without a year, where it cannot be a word: 12th of March, 2nd May, 12 Oct, 5 of May
    re.compile(rf"(?<![\w])\d{{1,2}}(?:{_ORDINAL}[-.\s]+(?:of\s+)?|\s+of\s+){_MONTH}\b\.?",
               re.IGNORECASE),
    re.compile(rf"(?<![\w])\d{{1,2}}[-.\s]+{_PLAIN_MONTH}\b\.?", re.IGNORECASE),
    # Month first: March 12, 1980 / Mar-12-1980 / May 2nd / Oct 12 / March 1980
    re.compile(rf"\b{_MONTH}\.?[-.\s]+\d{{1,2}}{_ORDINAL}?{_SEP}{_YEAR}", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\.?\s+\d{{1,2}}{_ORDINAL}\b", re.IGNORECASE),
    re.compile(rf"\b{_PLAIN_MONTH}\.?[-.\s]+\d{{1,2}}(?![\w])", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\.?[-.\s]+\d{{4}}\b", re.IGNORECASE),
)
# A date written with spaces, as the keyboard makes easy: "dob 12 03 80", "born 12 3 80".
# Taken only when it can be a day and month (either order), so "rooms 2 3 and 4" stay.
SPACED_DATE = re.compile(r"(?<![\d.])(\d{1,2}) (\d{1,2}) (\d{4}|\d{2})(?![\d])")
# The same with one separator, spaced, between the parts: "dob 12 - 03 - 80", "12 , 3 , 80".
SPACED_SEPARATOR_DATE = re.compile(
    r"(?<![\d.])(\d{1,2})\s+([-.,/'])\s+(\d{1,2})\s+\2\s+(\d{4}|\d{2})(?![\d])")
# The UK postcode shape (outward code, then the inward digit and two letters), also written
# with a hyphen ("SW1A-1AA").
POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?[\s-]*\d[A-Z]{2}\b", re.IGNORECASE)
# A local number without its area code, "496 0000" or "4960-0000": too short for
# libphonenumber to call it a number, still someone's.
LOCAL_PHONE = re.compile(r"(?<![\d])\d{3,4}[ -]\d{4}(?![\d])")
LONG_DIGIT_RUN = re.compile(r"\d{6,}")
# Digits in groups joined by one of the keyboard's marks, no spaces: "943,476,5919",
# "07700'900'123", "12.03.1980". Six digits or more in all are taken, as a run is.
GROUPED_DIGITS = re.compile(r"(?<![\d])\d+(?:[,.'-]\d+)+(?![\d])")
MIN_GROUPED_DIGITS = 6
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


def _is_day_and_month(first: str, second: str) -> bool:
    a, b = int(first), int(second)
    return 1 <= a <= 31 and 1 <= b <= 31 and min(a, b) <= 12


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
    found += [Finding("email", m.start(), m.end()) for m in EMAIL_SPOKEN.finditer(text)]
    found += [Finding("nhs_number", m.start(), m.end()) for m in NHS_NUMBER.finditer(text)
              if is_nhs_number("".join(m.groups()))]
    found += _phones(text)
    found += [Finding("phone", m.start(), m.end()) for m in LOCAL_PHONE.finditer(text)]
    for pattern in DATES:
        found += [Finding("date", m.start(), m.end()) for m in pattern.finditer(text)]
    found += [Finding("date", m.start(), m.end()) for m in SPACED_DATE.finditer(text)
              if _is_day_and_month(m.group(1), m.group(2))]
    found += [Finding("date", m.start(), m.end()) for m in SPACED_SEPARATOR_DATE.finditer(text)
              if _is_day_and_month(m.group(1), m.group(3))]
    found += [Finding("postcode", m.start(), m.end()) for m in POSTCODE.finditer(text)]
    found += [Finding("digits", m.start(), m.end()) for m in LONG_DIGIT_RUN.finditer(text)]
    found += [Finding("digits", m.start(), m.end()) for m in GROUPED_DIGITS.finditer(text)
              if sum(c.isdigit() for c in m.group()) >= MIN_GROUPED_DIGITS]
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
    """``text`` with every personal-looking span replaced by ``[removed]`` and control
    characters dropped, cut to the limit."""
    text = CONTROL_CHARACTERS.sub("", text)
    parts: list[str] = []
    position = 0
    for finding in find_personal(text):
        parts += [text[position:finding.start], REMOVED]
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)[:MAX_COMMENT_CHARS]
