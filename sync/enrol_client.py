"""The kiosk's HTTP side of enrolment by code: ``EnrolmentClient.send`` posts one request of the
enrolment model (``kiosk.enrolment``) and returns the store's status and JSON body.

Every network failure becomes ``EnrolmentUnreachable`` with a sentence for the screen; it runs
on the enrolment driver's worker thread, never the UI's. The device token in a successful
answer is handed to the model and never logged here.
"""

from __future__ import annotations

import requests

from kiosk.enrolment import Request
from kiosk.enrolment_driver import EnrolmentUnreachable
from sync.client import DEFAULT_TIMEOUTS
from sync.kept_alive import KeptAliveSession
from sync.replies import answer_json

PATHS = {"code": "/api/v1/enrol", "token": "/api/v1/enrol/token"}


class EnrolmentClient:
    def __init__(self, ca_file: str | None = None, timeouts=DEFAULT_TIMEOUTS):
        self.session = KeptAliveSession()
        self.session.verify = ca_file or True
        self.timeouts = timeouts

    def send(self, request: Request, device_name: str | None) -> tuple[int, object]:
        if request.kind == "code":
            body = {"device_name": device_name[:64]} if device_name else {}
        else:
            body = {"device_code": request.device_code}
        try:
            response = self.session.post(
                request.url + PATHS[request.kind], json=body, timeout=self.timeouts,
                allow_redirects=False, verify=self.session.verify,
            )
        except requests.exceptions.SSLError:
            raise EnrolmentUnreachable(
                f"The certificate of {request.url} was not accepted; check the address (or "
                "the kiosk's ca_file)."
            ) from None
        except requests.RequestException:
            raise EnrolmentUnreachable(
                f"Cannot reach the central store at {request.url}: check the address and the "
                "network."
            ) from None
        if response.status_code >= 500:
            raise EnrolmentUnreachable(
                f"The central store at {request.url} is not answering properly "
                f"({response.status_code}); it may be starting or overloaded."
            )
        try:
            return response.status_code, answer_json(response)
        except ValueError:
            return response.status_code, None

    def close(self) -> None:
        self.session.close()
