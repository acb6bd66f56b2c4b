"""The visit state machine, undo, corrections, the rating flow, misuse, idle timers."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from kiosk.desk import FrontDesk
from kiosk.errors import InvalidTransition, ModelError, NothingToUndo
from kiosk.idle import IdleTimer
from kiosk.rating_flow import RatingFlow
from kiosk.shared import metrics
from kiosk.store import Store, StoreError


def events_of(store, visit_id):
    return [(e["type"], json.loads(e["data"])) for e in store.events() if e["visit_id"] == visit_id]


def test_check_in_hands_out_daily_ticket_codes(desk, clock):
    first = desk.check_in()
    second = desk.check_in(appointment_at=clock() + timedelta(minutes=10))
    assert (first["ticket"], second["ticket"]) == ("A-001", "A-002")
    assert second["appointment_at"] == "2026-11-23T09:10:00.000Z"
    clock.advance(minutes=60 * 24)
    assert desk.check_in()["ticket"] == "A-001"


def test_ticket_prefix_and_local_day_come_from_settings(store, settings, clock):
    late = replace(settings, ticket_prefix="B", timezone="Pacific/Auckland")
    desk = FrontDesk(store, late, clock)
    visit = desk.check_in()
    assert visit["ticket"] == "B-001"
    assert visit["day"] == "2026-11-23"  # 09:00 UTC is 22:00 in Auckland, same date


def test_the_whole_visit_and_its_events(desk, store, clock):
    visit = desk.check_in()
    clock.advance(minutes=12)
    assert desk.call_in(visit["id"])["status"] == "in_chair"
    clock.advance(minutes=20)
    done = desk.check_out(visit["id"])
    assert done["status"] == "done"
    assert done["called_at"] == "2026-11-23T09:12:00.000Z"
    assert done["checked_out_at"] == "2026-11-23T09:32:00.000Z"
    assert [t for t, _ in events_of(store, visit["id"])] == [
        "visit.checked_in", "visit.called", "visit.checked_out"]
    assert desk.staff_summary()["wait_median_min"] == 12


@pytest.mark.parametrize(
    ("steps", "action", "message"),
    [
        (["call_in"], "call_in", "already called in at 09:00"),
        ([], "check_out", "not been called in yet"),
        (["cancel"], "check_out", "it is cancelled"),
        (["cancel"], "call_in", "it is cancelled"),
        (["call_in", "check_out"], "call_in", "already checked out"),
        (["call_in", "check_out"], "cancel", "already checked out"),
        (["call_in"], "no_show", "already called in"),
    ],
)
def test_invalid_transitions_are_refused_with_a_sentence(desk, store, steps, action, message):
    visit = desk.check_in()
    for step in steps:
        getattr(desk, step)(visit["id"])
    before = len(store.events())
    with pytest.raises(InvalidTransition, match=message):
        if action == "no_show":
            desk.cancel(visit["id"], "no_show")
        else:
            getattr(desk, action)(visit["id"])
    assert len(store.events()) == before


def test_unknown_visit_and_reason_are_refused(desk):
    with pytest.raises(ModelError, match="does not exist"):
        desk.call_in("nope")
    visit = desk.check_in()
    with pytest.raises(ModelError, match="not a reason"):
        desk.cancel(visit["id"], "bored")


def test_cancel_and_no_show_leave_the_queue_and_the_counts(desk):
    a, b, c = desk.check_in(), desk.check_in(), desk.check_in()
    desk.cancel(a["id"])
    desk.cancel(b["id"], "no_show")
    assert [e.ticket for e in desk.queue()] == [c["ticket"]]
    assert desk.staff_summary()["visits"] == 1


def test_queue_levels_against_the_target(desk, clock):
    visit = desk.check_in()
    assert desk.queue()[0].level == "ok"
    clock.advance(minutes=12)
    assert desk.queue()[0].level == "near"
    clock.advance(minutes=4)
    entry = desk.queue()[0]
    assert (entry.level, entry.wait_min) == ("over", 16)
    assert desk.staff_summary()["longest_current_wait_min"] == 16
    desk.call_in(visit["id"])
    clock.advance(minutes=5)
    entry = desk.queue()[0]
    assert (entry.status, entry.wait_min, entry.chair_min) == ("in_chair", 16, 5)


def test_a_visit_open_across_the_local_midnight_stays_in_the_queue(store, settings, clock):
    desk = FrontDesk(store, replace(settings, timezone="Asia/Kolkata"), clock)
    today = metrics.local_today(clock(), "Asia/Kolkata")
    _start, midnight = metrics.local_day_bounds(today, "Asia/Kolkata")
    clock.now = midnight - timedelta(minutes=10)
    late = desk.check_in()
    clock.advance(minutes=20)  # ten past midnight, the next local day

    assert [(e.ticket, e.wait_min) for e in desk.queue()] == [(late["ticket"], 20)]
    desk.call_in(late["id"])
    clock.advance(minutes=5)
    assert desk.queue()[0].status == "in_chair"
    desk.check_out(late["id"])
    assert desk.queue() == []
    assert desk.check_in()["ticket"] == "A-001"  # the new day's tickets start again


def test_a_visit_left_open_past_the_queue_horizon_leaves_the_queue(desk, clock):
    desk.check_in()
    clock.now += metrics.QUEUE_HORIZON - timedelta(minutes=1)
    assert len(desk.queue()) == 1
    clock.advance(minutes=2)  # abandoned (nobody closed it), not queued
    assert desk.queue() == []


@pytest.mark.parametrize(
    ("steps", "status_after_undo"),
    [([], "voided"), (["call_in"], "waiting"), (["call_in", "check_out"], "in_chair"),
     (["cancel"], "waiting")],
)
def test_undo_reverts_the_last_action(desk, store, clock, steps, status_after_undo):
    visit = desk.check_in()
    for step in steps:
        getattr(desk, step)(visit["id"])
    clock.advance(seconds=5)
    assert desk.undo_remaining() == 5
    assert desk.undo_label().endswith("A-001")
    assert desk.undo()["status"] == status_after_undo
    assert events_of(store, visit["id"])[-1][0] == "visit.undone"
    with pytest.raises(NothingToUndo):
        desk.undo()


def test_undo_window_closes(desk, clock):
    desk.check_in()
    clock.advance(seconds=10)
    assert desk.undo_remaining() == 0 and desk.undo_label() is None
    with pytest.raises(NothingToUndo, match="too old"):
        desk.undo()


def test_undone_check_in_is_not_counted_and_its_ticket_is_not_reused(desk):
    first = desk.check_in()
    desk.undo()
    assert desk.queue() == []
    assert desk.staff_summary()["visits"] == 0
    assert desk.check_in()["ticket"] == "A-002"
    assert first["ticket"] == "A-001"


def test_correction_of_a_forgotten_time_is_kept_as_an_audit_event(desk, store, clock):
    visit = desk.check_in()
    clock.advance(minutes=30)
    desk.call_in(visit["id"])
    desk.correct(visit["id"], "called_at", clock() - timedelta(minutes=18))
    fixed = store.visit(visit["id"])
    assert fixed["called_at"] == "2026-11-23T09:12:00.000Z"
    kinds = [t for t, _ in events_of(store, visit["id"])]
    assert kinds == ["visit.checked_in", "visit.called", "visit.corrected"]
    assert events_of(store, visit["id"])[-1][1] == {
        "field": "called_at", "value": "2026-11-23T09:12:00.000Z"}
    assert desk.staff_summary()["wait_median_min"] == 12


def test_corrections_that_make_no_sense_are_refused(desk, clock):
    visit = desk.check_in()
    with pytest.raises(InvalidTransition, match="no call-in time yet"):
        desk.correct(visit["id"], "called_at", clock())
    clock.advance(minutes=10)
    desk.call_in(visit["id"])
    with pytest.raises(ModelError, match="in order"):
        desk.correct(visit["id"], "called_at", clock() - timedelta(minutes=20))
    with pytest.raises(ModelError, match="future"):
        desk.correct(visit["id"], "called_at", clock() + timedelta(minutes=5))
    with pytest.raises(ModelError, match="cannot be corrected"):
        desk.correct(visit["id"], "ticket", clock())


# -- the rating flow --------------------------------------------------------------------------


def test_a_happy_face_after_a_checkout_is_linked_and_needs_no_follow_up(desk, rating, store):
    visit = desk.check_in()
    desk.call_in(visit["id"])
    desk.check_out(visit["id"])
    rating.start(visit["id"])
    assert rating.choose(5) == "thanks"
    row = store.ratings_between("2000", "3000")[0]
    assert (row["visit_id"], row["score"], row["scale"], row["misuse"]) == (visit["id"], 5, 5, 0)
    assert desk.today_report()["response_rate"] == 100.0


def test_a_negative_face_gets_the_follow_up_and_its_tags(rating, store, clock):
    rating.start()
    assert rating.choose(2) == "followup"
    assert store.ratings_between("2000", "3000") == []
    rating.toggle_tag("waiting_time")
    rating.toggle_tag("billing")
    assert rating.toggle_tag("billing") == ["waiting_time"]
    clock.advance(seconds=3)
    assert rating.send_followup() == "thanks"
    row = store.ratings_between("2000", "3000")[0]
    assert row["visit_id"] is None
    assert json.loads(row["tags"]) == ["waiting_time"]
    assert row["occurred_at"] == "2026-11-23T09:00:00.000Z"  # when the face was pressed
    with pytest.raises(ModelError, match="not one of"):
        rating.state = "followup"
        rating.toggle_tag("rudeness")


def test_an_abandoned_follow_up_is_still_saved_without_tags(rating, store, clock, settings):
    rating.start()
    rating.choose(1)
    rating.toggle_tag("friendliness")
    clock.advance(seconds=settings.idle_timeout_s - 1)
    assert rating.tick() == "followup" and rating.remaining() == 1
    clock.advance(seconds=1)
    assert rating.tick() == "thanks"
    assert json.loads(store.ratings_between("2000", "3000")[0]["tags"]) == []
    clock.advance(seconds=settings.thanks_s)
    assert rating.tick() == "done"


def test_a_face_held_for_its_follow_up_is_recorded_when_the_kiosk_comes_back(
    desk, rating, store, settings, clock
):
    visit = desk.check_in()
    desk.call_in(visit["id"])
    desk.check_out(visit["id"])
    rating.start(visit["id"])
    rating.choose(1)
    rating.toggle_tag("billing")  # the kiosk dies before "Send"
    store.close()

    reopened = Store(settings.database_path, clock=clock)
    try:
        recovered = reopened.recovered_rating
        assert recovered is not None and recovered.visit_id == visit["id"]
        # The face as it was pressed (one language offered: no "lang", see _rating_data).
        assert recovered.data == {"score": 1, "scale": 5, "tags": [], "misuse": False}
        assert recovered.occurred_at == "2026-11-23T09:00:00.000Z"  # when the face was pressed
        rows = reopened.ratings_between("2000", "3000")
        assert [(r["id"], r["score"]) for r in rows] == [(recovered.id, 1)]
    finally:
        reopened.close()
    again = Store(settings.database_path, clock=clock)
    assert again.recovered_rating is None and len(again.events()) == len(rows) + 3  # once
    again.close()


def test_a_sent_follow_up_leaves_nothing_to_recover(rating, store, settings, clock):
    rating.start()
    rating.choose(2)
    held = store.get_meta("held_rating")
    rating.toggle_tag("waiting_time")
    rating.send_followup()
    store.close()

    reopened = Store(settings.database_path, clock=clock)
    try:
        assert reopened.recovered_rating is None
        assert reopened.get_meta("held_rating") is None
        rows = reopened.ratings_between("2000", "3000")
        assert [json.loads(r["tags"]) for r in rows] == [["waiting_time"]]
        assert rows[0]["id"] == json.loads(held)["id"]  # the held id is the event's id
    finally:
        reopened.close()


def test_a_face_is_kept_when_staff_take_the_screen_back_during_its_follow_up(
    rating, store, clock
):
    rating.start()
    rating.choose(2)
    rating.toggle_tag("friendliness")
    rating.start()  # the corner gesture, or the next checkout
    rows = store.ratings_between("2000", "3000")
    assert [(r["score"], json.loads(r["tags"])) for r in rows] == [(2, [])]
    assert rating.state == "ask" and rating.tags == []


def test_a_held_face_that_cannot_be_read_is_dropped_with_nothing_else(settings, clock):
    store = Store(settings.database_path, clock=clock)
    store.set_meta({"held_rating": "{not json"})
    store.close()
    reopened = Store(settings.database_path, clock=clock)
    try:
        assert reopened.recovered_rating is None and reopened.events() == []
        assert reopened.get_meta("held_rating") is None
    finally:
        reopened.close()


def test_a_ratings_tablet_returns_to_the_faces(store, settings, clock):
    flow = RatingFlow(store, replace(settings, role="ratings"), clock)
    assert flow.remaining() is None  # the faces wait for the next patient forever
    flow.choose(4)
    clock.advance(seconds=settings.thanks_s)
    assert flow.tick() == "ask"
    assert flow.choose(5) == "thanks"


def test_a_desk_goes_back_to_staff_when_nobody_rates(rating, clock, settings, store):
    rating.start("visit-id")
    clock.advance(seconds=settings.idle_timeout_s)
    assert rating.tick() == "done"
    assert store.ratings_between("2000", "3000") == []


def test_follow_up_modes(store, settings, clock):
    always = RatingFlow(store, replace(settings, followup_for="all"), clock)
    assert always.choose(5) == "followup"
    never = RatingFlow(store, replace(settings, followup_for="never"), clock)
    assert never.choose(1) == "thanks"


def test_repeated_presses_are_stored_but_flagged(store, settings, clock):
    flow = RatingFlow(store, replace(settings, role="ratings", thanks_s=1), clock)
    for seconds_between in (0, 1, 2, 6):
        clock.advance(seconds=seconds_between)
        flow.start()
        flow.choose(5)
    flags = [row["misuse"] for row in store.ratings_between("2000", "3000")]
    assert flags == [0, 1, 1, 0]
    assert FrontDesk(store, settings, clock).today_report()["ratings"] == 2


def test_faces_outside_the_scale_are_refused(store, settings, clock):
    flow = RatingFlow(store, replace(settings, rating_scale=4), clock)
    with pytest.raises(ModelError, match="outside 1..4"):
        flow.choose(5)
    flow.choose(4)
    with pytest.raises(ModelError, match="already chosen"):
        flow.choose(3)


def test_idle_timer_counts_down_from_the_last_touch(clock):
    timer = IdleTimer(20, clock)
    clock.advance(seconds=15)
    timer.touch()
    clock.advance(seconds=15)
    assert timer.remaining() == 5 and not timer.expired()
    clock.advance(seconds=5)
    assert timer.expired()


def _writes_refused(store) -> None:
    """SQLite refuses every write from now on (query_only): what a full or failing disk does
    to the kiosk, deterministically (the full-disk tests with a real tmpfs are in
    tests/reliability and tests/ui)."""
    store.db.execute("PRAGMA query_only = ON")


def _writes_allowed(store) -> None:
    store.db.execute("PRAGMA query_only = OFF")


def test_a_refused_write_never_traps_the_follow_up_and_the_face_stays_held(
    rating, store, settings, clock
):
    rating.start()
    rating.choose(1)
    held = json.loads(store.get_meta("held_rating"))["id"]
    _writes_refused(store)
    rating.start()  # staff take the screen back (or the next checkout hands it over)
    assert rating.state == "ask"
    clock.advance(seconds=10)
    with pytest.raises(StoreError):
        rating.choose(2)  # holding a new face records the earlier one first: refused
    assert json.loads(store.get_meta("held_rating"))["id"] == held  # not overwritten
    _writes_allowed(store)
    store.close()
    reopened = Store(settings.database_path, clock=clock)
    try:
        assert reopened.recovered_rating is not None and reopened.recovered_rating.id == held
        assert [r["score"] for r in reopened.ratings_between("2000", "3000")] == [1]
    finally:
        reopened.close()


def test_a_face_still_held_is_recorded_before_the_next_is_held(
    rating, store, settings, clock
):
    rating.start()
    rating.choose(1)
    _writes_refused(store)
    clock.advance(seconds=settings.idle_timeout_s)
    assert rating.tick() == "thanks"  # the follow-up timed out; the screen moves on
    assert store.ratings_between("2000", "3000") == []
    _writes_allowed(store)
    clock.advance(seconds=settings.misuse_interval_s + 1)
    rating.start()
    rating.choose(2)  # holding this face records the earlier one first
    assert [r["score"] for r in store.ratings_between("2000", "3000")] == [1]
    rating.send_followup()
    assert [r["score"] for r in store.ratings_between("2000", "3000")] == [1, 2]


def test_a_sent_face_is_not_recorded_again_after_its_event_is_purged(
    rating, store, settings, clock
):
    rating.start()
    rating.choose(1)
    rating.send_followup()
    store.mark_synced([rating.last_saved.id])
    clock.advance(minutes=60 * 24 * 500)
    store.record("device.heartbeat", {"backlog": 0, "version": "1"})  # the newest is kept
    assert store.purge(retention_days=400) == 1
    store.close()
    reopened = Store(settings.database_path, clock=clock)
    try:
        assert reopened.recovered_rating is None
        assert reopened.ratings_between("2000", "3000") == []
    finally:
        reopened.close()
