"""The kiosk's pusher: ``SyncClient.sync_once()`` sends the outbox, ``SyncLoop`` schedules it.

Delivery is at-least-once: an event is marked synced only after the central store's per-event
answer says ``stored`` or ``duplicate``, and the store's ``(device, id)`` key turns a resend
into ``duplicate``, so the central store ends up with each event exactly once. Every answer is
checked against the batch before anything is marked: a proxy or a broken server that answers
something else must not make the kiosk forget events nobody stored.

The UI thread never calls the network: it reads ``SyncLoop.status()``, which looks only at
memory and the local database.
"""

from __future__ import annotations

import importlib.metadata
import logging
import random as random_module
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from kiosk.config import Settings, cleartext_token_warning
from kiosk.shared.timeutil import Clock, parse_optional, utc_now
from kiosk.shared.wire import MAX_BATCH_EVENTS
from kiosk.store import RecordedEvent, Store, StoreError
from sync.backoff import BASE_DELAY_S, MAX_DELAY_S, parse_retry_after, retry_delay

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
CONFIG_PATH = "/api/v1/config"
DEFAULT_TIMEOUTS = (3.05, 10.0)  # (connect, read); 3.05: just over a TCP SYN retransmit
DEFAULT_BATCH_SIZE = 500
HEARTBEAT_INTERVAL_S = 30.0
PURGE_INTERVAL = timedelta(days=1)
SYNCED_STATUSES = ("stored", "duplicate")
RESULT_STATUSES = (*SYNCED_STATUSES, "rejected")
MAX_REASON_CHARS = 500


def kiosk_version() -> str:
    try:
        return importlib.metadata.version("clinic-kiosk")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


class SyncFailed(Exception):
    """A batch could not be delivered; the message is a sentence for the staff screen."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CentralUnreachable(SyncFailed):
    """The central store could not be reached, or did not answer in time."""


class TokenRefused(SyncFailed):
    """The central store refused this kiosk's device token (HTTP 401 or 403)."""


class CentralBusy(SyncFailed):
    """The central store asked the kiosk to come back later (HTTP 429 or 503)."""


class CentralError(SyncFailed):
    """The central store answered with an error status."""


class UntrustworthyReply(SyncFailed):
    """The central store's answer does not match the batch sent, so nothing was marked."""


class BatchTooLarge(SyncFailed):
    """The central store refused the batch as too large (HTTP 413)."""


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


def _detail(response: requests.Response) -> str:
    """The server's own sentence (FastAPI's ``detail``) if it sent one, else the status text."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("detail"), str):
        return document["detail"][:MAX_REASON_CHARS]
    return response.reason or "no explanation given"


def check_results(batch: list[RecordedEvent], response: requests.Response) -> list[dict]:
    """The per-event results of a 2xx answer, or UntrustworthyReply if they do not fit the batch."""
    try:
        document = response.json()
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


def _raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status in (401, 403):
        raise TokenRefused(
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
        self.session = requests.Session()
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
                # One event alone is too large: it can never be delivered, so quarantine it
                # rather than let it block everything recorded after it.
                self.store.mark_rejected({batch[0].id: str(error)})
                tally["rejected"] += 1
                continue
            except SyncFailed as error:
                tally["sent"] += len(batch)
                return SyncResult(
                    **tally,
                    error=str(error),
                    retry_after=error.retry_after,
                    token_refused=isinstance(error, TokenRefused),
                )
            tally["sent"] += len(batch)
            self._apply(results, tally)
        return SyncResult(**tally)

    def _post(self, batch: list[RecordedEvent]) -> list[dict]:
        body = {"events": [event.to_wire() for event in batch]}
        response = self._request("POST", EVENTS_PATH, json=body)
        _raise_for_status(response)
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
                _raise_for_status(response)
                document = response.json()
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


# -- the background loop -------------------------------------------------------------------


@dataclass(frozen=True)
class SyncStatus:
    """What the staff screen shows about sync; read without touching the network."""

    configured: bool
    running: bool
    last_success_at: datetime | None
    backlog: int
    rejected: int
    consecutive_failures: int
    last_error: str | None
    token_refused: bool
    site_name: str | None


class SyncLoop:
    """A daemon thread that runs ``sync_once`` on every new event and on a heartbeat interval,
    backing off with full jitter after failures. ``client=None`` means no central store is
    configured: the kiosk records locally and ``status()`` says so."""

    def __init__(
        self,
        store: Store,
        client: SyncClient | None,
        heartbeat_s: float = HEARTBEAT_INTERVAL_S,
        base_delay: float = BASE_DELAY_S,
        max_delay: float = MAX_DELAY_S,
        random: Callable[[], float] = random_module.random,
        pause: Callable[[float], object] | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        retention_days: int | None = None,
    ):
        if heartbeat_s <= 0 or base_delay <= 0 or max_delay < base_delay:
            raise ValueError("heartbeat_s and base_delay must be > 0 and max_delay ≥ base_delay")
        self.store = store
        self.client = client
        self.heartbeat_s = heartbeat_s
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._random = random
        self._clock = clock
        self._monotonic = monotonic
        self._stopping = threading.Event()
        self._wake = threading.Event()
        # The default pause ends early on stop(), so stopping never waits out a backoff.
        self._pause = pause or self._stopping.wait
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._last_success_at: datetime | None = None
        self._last_error: str | None = None
        self._token_refused = False
        self._site_config: dict[str, Any] | None = None
        self.last_delay: float | None = None
        self.retention_days = retention_days
        self._purged_at: datetime | None = None
        store.on_record(self._on_record)

    # -- control -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.client is None or self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sync-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread; True if it ended within ``timeout``. A request in flight is bounded
        by the client's timeouts, and the thread is a daemon, so it never holds the kiosk up."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def wake(self) -> None:
        """Ask for a pass now (when idle; a backoff in progress is not cut short)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _on_record(self, _event: RecordedEvent) -> None:
        self._wake.set()

    # -- what the staff screen reads ---------------------------------------------------------

    def status(self) -> SyncStatus:
        local = self.store.sync_status()
        with self._state_lock:
            last_success = self._last_success_at or parse_optional(local["last_synced_at"])
            return SyncStatus(
                configured=self.client is not None,
                running=self.running,
                last_success_at=last_success,
                backlog=local["backlog"],
                rejected=local["rejected"],
                consecutive_failures=self._failures,
                last_error=self._last_error,
                token_refused=self._token_refused,
                site_name=(self._site_config or {}).get("site"),
            )

    def site_config(self) -> dict[str, Any] | None:
        """The site config last fetched from the central store, if any."""
        with self._state_lock:
            return self._site_config

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        next_heartbeat = self._monotonic()
        while not self._stopping.is_set():
            heartbeat_due = self._monotonic() >= next_heartbeat
            if heartbeat_due:
                next_heartbeat = self._monotonic() + self.heartbeat_s
                self._record_heartbeat()
                self._purge_if_due()
            self._wake.clear()  # before the pass: an event recorded during it wakes us again
            result = self._pass()
            self._after_pass(result)
            if result.ok and (heartbeat_due or self.site_config() is None):
                self._refresh_site_config()
            if result.ok:
                self._wake.wait(max(0.0, next_heartbeat - self._monotonic()))
            else:
                self.last_delay = self._delay_after(result)
                self._pause(self.last_delay)

    def _pass(self) -> SyncResult:
        try:
            return self.client.sync_once()
        except Exception as error:  # the pusher must outlive one bad pass (disk full, a bug)
            log.exception("sync pass failed on the kiosk's side")
            return SyncResult(error=f"Sync failed on this kiosk: {error}")

    def _record_heartbeat(self) -> None:
        # While offline a heartbeat tells the central store nothing it will not learn from the
        # backlog later, and a week offline would queue 20,000 of them.
        if self._failures:
            return
        try:
            local = self.store.sync_status()
            data = {
                "backlog": local["backlog"],
                "version": self.client.version,
                "rejected": local["rejected"],
            }
            self.store.record("device.heartbeat", data)
        except StoreError as error:
            log.warning("could not record a heartbeat: %s", error)

    def _purge_if_due(self) -> None:
        """Once a day, delete local data older than the retention period (never unsynced
        events: ``Store.purge`` keeps those whatever their age)."""
        if not self.retention_days:
            return
        now = self._clock()
        if self._purged_at is not None and now - self._purged_at < PURGE_INTERVAL:
            return
        try:
            gone = self.store.purge(self.retention_days)
        except StoreError as error:
            log.warning("could not purge old data: %s", error)
            return
        self._purged_at = now
        if gone:
            log.info("purged %d events older than %d days", gone, self.retention_days)

    def _refresh_site_config(self) -> None:
        config = self.client.fetch_config()
        if config is not None:
            with self._state_lock:
                self._site_config = config

    def _after_pass(self, result: SyncResult) -> None:
        with self._state_lock:
            if result.ok:
                if self._failures:
                    log.info("sync recovered after %d failures", self._failures)
                self._failures = 0
                self._last_success_at = self._clock()
                self._last_error = None
                self._token_refused = False
                return
            self._failures += 1
            self._last_error = result.error
            self._token_refused = result.token_refused
            failures = self._failures
        # One warning per outage; the rest go to debug so a long outage does not flood the log.
        level = logging.WARNING if failures == 1 else logging.DEBUG
        log.log(level, "sync failed (%d in a row): %s", failures, result.error)

    def _delay_after(self, result: SyncResult) -> float:
        if result.token_refused:
            # Retrying a refused token quickly cannot help; an operator has to act first.
            return self.max_delay
        return retry_delay(
            self._failures, result.retry_after, self._random, self.base_delay, self.max_delay
        )


def sync_loop_for(store: Store, settings: Settings, **options: Any) -> SyncLoop:
    """The loop for a kiosk's settings (not started); without a central URL it only reports."""
    options.setdefault("retention_days", settings.retention_days)
    return SyncLoop(store, client_for(store, settings), **options)
