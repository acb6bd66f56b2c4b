"""Reading an event batch off the wire: the size limits first, then the JSON.

The 1 MiB limit is checked twice: against ``Content-Length`` before reading anything, and
against the bytes actually read, because a chunked request has no ``Content-Length`` and a
client may lie in it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException, Request

from kiosk.shared.wire import MAX_BATCH_BYTES, MAX_BATCH_EVENTS

TOO_LARGE = (
    f"The batch is larger than {MAX_BATCH_BYTES} bytes; send at most {MAX_BATCH_EVENTS} "
    "events and 1 MiB per request."
)
# After refusing, read on this far so a client still sending gets our answer instead of a
# reset connection; beyond it we stop listening.
DRAIN_LIMIT = 8 * MAX_BATCH_BYTES


def require_json_content_type(request: Request) -> None:
    """Refuse a body declared as something other than JSON (415), or compressed (415: the
    store reads the bytes as they come, and the 1 MiB limit is on those bytes); a request
    that declares no type is read as JSON, as the wire format says the body is."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise HTTPException(
            415,
            f"The batch is sent with Content-Encoding: {encoding}, which this store does not "
            "read; send it as plain JSON, without Content-Encoding.",
        )
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(
            415, f"The batch must be sent as Content-Type: application/json, not {media_type!r}."
        )


async def read_limited_body(request: Request, limit: int = MAX_BATCH_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "The Content-Length header is not a number.")
        if int(declared) > limit:
            raise HTTPException(413, TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()  # one iterator: Starlette allows a body to be streamed once
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await _drain(stream, size)
            raise HTTPException(413, TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(stream: AsyncIterator[bytes], already: int) -> None:
    async for chunk in stream:
        already += len(chunk)
        if already > DRAIN_LIMIT:
            return


def _has_lone_surrogate(body: bytes, document: Any) -> bool:
    if b"\\u" not in body:
        return False  # the common case: no escapes at all, nothing to encode again
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_batch(body: bytes) -> list[Any]:
    """The batch's list of events (each still unvalidated); HTTPException with a sentence."""
    try:
        # Strict UTF-8 first: json.loads(bytes) would let the bytes of a UTF-16 surrogate
        # (ED A0 80) through as text that can be stored but never encoded again for the answer.
        text = body.decode("utf-8-sig")  # strict, and a leading BOM is read as before
    except UnicodeDecodeError as error:
        raise HTTPException(
            400,
            f"The request body is not UTF-8 encoded JSON (byte {error.start} cannot be read "
            "as UTF-8).",
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise HTTPException(
            400,
            f"The request body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}.",
        ) from None
    except RecursionError:
        # Valid JSON can nest deeper than Python's stack; a batch never nests more than 4.
        raise HTTPException(400, "The request body nests JSON too deeply.") from None
    except ValueError:
        # An integer literal longer than Python's int_max_str_digits (4300 digits).
        raise HTTPException(400, "The request body has a number too long to read.") from None
    if _has_lone_surrogate(body, document):
        # JSON may spell half a UTF-16 pair (\ud800); it cannot be stored or echoed back as
        # UTF-8, so refuse it here rather than fail while answering.
        raise HTTPException(400, "The request body has an unpaired \\uD800-\\uDFFF escape.")
    if not isinstance(document, dict) or "events" not in document:
        raise HTTPException(422, 'The request body must be a JSON object {"events": [...]}.')
    unknown = sorted(set(document) - {"events"})
    if unknown:
        raise HTTPException(422, f"Unknown field(s) in the batch: {', '.join(unknown)}.")
    events = document["events"]
    if not isinstance(events, list):
        raise HTTPException(422, '"events" must be a JSON list of events.')
    if len(events) > MAX_BATCH_EVENTS:
        raise HTTPException(
            413,
            f"The batch has {len(events)} events; send at most {MAX_BATCH_EVENTS} per request.",
        )
    return events
