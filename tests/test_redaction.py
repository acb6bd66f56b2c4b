"""Redaction of patients' comments (kiosk.shared.redaction) against a corpus the test makes:
realistic comments with each kind of personal detail put in, and ordinary comments that must
come out unchanged. A fixed seed, so a failure names the same comment every run."""

from __future__ import annotations

import random
import string

import pytest

from kiosk.shared.redaction import REMOVED, find_personal, is_nhs_number, redact
from kiosk.shared.wire import MAX_COMMENT_CHARS

RNG_SEED = 17
PER_KIND = 40
TEMPLATES = (
    "The nurse was lovely, call me on {} if you need more",
    "{} is where you can reach me about the long wait",
    "Please send the letter again, details {} thanks",
    "Waited 40 minutes. My reference is {}.",
    "Receptionist asked me for {} twice",
)
ORDINARY = (
    "Waited 45 minutes past my appointment at 10:30, but the nurse was lovely.",
    "Room 3 was cold and the chairs are uncomfortable.",
    "Very quick today, in and out in 2 hours 15 mins including bloods.",
    "Five stars for the reception team! Thank you.",
    "The 9:15 slot ran about 20 minutes late; a sign saying so would help.",
    "Parking is hard, maybe 1 or 2 more disabled spaces?",
    "Doctor explained everything clearly, I may come back in spring.",
    "Floor 2 toilets need cleaning. Otherwise fine.",
    "It's the 3rd time the screen froze; staff were patient though.",
    "No complaints, 10/10 would recommend.",
    "Seen within 5 min of arriving, brilliant service",
    "Nurse Practitioner was kind - thank you all!",
)
MONTHS = ("January", "Feb", "March", "Apr", "June", "July", "Aug", "September", "Oct", "Dec")


def nhs_number(rng: random.Random) -> str:
    while True:
        digits = "".join(rng.choice(string.digits) for _ in range(9))
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10:
            return digits + str(check)


def generated(kind: str, rng: random.Random) -> str:
    if kind == "phone":
        return rng.choice((
            "07{} {}".format(*(_digits(rng, 3), _digits(rng, 6))),
            f"+44 7{_digits(rng, 3)} {_digits(rng, 3)} {_digits(rng, 3)}",
            f"020 {_digits(rng, 4)} {_digits(rng, 4)}",
            f"(0161) {_digits(rng, 3)} {_digits(rng, 4)}",
            f"0113-{_digits(rng, 3)}-{_digits(rng, 4)}",
        ))
    if kind == "email":
        user = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
        return rng.choice((f"{user}@example.org", f"{user}.x99@mail.example.co.uk",
                           f"{user}+clinic@example.com"))
    if kind == "nhs_number":
        number = nhs_number(rng)
        return rng.choice((number, f"{number[:3]} {number[3:6]} {number[6:]}",
                           f"{number[:3]}-{number[3:6]}-{number[6:]}"))
    if kind == "date":
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1930, 2025)
        return rng.choice((
            f"{day:02d}/{month:02d}/{year}", f"{day}/{month}/{year % 100:02d}",
            f"{year}-{month:02d}-{day:02d}", f"{day} {rng.choice(MONTHS)} {year}",
            f"{day}th of {rng.choice(MONTHS)}", f"{rng.choice(MONTHS)} {day}, {year}",
            f"{day}.{month}.{year}",
        ))
    if kind == "postcode":
        letter = lambda: rng.choice("ABCDEFGHJKLMNOPRSTUWYZ")  # noqa: E731
        outward = rng.choice((
            f"{letter()}{rng.randint(1, 9)}", f"{letter()}{rng.randint(10, 99)}",
            f"{letter()}{letter()}{rng.randint(1, 9)}",
            f"{letter()}{letter()}{rng.randint(10, 99)}",
            f"{letter()}{rng.randint(1, 9)}{letter()}",
        ))
        inward = f"{rng.randint(0, 9)}{letter()}{letter()}"
        return rng.choice((f"{outward} {inward}", f"{outward}{inward}",
                           f"{outward} {inward}".lower()))
    if kind == "digits":
        return _digits(rng, rng.randint(6, 12))
    raise ValueError(kind)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


KINDS = ("phone", "email", "nhs_number", "date", "postcode", "digits")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_detail_is_removed_from_realistic_comments(kind):
    rng = random.Random(f"{RNG_SEED}-{kind}")
    missed = []
    for _ in range(PER_KIND):
        detail = generated(kind, rng)
        comment = rng.choice(TEMPLATES).format(detail)
        cleaned = redact(comment)
        if REMOVED not in cleaned or any(part in cleaned for part in _revealing(detail)):
            missed.append((comment, cleaned))
    assert not missed, f"{kind} left in: {missed[:5]}"


def _revealing(detail: str) -> list[str]:
    """Pieces of a detail that must not survive: its digit groups of 3+ and the address."""
    pieces = [part for part in detail.replace("-", " ").replace("/", " ").split()
              if sum(c.isdigit() for c in part) >= 3]
    return pieces + ([detail] if "@" in detail else [])


def test_ordinary_comments_come_out_unchanged():
    assert [redact(text) for text in ORDINARY] == list(ORDINARY)


def test_nhs_check_digit():
    assert is_nhs_number("9434765919")  # the NHS's published example
    assert not is_nhs_number("9434765918")
    assert not is_nhs_number("943476591")
    rng = random.Random(RNG_SEED)
    assert all(is_nhs_number(nhs_number(rng)) for _ in range(200))
    found = find_personal("number 943 476 5919 please")
    assert [f.kind for f in found] == ["nhs_number"]


def test_a_redacted_comment_is_never_longer_than_the_limit():
    assert len(redact("a" * 800)) == MAX_COMMENT_CHARS
    assert redact("") == ""
