"""Checks schemathesis runs beside its own (loaded through ``SCHEMATHESIS_HOOKS``).

They make the two widened expectations in ``schemathesis.toml`` exact again:
- ``POST /api/v1/events`` answers an invalid event with 200 and ``rejected`` for that event (the
  wire contract: one bad event never blocks the rest). So a 200 must carry one result per event
  sent, and a batch generated as invalid must have at least one of them ``rejected``.
- The reporting routes answer ``from`` ≥ ``to`` with 422, a rule across two parameters that
  OpenAPI cannot state, and an instant outside 0001-01-02..9999-12-30 UTC with 422 (the README's
  "Ranges": a day at the calendar's ends cannot be shifted into a site's time zone; RFC 3339's
  pattern cannot state it), and a query value holding a NUL character with 422. So a 422 to
  data generated as valid must be for those rules only.
- The FFT return answers a range of months that ends before it starts, or is longer than 36
  months, with 400 (rules the month's pattern cannot state); a 400 to data generated as valid
  must be for one of those.
"""

from __future__ import annotations

import schemathesis

RANGE_RULE = "'from' must be before 'to'."
BOUND_RULES = tuple(
    f"'{name}' must lie between 0001-01-02 and 9999-12-30." for name in ("from", "to")
)


def _generated_as_invalid(case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_negative


@schemathesis.check
def answers_every_event_and_rejects_invalid_ones(ctx, response, case):
    if case.operation.path != "/api/v1/events" or response.status_code != 200:
        return None
    sent = case.body.get("events") if isinstance(case.body, dict) else None
    results = response.json()["results"]
    if not isinstance(sent, list) or len(results) != len(sent):
        raise AssertionError(f"{len(results)} results for a batch of {sent!r:.200}")
    if _generated_as_invalid(case) and not any(r["status"] == "rejected" for r in results):
        raise AssertionError(f"an invalid batch was answered without a rejection: {results}")
    return None


def _nul_refused(detail) -> bool:
    """A query value with a NUL character is refused (README, "HTTP API"): no stored text can
    hold one, and a string's schema cannot say so without a pattern on every parameter."""
    return isinstance(detail, str) and detail.startswith("Query parameter ") and \
        detail.endswith("contains a NUL character (0x00); remove it.")


@schemathesis.check
def valid_data_is_refused_only_for_the_range_rule(ctx, response, case):
    if _generated_as_invalid(case) or response.status_code != 422:
        return None
    detail = response.json().get("detail")
    if detail != RANGE_RULE and detail not in BOUND_RULES and not _nul_refused(detail):
        raise AssertionError(f"valid data refused with 422: {detail!r}")
    return None


FFT_RANGE_RULES = ("ends before it starts", "longer than 36 months")


@schemathesis.check
def a_valid_month_is_refused_only_for_the_range_rules(ctx, response, case):
    if _generated_as_invalid(case) or response.status_code != 400:
        return None
    detail = response.json().get("detail", "")
    if case.operation.path != "/api/v1/export/fft.csv" or not any(
        rule in detail for rule in FFT_RANGE_RULES
    ):
        raise AssertionError(f"valid data refused with 400: {detail!r}")
    return None
