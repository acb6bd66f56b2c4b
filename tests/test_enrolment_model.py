"""The enrolment screen's model without a window or a network: every tap and every answer the
central store can give (RFC 8628's names), on a clock the test moves."""

from __future__ import annotations

import pytest

from kiosk import presenter
from kiosk.enrolment import EnrolmentModel, check_address
from kiosk.shared.enrolment_codes import format_code, normalise_code

CODES = {"device_code": "secret-device-code", "user_code": "BCDF-GHJK",
         "verification_uri": "https://store.example/devices/add",
         "verification_uri_complete": "https://store.example/devices/add?code=BCDF-GHJK",
         "interval": 5, "expires_in": 900}
TOKEN = {"access_token": "dev_abc", "token_type": "Bearer", "device_id": "d-1",
         "site": "North", "device_name": "desk-2", "role": "ratings"}


def showing_code(clock) -> EnrolmentModel:
    model = EnrolmentModel(address="https://store.example", clock=clock)
    request = model.next_request()
    assert request.kind == "code" and request.url == "https://store.example"
    model.answered(request, 200, CODES)
    assert model.stage == "code"
    return model


def poll_once(model, clock, status: int, body) -> None:
    clock.advance(seconds=model.interval)
    request = model.next_request()
    assert request is not None and request.kind == "token"
    assert request.device_code == "secret-device-code"
    model.answered(request, status, body)


@pytest.mark.parametrize("typed, used", [
    ("store.example", "https://store.example"),
    ("http://10.0.0.5:8700/", "http://10.0.0.5:8700"),
    ("  https://kiosk.clinic.example  ", "https://kiosk.clinic.example"),
])
def test_an_address_is_taken_as_people_type_it(typed, used):
    assert check_address(typed) == used


@pytest.mark.parametrize("typed, says", [
    ("", "Type the central store's address first"),
    ("ftp://store.example", "must start with https://"),
    ("store:99999", "not a web address the kiosk can use"),
    ("https://", "not a web address the kiosk can use"),
])
def test_a_bad_address_is_a_sentence_and_asks_nothing(typed, says, clock):
    model = EnrolmentModel(clock=clock)
    model.type_text(typed.replace(" ", "")) if typed else None
    model.submit_address()
    assert model.stage == "address" and says in model.error
    assert model.next_request() is None


def test_the_keyboard_types_only_what_an_address_holds(clock):
    model = EnrolmentModel(clock=clock)
    model.type_text("ab1:/.-")
    model.backspace()
    assert model.typed == "ab1:/."
    with pytest.raises(ValueError):
        model.type_key("?")


def test_approval_gives_the_token_once_polled_at_the_interval(clock):
    model = showing_code(clock)
    assert model.next_request() is None  # not before the interval
    poll_once(model, clock, 400, {"error": "authorization_pending", "interval": 5})
    assert model.stage == "code"
    poll_once(model, clock, 200, TOKEN)
    assert model.done and model.enrolled.token == "dev_abc"
    assert (model.enrolled.site, model.enrolled.role) == ("North", "ratings")
    assert model.device_code is None  # the secret is forgotten once used


def test_slow_down_raises_the_interval(clock):
    model = showing_code(clock)
    poll_once(model, clock, 400, {"error": "slow_down", "interval": 10})
    assert model.interval == 10
    clock.advance(seconds=5)
    assert model.next_request() is None
    clock.advance(seconds=5)
    assert model.next_request() is not None


@pytest.mark.parametrize("error, stage, title", [
    ("access_denied", "denied", "The code was denied"),
    ("expired_token", "expired", "The code has expired"),
    ("invalid_grant", "expired", "The code has expired"),
])
def test_a_refused_code_says_so_and_a_new_code_is_one_tap(clock, error, stage, title):
    model = showing_code(clock)
    poll_once(model, clock, 400, {"error": error, "interval": 5})
    assert model.stage == stage
    assert presenter.enrolment_view(model)["title"] == title
    assert presenter.enrolment_view(model)["panel"] == "retry"
    model.new_code()
    assert model.next_request().kind == "code"


def test_a_code_expires_on_the_kiosk_even_when_the_store_is_gone(clock):
    model = showing_code(clock)
    clock.advance(seconds=899)
    model.tick()
    assert model.stage == "code" and model.seconds_left() == 1
    clock.advance(seconds=1)
    model.tick()
    # One last poll lets the store decide; it cannot be reached, so the code expires here.
    last = model.next_request()
    assert last.kind == "token" and model.stage == "code"
    model.failed(last, "Cannot reach the central store at https://store.example.")
    model.tick()
    assert model.stage == "expired"


def test_a_code_approved_in_its_last_seconds_is_collected_by_the_last_poll(clock):
    model = showing_code(clock)
    for _ in range(179):  # polled every 5 s, pending until 895 s
        poll_once(model, clock, 400, {"error": "authorization_pending", "interval": 5})
    clock.advance(seconds=5)  # 900 s: the manager approved at 897 s
    model.tick()
    assert model.stage == "code"
    model.answered(model.next_request(), 200, TOKEN)
    assert model.done and model.enrolled.token == "dev_abc"


def test_a_last_poll_still_pending_ends_in_expired(clock):
    model = showing_code(clock)
    clock.advance(seconds=900)
    model.tick()
    model.answered(model.next_request(), 400, {"error": "authorization_pending",
                                               "interval": 5})
    model.tick()
    assert model.stage == "expired" and model.next_request() is None


def test_a_store_down_while_polling_keeps_the_code_up_and_tries_again(clock):
    model = showing_code(clock)
    clock.advance(seconds=5)
    request = model.next_request()
    model.failed(request, "Cannot reach the central store at https://store.example.")
    assert model.stage == "code" and model.user_code == "BCDF-GHJK"
    assert "Cannot reach" in presenter.enrolment_view(model)["status"]
    poll_once(model, clock, 400, {"error": "authorization_pending", "interval": 5})
    assert model.trouble == ""
    poll_once(model, clock, 200, TOKEN)
    assert model.done


def test_a_store_down_when_asking_says_so(clock):
    model = EnrolmentModel(address="https://store.example", clock=clock)
    model.failed(model.next_request(), "Cannot reach the central store.")
    assert model.stage == "unreachable"
    view = presenter.enrolment_view(model)
    assert view["title"] == "The central store did not answer" and view["panel"] == "retry"


@pytest.mark.parametrize("status, body", [
    (200, {"unexpected": True}), (404, {"detail": "Not Found"}), (200, "not json"),
    (200, {**CODES, "user_code": "AEIO-U123"}),
    # Numbers a store would never give: of the wrong type or past any sensible life.
    (200, {**CODES, "interval": "soon"}), (200, {**CODES, "interval": None}),
    (200, {**CODES, "interval": 10**12}), (200, {**CODES, "expires_in": 10**15}),
    (200, {**CODES, "expires_in": 1e400}), (200, {**CODES, "expires_in": True}),
])
def test_an_address_that_is_not_a_central_store_says_so(clock, status, body):
    model = EnrolmentModel(address="https://elsewhere.example", clock=clock)
    model.answered(model.next_request(), status, body)
    assert model.stage == "unreachable"
    assert "central store" in model.error


def test_an_answer_to_a_request_given_up_is_ignored(clock):
    model = showing_code(clock)
    clock.advance(seconds=5)
    request = model.next_request()
    model.change_address()
    model.answered(request, 200, TOKEN)
    assert model.stage == "address" and model.enrolled is None


def test_the_screen_counts_down_whole_minutes(clock):
    model = showing_code(clock)
    assert "valid for 15 more minutes" in presenter.enrolment_view(model)["status"]
    clock.advance(seconds=840)
    assert "valid for 1 more minute." in presenter.enrolment_view(model)["status"]


def test_codes_are_read_in_any_case_with_or_without_the_hyphen():
    assert normalise_code(" bcdf-ghjk ") == "BCDFGHJK"
    assert normalise_code("BCDF GHJK") == "BCDFGHJK"
    assert normalise_code("BCDF-GHJ0") is None  # no digits: nothing to mistake for a letter
    assert normalise_code("ABCD-EFGH") is None  # no vowels: no look-alikes, no words
    assert format_code("BCDFGHJK") == "BCDF-GHJK"


def test_use_without_a_central_store_ends_enrolment_recording_locally():
    model = EnrolmentModel(address="https://store.example")
    model.use_locally()
    assert model.done and model.stage == "local" and model.enrolled is None
    assert model.next_request() is None


def test_the_qr_link_is_built_from_the_kiosks_own_address(clock):
    model = EnrolmentModel(address="https://kiosk.clinic.example", clock=clock)
    behind_a_proxy = {**CODES, "verification_uri": "http://127.0.0.1:8700/devices/add",
                      "verification_uri_complete":
                      "http://127.0.0.1:8700/devices/add?code=BCDF-GHJK"}
    model.answered(model.next_request(), 200, behind_a_proxy)
    assert model.qr_link == "https://kiosk.clinic.example/devices/add?code=BCDF-GHJK"


@pytest.mark.parametrize("token", ["", "dev\nabc", "dev_\U0001f600", "x" * 513, None, 7])
def test_a_token_no_header_could_carry_is_not_taken(clock, token):
    """An empty token would enrol a kiosk that never syncs; one with a line break or a
    character outside ASCII could never be sent: the poll is answered as a failed one, and
    the kiosk keeps its code and asks again."""
    model = showing_code(clock)
    poll_once(model, clock, 200, {**TOKEN, "access_token": token})
    assert not model.done and model.stage == "code"


def test_a_poll_asking_for_an_absurd_interval_keeps_the_one_it_had(clock):
    model = showing_code(clock)
    poll_once(model, clock, 400, {"error": "authorization_pending", "interval": 10**12})
    assert model.interval == CODES["interval"]
    poll_once(model, clock, 200, TOKEN)
    assert model.done
