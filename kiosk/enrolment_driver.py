"""Runs the enrolment model's requests on a worker thread, so the screen never waits on the
network, and hands each answer back to the model on the caller's (the UI's) thread.

``pump()`` is called on every tick and after every tap: it collects a finished answer, then
starts the model's next request, if any. When the model is enrolled, ``on_enrolled`` runs
once (the launcher keeps the token and starts sync). No Kivy here; the HTTP side is the
``EnrolmentService`` the sync package provides (``sync.enrol_client``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from kiosk.enrolment import Enrolled, EnrolmentModel, Request

log = logging.getLogger(__name__)


class EnrolmentUnreachable(Exception):
    """The central store could not be asked; the message is a sentence for the screen."""


class EnrolmentService(Protocol):
    def send(self, request: Request, device_name: str | None) -> tuple[int, object]:
        """The store's HTTP status and JSON body; EnrolmentUnreachable if there is none."""
        ...


class EnrolmentDriver:
    def __init__(
        self,
        model: EnrolmentModel,
        service: EnrolmentService,
        on_enrolled: Callable[[Enrolled], None],
        on_code: Callable[[str, str], None] | None = None,
        on_local: Callable[[], None] | None = None,
    ):
        self.model = model
        self.service = service
        self.on_enrolled = on_enrolled
        # "Use without a central store": the launcher starts the kiosk recording locally.
        self.on_local = on_local
        # Told each new code (and its link) as it is shown: the launcher prints it, so a kiosk
        # without a screen attached (or being set up over SSH) can be enrolled from its log.
        # The device code, the secret that collects the token, is never passed on.
        self.on_code = on_code
        self._code_told = ""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enrolment")
        self._pending: tuple[Request, Future] | None = None
        self._reported = False

    @property
    def done(self) -> bool:
        return self._reported

    def pump(self) -> None:
        if self._reported:
            return
        if self._pending is not None and self._pending[1].done():
            request, future = self._pending
            self._pending = None
            try:
                status, body = future.result()
            except EnrolmentUnreachable as error:
                self.model.failed(request, str(error))
            except Exception as error:  # a bug in the client must not stop the screen
                log.exception("enrolment request failed")
                self.model.failed(request, f"The request failed: {error}")
            else:
                self.model.answered(request, status, body)
        self.model.tick()
        if self.on_code and self.model.user_code and self.model.user_code != self._code_told:
            self._code_told = self.model.user_code
            self.on_code(self.model.user_code, self.model.qr_link)
        if self.model.done:
            self._reported = True
            if self.model.enrolled is not None:
                self.on_enrolled(self.model.enrolled)
            elif self.on_local is not None:
                self.on_local()
            return
        if self._pending is None and (request := self.model.next_request()) is not None:
            future = self._executor.submit(self.service.send, request, self.model.device_name)
            self._pending = (request, future)

    def wait(self, timeout: float) -> None:
        """Wait for the request in flight (tests and benchmarks; the UI never waits)."""
        if self._pending is not None:
            self._pending[1].exception(timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        if (close_service := getattr(self.service, "close", None)) is not None:
            close_service()  # its HTTP session and connections
