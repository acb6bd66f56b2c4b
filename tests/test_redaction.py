"""Redaction of patients' comments (kiosk.shared.redaction) against a corpus the test makes:
realistic comments with each kind of personal detail put in, and ordinary comments that must
come out unchanged. A fixed seed, so a failure names the same comment every run."""

from __future__ import annotations

import random
import string

import pytest

from kiosk.comment_box import characters_of
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
    "it was 2 may have been 3",
    "We had to march 3 floors, the lift was out.",
    "Rooms 2 3 and 4 were empty yet we waited.",
    "I looked at the clock. Then the nurse came.",
    "Waited at home.then came back at 2.",
    "The queue at the desk moved fast, 8 or 9 mins.",
    "Waited 10, 15, 20 minutes each time, parking cost 1,250 pence, in at 10.30.",
    "Rooms 1-2-3 were shut.",
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
# What the kiosk's own keyboard can type: no "/", "@", "+", "(" or ":" on it.
KEYBOARD = characters_of("en")
ABBREVIATED = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
               "Dec")


def typed_on_the_keyboard(kind: str, rng: random.Random) -> str:
    """A detail written only with the keys of the comment box (``LAYOUTS["en"]``)."""
    if kind == "phone":
        return rng.choice((
            f"07{_digits(rng, 3)} {_digits(rng, 6)}", f"0044 7{_digits(rng, 3)} {_digits(rng, 6)}",
            f"020 {_digits(rng, 4)} {_digits(rng, 4)}", f"0161 {_digits(rng, 3)} {_digits(rng, 4)}",
            f"0113-{_digits(rng, 3)}-{_digits(rng, 4)}",
            f"ring {rng.randint(2, 9)}{_digits(rng, 2)} {_digits(rng, 4)}",  # no area code
            # The keyboard's comma and apostrophe between the groups.
            f"07{_digits(rng, 3)},{_digits(rng, 3)},{_digits(rng, 3)}",
            f"07{_digits(rng, 3)}'{_digits(rng, 3)}'{_digits(rng, 3)}",
        ))
    if kind == "email":
        user = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
        return rng.choice((f"{user} at example dot com", f"{user} at example.org",
                           f"{user}.x99 at mail dot example dot co dot uk",
                           f"{user} AT example DOT net"))
    if kind == "date":
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1930, 2025)
        name, short = rng.choice(MONTHS), rng.choice(ABBREVIATED)
        return rng.choice((
            f"dob {day}-{short}-{year % 100:02d}", f"{day}.{short}.{year}",
            f"{short}-{day}-{year}", f"dob {day:02d} {month:02d} {year % 100:02d}",
            f"born {day} {month} {year % 100:02d}", f"{day}-{month}-{year}",
            f"{day}.{month}.{year % 100:02d}", f"{year}-{month:02d}-{day:02d}",
            f"{day} {name} {year}", f"{day}th of {name}", f"{name} {day}, {year}",
            f"{day}nd {short}", f"{short} {day}th",
            f"dob {day},{month:02d},{year}", f"dob {day}'{month}'{year % 100:02d}",
            f"dob {day} - {month:02d} - {year % 100:02d}", f"born {day} , {month} , {year}",
        ))
    if kind == "postcode":
        detail = generated("postcode", rng)
        return rng.choice((detail, detail.replace(" ", "-"), detail.upper().replace(" ", "-")))
    if kind == "nhs_number":
        number = nhs_number(rng)
        mark = rng.choice(",'.")
        return rng.choice((generated(kind, rng),
                           f"{number[:3]}{mark}{number[3:6]}{mark}{number[6:]}"))
    if kind == "digits":
        groups = [_digits(rng, rng.randint(2, 4)) for _ in range(3)]
        return rng.choice((generated(kind, rng), rng.choice(",'.-").join(groups)))
    return generated(kind, rng)


@pytest.mark.parametrize("kind", KINDS)
def test_details_typed_on_the_kiosk_keyboard_are_removed(kind):
    """Every detail in the form the kiosk's keyboard makes, and the comment around it intact."""
    rng = random.Random(f"{RNG_SEED}-keyboard-{kind}")
    missed = []
    for _ in range(PER_KIND):
        detail = typed_on_the_keyboard(kind, rng)
        template = rng.choice(TEMPLATES)
        comment = template.format(detail)
        assert set(comment) <= KEYBOARD, f"the keyboard cannot type {comment!r}"
        cleaned = redact(comment)
        kept = template.format(REMOVED)
        # A keyword in front of the detail ("dob", "ring") may go with it or stay.
        if cleaned not in (kept, template.format(f"{detail.split()[0]} {REMOVED}")):
            missed.append((comment, cleaned))
    assert not missed, f"{kind} left in: {missed[:5]}"


@pytest.mark.parametrize("detail", ["dob 12-Mar-80", "12.Mar.1980", "Mar-12-1980",
                                    "dob 12 03 80", "born 12 3 80", "SW1A-1AA",
                                    "ring 496 0000", "bob at example dot com"])
def test_the_reported_keyboard_forms_are_removed(detail):
    cleaned = redact(f"Thanks, {detail} is mine")
    assert REMOVED in cleaned
    assert not any(part in cleaned for part in ("12", "80", "1980", "1AA", "496", "bob",
                                                "example"))


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
