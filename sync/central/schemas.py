"""Response shapes of the public API, for the OpenAPI spec and for checking what we send.

The request body of ``POST /api/v1/events`` is validated per event by ``kiosk.shared.wire`` (an
invalid event is answered, not refused with the whole batch), so it is described here as a
plain JSON schema rather than a model FastAPI would enforce.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from kiosk.shared.wire import EVENT_TYPES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS


class EventResult(BaseModel):
    id: str | None = Field(description="The event's id as sent (null if it had none).")
    status: Literal["stored", "duplicate", "rejected"]
    reason: str | None = Field(None, description="Why the event was rejected.")


class BatchResults(BaseModel):
    results: list[EventResult] = Field(description="One result per event, in the order sent.")


class KioskConfig(BaseModel):
    site: str
    timezone: str = Field(description="IANA zone of the site, e.g. Europe/London.")
    target_wait_min: float
    rating_scale: Literal[4, 5]
    followup_tags: list[str]
    idle_timeout_s: int
    survey: Literal["faces", "fft"] = Field(
        "faces", description="What patients are asked: the smiley faces, or the NHS Friends "
        "and Family Test question with its six answers."
    )
    comments: bool = Field(
        False, description="Whether the kiosk offers its comment box after an answer."
    )
    languages: list[str] = Field(
        description="The languages the site's kiosks offer patients (BCP 47 tags, e.g. "
        "'es', 'zh-Hans'), the site's default first; ['en'] until `site set --languages`."
    )
    protocol_version: int
    device_id: str
    device_name: str
    server_time: str = Field(description="The store's clock (RFC 3339), to spot kiosk skew.")


class BucketFigures(BaseModel):
    bucket: Literal["0-10", "10-20", "20-30", "30+"]
    ratings: int
    pct_positive: float | None
    happy_index: float | None


class Metrics(BaseModel):
    site: str | None
    device: str | None
    from_: str = Field(alias="from")
    to: str
    target_wait_min: float
    lang: str | None = Field(
        default=None,
        description="The language the rating figures were filtered to (the `lang` query "
                    "parameter), or null: every rating.")
    visits: int = Field(description="Checked-in visits in the range that were not cancelled.")
    checked_out: int
    waits: int = Field(description="Visits in the range that were called (n of the wait figures).")
    ratings: int
    happy_index: float | None
    pct_positive: float | None
    pct_negative: float | None
    csat: float | None = Field(
        default=None, description="% positive over the 5-point ratings alone (top two faces)."
    )
    response_rate: float | None = Field(description="Linked ratings / checked-out visits, 0-100.")
    wait_median_min: float | None
    wait_p90_min: float | None
    pct_within_target: float | None
    longest_current_wait_min: float | None
    by_wait_bucket: list[BucketFigures]
    # Appointment-aware figures (README, "Metrics"): added fields, so a client written before
    # them reads the answer as before; each defaults to "no data".
    appointments: int = Field(
        default=0, description="Visits in the range with an appointment time (not cancelled)."
    )
    arrivals_early: int = Field(
        default=0, description="Of those, checked in more than 5 minutes before the appointment "
        "(this product's definition of early; no standard defines one)."
    )
    arrivals_on_time: int = Field(
        default=0, description="Of those, checked in within 5 minutes either side of it, edges "
        "included (this product's own \"on time\" window, not a standard's)."
    )
    arrivals_late: int = Field(
        default=0, description="Of those, checked in more than 5 minutes after it (this product's "
        "definition of late)."
    )
    adjusted_waits: int = Field(
        default=0, description="Visits with an appointment that were called (n of the two "
        "figures below)."
    )
    adjusted_wait_median_min: float | None = Field(
        default=None, description="Median lateness-adjusted wait: called_at - the later of "
        "check-in and appointment time (negative when called before the appointment)."
    )
    adjusted_wait_p90_min: float | None = Field(
        default=None, description="90th percentile of the lateness-adjusted wait."
    )
    overdue_waiting: int = Field(
        default=0, description="Visits with an appointment not yet called that have already "
        "waited more than 15 minutes past the later of their check-in and appointment time: "
        "misses before they are called."
    )
    pct_seen_within_15_min: float | None = Field(
        default=None, description="% called within 15 minutes of the appointment time (of "
        "arrival, for a patient who came late), of adjusted_waits + overdue_waiting, 0-100."
    )
    chair_times: int = Field(
        default=0, description="Checked-out visits in the range (n of the chair figures)."
    )
    chair_median_min: float | None = Field(
        default=None, description="Median chair time: checked_out_at - called_at."
    )
    chair_p90_min: float | None = Field(
        default=None, description="90th percentile chair time."
    )

    model_config = {"populate_by_name": True}


class ErrorDetail(BaseModel):
    """What every refusal carries: a sentence a person can act on (FastAPI's own request
    validation, which answers with a list of problems, is the one exception)."""

    detail: str | list[dict] = Field(description="Why the request was refused.")


# A range bound as the query string carries it: an RFC 3339 instant, or empty for "the default"
# (``from=&to=`` as the README's HTTP API writes the template), so generated clients and
# fuzzers know that an empty value is valid and anything else that is not an instant is a 422.
OPTIONAL_INSTANT = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}]
}
RANGE_ERROR = {"model": ErrorDetail, "description": "A bad 'from' or 'to', or 'from' ≥ 'to'."}
# The range every reporting route takes: ``from`` (a Python keyword, hence the alias) and ``to``.
RangeFrom = Annotated[
    str | None,
    Query(alias="from", description="RFC 3339; default: to - 24 h.",
          json_schema_extra=OPTIONAL_INSTANT),
]
RangeTo = Annotated[
    str | None,
    Query(description="RFC 3339; default: now.", json_schema_extra=OPTIONAL_INSTANT),
]
CSV_RESPONSE = {"description": "CSV with a header row.", "content": {"text/csv": {}}}
REPORTING_REFUSALS = {
    401: {"model": ErrorDetail, "description": "Missing, unknown or revoked reporting token."},
    403: {"model": ErrorDetail, "description": "A device token cannot read; or this "
          "reporting token may not read this route (GET /api/v1/audit needs an admin token)."},
    429: {"model": ErrorDetail, "description": "Too many refused tokens; see Retry-After."},
}
# A site the store does not know, or one outside the token's sites: the same answer.
SITE_MISSING = {404: {"model": ErrorDetail, "description": "No such site (or a site outside "
                                                         "this token's sites: the same answer)."}}


class Health(BaseModel):
    status: Literal["ok"]
    schema_version: int
    replica_lag_s: float | None = Field(
        None, description="Only with a read replica (--read-database-url): how many seconds "
        "the replica is behind the primary (0: caught up; the dashboard's figures may be that "
        "old); null when it cannot be measured (the replica does not answer).")


class HealthDegraded(BaseModel):
    status: Literal["degraded"]
    disk: Literal["full"]
    schema_version: int
    detail: str


EVENT_BATCH_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "maxItems": MAX_BATCH_EVENTS,
            "description": (
                f"At most {MAX_BATCH_EVENTS} events and {MAX_BATCH_BYTES} bytes in all "
                "(else 413). Each event is validated on its own: an invalid one is answered "
                "'rejected' with a reason and does not stop the others."
            ),
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "device_seq", "type", "occurred_at", "data"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "device_seq": {"type": "integer", "minimum": 1},
                    "type": {"type": "string", "enum": list(EVENT_TYPES)},
                    "occurred_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": (
                            "Strict RFC 3339, from 2020-01-01T00:00:00Z to one day after the "
                            "store's clock (else the event is rejected with a reason); so is "
                            "every instant inside data."
                        ),
                    },
                    "visit_id": {"type": ["string", "null"], "format": "uuid"},
                    "data": {
                        "type": "object",
                        "description": (
                            "By type: visit.checked_in {ticket, appointment_at?}; visit.called, "
                            "visit.checked_out {}; visit.cancelled {reason: cancelled|no_show}; "
                            "visit.corrected {field, value} (appointment_at: value may be "
                            "null, to clear it); visit.undone {action}; "
                            "rating.submitted {score, scale, tags?, misuse?, dont_know?, "
                            "comment?, survey?: fft}; "
                            "device.heartbeat {backlog, version, rejected?} (backlog and "
                            "rejected 0 to 1000000000)."
                        ),
                    },
                },
            },
        }
    },
}
