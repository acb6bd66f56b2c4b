"""The kiosk's HTTP side of sync: ``SyncClient.sync_once()`` sends the outbox in one pass, and
``fetch_config()`` reads the site's settings. ``SyncLoop`` (sync/loop.py) decides when.

Delivery is at-least-once: an event is marked synced only after the central store's per-event
answer says ``stored`` or ``duplicate``, and the store's ``(device, id)`` key turns a resend
into ``duplicate``, so the central store ends up with each event exactly once. Every answer is
checked against the batch before anything is marked (sync/replies.py).

The UI thread never calls the network: it reads ``SyncLoop.status()``.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import requests

from kiosk.config import Settings, cleartext_token_warning
from kiosk.shared.wire import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from kiosk.store import RecordedEvent, Store
from sync.kept_alive import KeptAliveSession
from sync.replies import (
    MAX_REASON_CHARS,
    SYNCED_STATUSES,
    BatchTooLarge,
    CentralUnreachable,
    SyncFailed,
    TokenRefusedByCentral,
    answer_json,
    check_results,
    raise_for_status,
)

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
CONFIG_PATH = "/api/v1/config"
DEFAULT_TIMEOUTS = (3.05, 10.0)  # (connect, read); 3.05: just over a TCP SYN retransmit
DEFAULT_BATCH_SIZE = 500


def kiosk_version() -> str:
    try:
        return importlib.metadata.version("clinic-kiosk")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def _wire_bytes(batch: list[RecordedEvent]) -> int:
    """The size of the body that posts ``batch``, as requests serialises ``json=``."""
    return len(json.dumps({"events": [event.to_wire() for event in batch]}).encode("utf-8"))


def _refused_in_between(size: int, error: Exception) -> str:
    return (
        f"One event of {size:,} bytes was refused as too large ({error}), but the central "
        f"store takes batches of up to {MAX_BATCH_BYTES // 1024:,} KiB: a proxy between this "
        "kiosk and the store is likely to have a smaller body limit. Nothing was set aside; "
        "the kiosk keeps its events and tries again."
    )


@dataclass(frozen=True)
class SyncResult:
    """What one pass did. ``sent`` counts the events posted (a batch refused for its size and
    re-sent in halves counts once); on a failure ``error`` says why in a sentence."""

    sent: int = 0
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    error: str | None = None
    retry_after: float | None = None
    token_refused: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class SyncClient:
    """Sends the local outbox to one central store. Thread-safe: passes never overlap."""

    def __init__(
        self,
        store: Store,
        url: str,
        token: str,
        ca_file: str | None = None,
        timeouts: tuple[float, float] = DEFAULT_TIMEOUTS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        version: str | None = None,
    ):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"central url {url!r} must start with http:// or https://")
        if not token:
            raise ValueError("a device token is needed to send events")
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size {batch_size} must be from 1 to {MAX_BATCH_EVENTS}")
        self.store = store
        self.url = url.rstrip("/")
        self.timeouts = timeouts
        self.batch_size = batch_size
        self.version = version or kiosk_version()
        self.session = KeptAliveSession()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "User-Agent": f"clinic-kiosk/{self.version}",
                "Accept": "application/json",
            }
        )
        # Verification stays on; a CA file is for a practice's own certificate authority.
        self.session.verify = ca_file or True
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    # -- one pass ----------------------------------------------------------------------------

    def sync_once(self) -> SyncResult:
        """Send unsynced events in device_seq order until none are left or a batch fails.

        Never raises for network or server trouble: the result carries the failure.
        """
        with self._lock:
            return self._drain()

    def _drain(self) -> SyncResult:
        tally: Counter[str] = Counter()
        limit = self.batch_size
        while batch := self.store.unsynced(limit):
            try:
                results = self._post(batch)
            except BatchTooLarge as error:
                if len(batch) > 1:
                    limit = max(1, len(batch) // 2)
                    continue
                size = _wire_bytes(batch)
                if size <= MAX_BATCH_BYTES:
                    # The store takes any single event this small, so what refused it stands
                    # in between (a proxy's body limit) and would refuse every event alike:
                    # quarantining would set the whole backlog aside, one event per pass.
                    # Keep it, and fail the pass as for a store that is down.
                    return SyncResult(**tally, error=_refused_in_between(size, error))
                # One event alone is over the store's own limit: it can never be delivered,
                # so quarantine it rather than let it block everything recorded after it.
                self.store.mark_rejected({batch[0].id: str(error)})
                tally["rejected"] += 1
                continue
            except SyncFailed as error:
                tally["sent"] += len(batch)
                return SyncResult(
                    **tally,
                    error=str(error),
                    retry_after=error.retry_after,
                    token_refused=isinstance(error, TokenRefusedByCentral),
                )
            tally["sent"] += len(batch)
            self._apply(results, tally)
        return SyncResult(**tally)

    def _post(self, batch: list[RecordedEvent]) -> list[dict]:
        body = {"events": [event.to_wire() for event in batch]}
        response = self._request("POST", EVENTS_PATH, json=body)
        raise_for_status(response)
        return check_results(batch, response)

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request; every requests failure becomes a SyncFailed with a sentence."""
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the
            # environment override a session's verify, which would silently drop ca_file.
            return self.session.request(
                method,
                self.url + path,
                timeout=self.timeouts,
                allow_redirects=False,
                verify=self.session.verify,
                **kwargs,
            )
        except requests.exceptions.SSLError as error:
            raise CentralUnreachable(
                f"The central store's TLS certificate was not accepted ({error}); "
                "check central_url and ca_file."
            ) from None
        except requests.exceptions.ConnectTimeout:
            raise CentralUnreachable(
                f"Could not connect to the central store at {self.url} within "
                f"{self.timeouts[0]} s."
            ) from None
        except requests.exceptions.ReadTimeout:
            raise CentralUnreachable(
                f"The central store did not answer within {self.timeouts[1]} s."
            ) from None
        except requests.ConnectionError:
            raise CentralUnreachable(
                f"Cannot reach the central store at {self.url} (connection refused, reset or "
                "closed before the answer)."
            ) from None
        except requests.RequestException as error:
            raise CentralUnreachable(f"The request to the central store failed: {error}") from None
        except OSError as error:
            # Not a RequestException: requests raises a plain OSError when the CA bundle it
            # was given is not there (ca_file is checked at start; it can go meanwhile).
            raise CentralUnreachable(
                f"The request to the central store could not be made: {error}; check ca_file."
            ) from None

    def _apply(self, results: list[dict], tally: Counter[str]) -> None:
        synced = [result["id"] for result in results if result["status"] in SYNCED_STATUSES]
        rejected = {
            result["id"]: str(result.get("reason") or "rejected by the central store")[
                :MAX_REASON_CHARS
            ]
            for result in results
            if result["status"] == "rejected"
        }
        if synced:
            self.store.mark_synced(synced)
        if rejected:
            self.store.mark_rejected(rejected)
            for event_id, reason in rejected.items():
                log.warning("central store rejected event %s: %s", event_id, reason)
        for result in results:
            tally[result["status"]] += 1

    # -- the site's config -------------------------------------------------------------------

    def fetch_config(self) -> dict[str, Any] | None:
        """The site's config from the central store (site name, target, tags), None on failure."""
        with self._lock:
            try:
                response = self._request("GET", CONFIG_PATH)
                raise_for_status(response)
                document = answer_json(response)
            except (SyncFailed, ValueError) as error:
                log.info("could not fetch the site config: %s", error)
                return None
        return document if isinstance(document, dict) else None


def client_for(store: Store, settings: Settings, **options: Any) -> SyncClient | None:
    """A client for the configured central store, or None when none is configured."""
    if not settings.central_url or not settings.central_token:
        return None
    if warning := cleartext_token_warning(settings.central_url):
        log.warning(warning)
    return SyncClient(
        store, settings.central_url, settings.central_token, ca_file=settings.ca_file, **options
    )
