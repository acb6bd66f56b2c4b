"""The first-start screen of a kiosk with no device token, as plain state. No Kivy, no network.

Stages: ``address`` (the central store's address, typed on the on-screen keyboard unless the
config gives it) → ``asking`` (a code is being requested) → ``code`` (the short code and its
QR code are shown; the store is polled at the interval it gives) → ``enrolled``. A denied or
expired code, or a store that cannot be reached, is a stage of its own that says so, with a
way on: a new code, or another address. ``use_locally()`` (the address screen's "Use without
a central store") ends enrolment in the stage ``local``: the kiosk records on its own disk,
as a kiosk with no central store always has.

The model never waits on the network. ``next_request()`` says what to ask the central store
next (at most one request at a time, polls no sooner than the store's interval); whoever
runs requests (``kiosk.enrolment_driver``) hands each answer back to ``answered()`` or
``failed()``. The answers are those of ``POST /api/v1/enrol`` and ``/api/v1/enrol/token``
(RFC 8628's names: authorization_pending, slow_down, access_denied, expired_token).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from kiosk.shared.enrolment_codes import normalise_code
from kiosk.shared.timeutil import Clock, utc_now

MAX_ADDRESS = 200
# A store that cannot be reached while the code is up is tried again after this long (the
# store's interval if longer): the code stays on screen, with a line saying so.
RETRY_UNREACHABLE_S = 5
# Keys of the on-screen keyboard besides letters and digits; what an address can contain.
ADDRESS_SYMBOLS = ":/.-_"
ADD_KIOSK_PATH = "/devices/add"  # the dashboard's "Add a kiosk" page, on the store's address


class AddressError(ValueError):
    """A typed central store address that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class Request:
    """What to ask the central store: ``kind`` is "code" (POST /api/v1/enrol) or "token"."""

    kind: str
    url: str
    device_code: str | None = field(default=None, repr=False)  # a secret: never in a log


@dataclass(frozen=True)
class Enrolled:
    """What the store gave when the code was approved."""

    central_url: str
    token: str = field(repr=False)  # never in a log line or a traceback
    device_id: str
    site: str
    device_name: str
    role: str


def check_address(text: str) -> str:
    """The address as the kiosk will use it, or AddressError with a sentence."""
    address = text.strip()
    if not address:
        raise AddressError("Type the central store's address first, e.g. "
                           "https://kiosk.clinic.example.")
    if "://" not in address:
        address = "https://" + address
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https"):
        raise AddressError(f"{text.strip()!r} is not a web address: it must start with "
                           "https:// (or http:// on the clinic's own network).")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or " " in address or parts.query or parts.fragment:
        raise AddressError(f"{text.strip()!r} is not a web address the kiosk can use: type "
                           "it as https://name or https://name:port, as IT gave it.")
    return address.rstrip("/")


class EnrolmentModel:
    """The enrolment screen's state; every method is one tap or one answer."""

    def __init__(
        self,
        address: str | None = None,
        device_name: str | None = None,
        reason: str | None = None,
        clock: Clock = utc_now,
    ):
        self.clock = clock
        self.device_name = device_name
        # Why enrolment is needed beyond "no token yet" (e.g. a copied disk), shown on top.
        self.reason = reason
        self.typed = address or ""
        self.url: str | None = None
        self.stage = "address"
        self.error = ""  # a sentence about the last thing that went wrong, on screen
        self.user_code = ""
        self.qr_link = ""
        self.device_code: str | None = None
        self.interval = RETRY_UNREACHABLE_S
        self.expires_at: datetime | None = None
        self.next_at: datetime | None = None
        self.in_flight: Request | None = None
        self.enrolled: Enrolled | None = None
        self.trouble = ""  # the store could not be reached during polling (the code stays)
        self._final_poll = False  # the poll made when the code's time is up
        if address:
            self.submit_address()

    # -- the on-screen keyboard --------------------------------------------------------------

    def type_key(self, key: str) -> None:
        if self.stage != "address":
            return
        if len(key) != 1 or not (key.isascii() and (key.isalnum() or key in ADDRESS_SYMBOLS)):
            raise ValueError(f"{key!r} is not a key of the address keyboard")
        if len(self.typed) < MAX_ADDRESS:
            self.typed += key
        self.error = ""

    def type_text(self, text: str) -> None:
        """A key that types several characters at once (``https://``)."""
        for key in text:
            self.type_key(key)

    def backspace(self) -> None:
        self.typed = self.typed[:-1]
        self.error = ""

    def submit_address(self) -> None:
        """The keyboard's "Next": check the address, then ask it for a code."""
        try:
            self.url = check_address(self.typed)
        except AddressError as error:
            self.error = str(error)
            self.stage = "address"
            return
        self.typed = self.url
        self._ask_for_code()

    def change_address(self) -> None:
        self._forget_code()
        self.stage = "address"
        self.error = ""

    def use_locally(self) -> None:
        """Record locally, with no central store (the product works offline first)."""
        self._forget_code()
        self.url = None
        self.stage = "local"
        self.error = ""

    def new_code(self) -> None:
        """After a denied or expired code, or an unreachable store: ask again."""
        if self.url is None:
            self.change_address()
            return
        self._ask_for_code()

    # -- talking to the central store (through whoever runs the requests) --------------------

    def next_request(self) -> Request | None:
        """The request to send now, if any; it counts as sent until answered or failed."""
        if self.in_flight is not None or self.url is None:
            return None
        if self.stage == "asking":
            self.in_flight = Request("code", self.url)
        elif self.stage == "code" and self.clock() >= self.next_at:
            self.in_flight = Request("token", self.url, self.device_code)
        return self.in_flight

    def answered(self, request: Request, status: int, body: object) -> None:
        """The store's answer (HTTP status and JSON body) to ``request``."""
        if request is not self.in_flight:
            return  # an answer for a code or address given up meanwhile
        self.in_flight = None
        if not isinstance(body, dict):
            self._failed_now("The central store's answer was not understood; is this the "
                             "central store's address?")
            return
        if request.kind == "code":
            self._took_code(status, body)
        else:
            self._took_poll(status, body)

    def failed(self, request: Request, sentence: str) -> None:
        """The store could not be reached (or answered with a server error)."""
        if request is not self.in_flight:
            return
        self.in_flight = None
        self._failed_now(sentence)

    def tick(self) -> None:
        """About once a second: a code shown for its whole life expires here too, even if the
        store cannot be reached to say so; but first one last poll lets the store decide (a
        manager may have approved in the last seconds: the store hands that token out for a
        short grace after the code's end)."""
        if self.stage != "code" or not self.expires_at or self.clock() < self.expires_at:
            return
        if self.in_flight is not None:
            return  # its answer decides
        if not self._final_poll:
            self._final_poll = True
            self.next_at = self.clock()
            return
        self._finish_code("expired")

    # -- what the screen shows ----------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Enrolment is over: enrolled, or the kiosk records locally."""
        return self.stage in ("enrolled", "local")

    def seconds_left(self) -> int:
        if self.expires_at is None:
            return 0
        return max(0, int((self.expires_at - self.clock()).total_seconds()))

    # -- inside ---------------------------------------------------------------------------------

    def _ask_for_code(self) -> None:
        self._forget_code()
        self.stage = "asking"
        self.error = ""

    def _forget_code(self) -> None:
        self.in_flight = None
        self.device_code = None
        self.user_code = self.qr_link = self.trouble = ""
        self.expires_at = self.next_at = None
        self._final_poll = False

    def _failed_now(self, sentence: str) -> None:
        if self.stage == "code":
            # The code stays up: the store may come back before it expires.
            self.trouble = sentence
            self.next_at = self.clock() + timedelta(seconds=max(self.interval,
                                                                RETRY_UNREACHABLE_S))
        else:
            self.stage = "unreachable"
            self.error = sentence

    def _took_code(self, status: int, body: dict) -> None:
        if status == 429:
            self.stage = "unreachable"
            self.error = str(body.get("detail") or "The central store asks to wait before a new "
                             "code.")
            return
        fields = ("device_code", "user_code", "verification_uri", "interval", "expires_in")
        if status != 200 or not all(key in body for key in fields) or normalise_code(
                str(body["user_code"])) is None or not (
                _seconds(body["interval"]) and _seconds(body["expires_in"])):
            detail = body.get("detail")
            self._failed_now(f"The central store did not give a code ({status}"
                             f"{': ' + str(detail) if detail else ''}); is this its address?")
            return
        now = self.clock()
        self.device_code = str(body["device_code"])
        self.user_code = str(body["user_code"])
        # The QR code is built from the address this kiosk reaches the store at, not from the
        # store's verification_uri: behind a proxy the store may not know its public name.
        self.qr_link = f"{self.url}{ADD_KIOSK_PATH}?code={self.user_code}"
        self.interval = max(1, int(body["interval"]))
        self.expires_at = now + timedelta(seconds=int(body["expires_in"]))
        self.next_at = now + timedelta(seconds=self.interval)
        self.stage = "code"

    def _took_poll(self, status: int, body: dict) -> None:
        self.trouble = ""
        if "interval" in body and _seconds(body["interval"]) and body["interval"] > 0:
            self.interval = body["interval"]
        error = body.get("error")
        if status == 200 and _usable_token(body.get("access_token")):
            self.enrolled = Enrolled(
                central_url=self.url, token=body["access_token"],
                device_id=str(body.get("device_id", "")), site=str(body.get("site", "")),
                device_name=str(body.get("device_name", "")), role=str(body.get("role", "desk")),
            )
            self.stage = "enrolled"
            self._forget_code()
            return
        if error == "slow_down":
            self.interval += 5 if "interval" not in body else 0
        elif error == "access_denied":
            self._finish_code("denied")
            return
        elif error in ("expired_token", "invalid_grant"):
            self._finish_code("expired")
            return
        elif error != "authorization_pending":
            self._failed_now(f"The central store answered {status} to the poll; trying again.")
            return
        self.next_at = self.clock() + timedelta(seconds=self.interval)

    def _finish_code(self, stage: str) -> None:
        self._forget_code()
        self.stage = stage


# A code lives 15 minutes; a day is far beyond anything a store would ask for.
MAX_ANSWERED_SECONDS = 24 * 3600
# What a bearer token can hold (RFC 6750's b64token): an empty one, or one with a line break
# or a character outside ASCII, could never be sent in a header and would stop every sync.
TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,512}")


def _seconds(value: object) -> bool:
    """A whole number of seconds a store may give for a code's interval or life."""
    return (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value <= MAX_ANSWERED_SECONDS)


def _usable_token(value: object) -> bool:
    return isinstance(value, str) and TOKEN.fullmatch(value) is not None
