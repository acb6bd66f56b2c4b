"""UTC timestamps on the wire and on disk: RFC 3339 with a 'Z', millisecond precision."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_rfc3339(moment: datetime) -> str:
    """'2026-11-23T09:15:02.123Z'. Naive datetimes are refused: a time without a zone is a bug."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; timestamps must be UTC-aware")
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 instant ('Z' or an offset); refuse one without a zone."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp")
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone offset (add 'Z' for UTC)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a valid text whose UTC instant is before year 1.
        raise ValueError(f"{text!r} is outside the years 1 to 9999 once moved to UTC") from None


def parse_optional(text: str | None) -> datetime | None:
    return None if text is None else parse_rfc3339(text)
