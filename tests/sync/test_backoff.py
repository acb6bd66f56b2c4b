"""Backoff arithmetic: full jitter under an exponential ceiling, capped; Retry-After parsed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from sync.backoff import backoff_delay, parse_retry_after, retry_delay


def always(value: float):
    return lambda: value


def test_the_ceiling_doubles_from_one_second_and_stops_at_sixty():
    delays = [backoff_delay(failures, always(1.0)) for failures in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_full_jitter_draws_between_zero_and_the_ceiling():
    assert backoff_delay(4, always(0.0)) == 0
    assert backoff_delay(4, always(0.25)) == 2.0


def test_no_failure_means_no_wait_and_a_long_outage_does_not_overflow():
    assert backoff_delay(0, always(1.0)) == 0
    assert backoff_delay(100_000, always(1.0)) == 60


NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("soon", None),
        ("inf", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header, seconds):
    assert parse_retry_after(header, now=NOW) == seconds


def test_retry_after_replaces_the_backoff_but_is_capped():
    assert retry_delay(1, 5.0, always(1.0)) == 5.0
    assert retry_delay(1, 3600.0, always(1.0)) == 60.0
    assert retry_delay(3, None, always(1.0)) == 4.0
