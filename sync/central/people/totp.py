"""The optional second factor: TOTP (RFC 6238, 30 s steps, 6 digits) with pyotp, and ten
one-time recovery codes.

A code is accepted within one step either side (a phone's clock may be 30 s off), and never
twice: the last step used is stored, so a code seen over a shoulder cannot be replayed.
Recovery codes are shown once and stored only as HMAC-SHA256 digests under a random salt of
the login's own (each code is 40 random bits, spent on use): with one salt per login, a table
of digests computed once cannot be matched against every login's codes. The secret is stored
as is: the store must compute codes from it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime

import pyotp

ISSUER = "Front desk"
RECOVERY_CODES = 10
VALID_WINDOW = 1


# What ``new_secret`` makes: 32 base32 characters (160 bits, RFC 4226's recommended size).
_SECRET = re.compile(r"[A-Z2-7]{32}")


def new_secret() -> str:
    return pyotp.random_base32()


def is_new_secret(secret: str) -> bool:
    """True for a key shaped as ``new_secret`` makes them, and nothing else."""
    return bool(_SECRET.fullmatch(secret or ""))


def provisioning_uri(secret: str, user_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user_name, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no image files, no network)."""
    import segno

    return segno.make(uri, error="m").svg_inline(scale=4, border=2)


def matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to (within the window, after ``last_step``), or None."""
    code = "".join(code.split())
    # ASCII digits only: "١٢٣٤٥٦" is six digits to str.isdigit, and compare_digest refuses it.
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in range(step - VALID_WINDOW, step + VALID_WINDOW + 1):
        if last_step is not None and candidate <= last_step:
            continue
        expected = totp.generate_otp(candidate)
        if hmac.compare_digest(expected, code):
            return candidate
    return None


def _normal(code: str) -> bytes:
    return code.replace("-", "").strip().lower().encode()


def _digest(code: str, salt: str | None) -> str:
    """HMAC-SHA256 under the login's salt; ``salt=None``: the plain SHA-256 of codes stored
    before salts (a JSON list), still accepted so no code a person holds stops working."""
    if salt is None:
        return hashlib.sha256(_normal(code)).hexdigest()
    return hmac.new(bytes.fromhex(salt), _normal(code), hashlib.sha256).hexdigest()


def _stored(salt: str | None, digests: list[str]) -> str:
    return json.dumps(digests if salt is None else {"salt": salt, "digests": digests})


def new_recovery_codes() -> tuple[list[str], str]:
    """The codes to show once, and their stored form (JSON: the salt and the digests)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)  # 40 bits each, read as xxxxx-xxxxx
        codes.append(f"{raw[:5]}-{raw[5:]}")
    salt = secrets.token_hex(16)
    return codes, _stored(salt, [_digest(code, salt) for code in codes])


def spend_recovery_code(stored: str | None, code: str) -> str | None:
    """The stored form without ``code`` if it was one of them, else None."""
    kept = json.loads(stored or "[]")
    salt, digests = (None, kept) if isinstance(kept, list) else (kept["salt"], kept["digests"])
    wanted = _digest(code, salt)
    for index, digest in enumerate(digests):
        if hmac.compare_digest(digest, wanted):
            return _stored(salt, digests[:index] + digests[index + 1:])
    return None
