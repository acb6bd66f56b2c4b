"""What the central store's answer means to the kiosk's pusher.

Each HTTP status becomes a ``SyncFailed`` with a sentence for the staff screen (and the
``Retry-After`` the server asked for), and a 2xx answer is checked against the batch sent
before anything is marked: a proxy or a broken server that answers something else must not
make the kiosk forget events nobody stored.
"""

from __future__ import annotations

import requests

from kiosk.store import RecordedEvent
from sync.backoff import parse_retry_after

SYNCED_STATUSES = ("stored", "duplicate")
RESULT_STATUSES = (*SYNCED_STATUSES, "rejected")
MAX_REASON_CHARS = 500


def answer_json(response: requests.Response):
    """The answer's JSON; ValueError when it is none. A body nested a few thousand levels deep
    (4 KB of brackets) makes the parser raise RecursionError, which is no ValueError and
    would escape every caller that expects one (the sync loop's thread died of it)."""
    try:
        return response.json()
    except RecursionError:
        raise ValueError("the answer is nested too deeply to read") from None


class SyncFailed(Exception):
    """A batch could not be delivered; the message is a sentence for the staff screen."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CentralUnreachable(SyncFailed):
    """The central store could not be reached, or did not answer in time."""


class TokenRefusedByCentral(SyncFailed):
    """The central store refused this kiosk's device token (HTTP 401 or 403)."""


class CentralBusy(SyncFailed):
    """The central store asked the kiosk to come back later (HTTP 429 or 503)."""


class CentralError(SyncFailed):
    """The central store answered with an error status."""


class UntrustworthyReply(SyncFailed):
    """The central store's answer does not match the batch sent, so nothing was marked."""


class BatchTooLarge(SyncFailed):
    """The central store refused the batch as too large (HTTP 413)."""


def _detail(response: requests.Response) -> str:
    """The server's own sentence (FastAPI's ``detail``) if it sent one, else the status text."""
    try:
        document = answer_json(response)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("detail"), str):
        return document["detail"][:MAX_REASON_CHARS]
    return response.reason or "no explanation given"


def check_results(batch: list[RecordedEvent], response: requests.Response) -> list[dict]:
    """The per-event results of a 2xx answer, or UntrustworthyReply if they do not fit the batch."""
    try:
        document = answer_json(response)
    except ValueError:
        raise UntrustworthyReply(
            "The central store's answer is not JSON; nothing was marked as sent."
        ) from None
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        raise UntrustworthyReply("The central store's answer has no list of results.")
    if len(results) != len(batch):
        raise UntrustworthyReply(
            f"The central store answered for {len(results)} events instead of {len(batch)}; "
            "nothing was marked as sent."
        )
    for position, (event, result) in enumerate(zip(batch, results, strict=True)):
        if not isinstance(result, dict) or result.get("id") != event.id:
            raise UntrustworthyReply(
                f"The central store's result {position + 1} is not for the event sent there; "
                "nothing was marked as sent."
            )
        if result.get("status") not in RESULT_STATUSES:
            raise UntrustworthyReply(
                f"The central store answered with an unknown status {result.get('status')!r}; "
                "nothing was marked as sent."
            )
    return results


def raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status in (401, 403):
        raise TokenRefusedByCentral(
            f"The central store refused this kiosk's token (HTTP {status}): {_detail(response)}"
        )
    if status == 413:
        raise BatchTooLarge(
            f"The central store refused the batch as too large: {_detail(response)}"
        )
    if status in (429, 503):
        raise CentralBusy(
            f"The central store is busy (HTTP {status}) and asked to retry later.", retry_after
        )
    if 300 <= status < 400:
        where = response.headers.get("Location", "another address")
        raise CentralError(
            f"The central store redirected to {where}; set central_url to that address."
        )
    raise CentralError(
        f"The central store answered HTTP {status}: {_detail(response)}", retry_after
    )
