"""Real taps on real widgets in an offscreen window; every test checks the store as well."""

from __future__ import annotations

import json


def test_first_start_asks_for_a_pin_twice_then_opens_the_desk(make_kiosk):
    kiosk = make_kiosk(pin=None)
    assert kiosk.screen == "pin_setup"
    kiosk.type_pin("2468")
    kiosk.type_pin("2469")
    assert kiosk.screen == "pin_setup"
    assert "not the same" in kiosk.banner()
    assert not kiosk.flow.pin.has_pin()
    kiosk.type_pin("2468")
    kiosk.type_pin("2468")
    assert kiosk.screen == "staff"
    assert kiosk.flow.pin.has_pin() and kiosk.flow.pin.verify("2468")


def test_check_in_to_rating_and_back_to_the_desk(make_kiosk):
    kiosk = make_kiosk(staff_lock_s=900)
    kiosk.type_pin("2468")
    kiosk.tap("Check in")
    visit_id = [e for e in kiosk.flow.desk.queue() if e.status == "waiting"][0].visit_id
    ticket = kiosk.store.visit(visit_id)["ticket"]
    kiosk.advance(240)
    kiosk.tap(kiosk.row(ticket, "Call in"))
    assert kiosk.store.visit(visit_id)["status"] == "in_chair"
    kiosk.advance(60)
    kiosk.tap(kiosk.row(ticket, "Check out"))
    assert kiosk.screen == "rating"

    kiosk.tap("Very poor")
    assert kiosk.screen == "followup"
    kiosk.tap("Waiting time")
    kiosk.tap("Send")
    assert kiosk.screen == "thanks"
    kiosk.advance(kiosk.flow.settings.thanks_s)
    assert kiosk.screen == "staff"

    visit = kiosk.store.visit(visit_id)
    assert visit["status"] == "done" and visit["checked_out_at"] is not None
    [rating] = kiosk.store._query("SELECT * FROM ratings")
    assert rating["visit_id"] == visit_id
    assert (rating["score"], rating["scale"]) == (1, 5)
    assert json.loads(rating["tags"]) == ["waiting_time"]


def test_a_wrong_pin_is_refused_and_counted(make_kiosk):
    kiosk = make_kiosk()
    assert kiosk.screen == "pin"
    kiosk.type_pin("1357")
    assert kiosk.screen == "pin"
    assert "not right" in kiosk.banner()
    assert kiosk.store.get_meta("pin_failures") == "1"
    kiosk.type_pin("2468")
    assert kiosk.screen == "staff"
    assert kiosk.store.get_meta("pin_failures") is None


def test_an_unanswered_question_goes_back_to_the_desk_by_itself(make_kiosk, ui_clock):
    kiosk = make_kiosk()
    kiosk.type_pin("2468")
    visit = kiosk.flow.check_in()
    kiosk.flow.call_in(visit["id"])
    kiosk.tap("Check in")  # redraw with the visit in the chair
    kiosk.tap(kiosk.row(visit["ticket"], "Check out"))
    assert kiosk.screen == "rating"
    assert "20 s" in kiosk.app.root.manager.current_screen.countdown_text
    kiosk.advance(kiosk.flow.settings.idle_timeout_s - 1)
    assert kiosk.screen == "rating"
    assert "1 s" in kiosk.app.root.manager.current_screen.countdown_text
    kiosk.advance(1)
    assert kiosk.screen == "staff"
    assert kiosk.store._query("SELECT COUNT(*) AS n FROM ratings")[0]["n"] == 0
    assert kiosk.store.visit(visit["id"])["status"] == "done"


def test_a_ratings_tablet_saves_a_face_and_returns_to_the_faces(make_kiosk):
    kiosk = make_kiosk(role="ratings", followup_for="never")
    assert kiosk.screen == "rating"
    kiosk.tap("Good")
    assert kiosk.screen == "thanks"
    kiosk.advance(kiosk.flow.settings.thanks_s)
    assert kiosk.screen == "rating"
    [rating] = kiosk.store._query("SELECT * FROM ratings")
    assert rating["score"] == 4 and rating["visit_id"] is None


def test_the_corner_gesture_and_pin_reach_staff_mode_and_escape_is_blocked(make_kiosk):
    kiosk = make_kiosk(role="ratings")
    assert kiosk.app._on_request_close() is True  # window close refused on the faces
    for _ in range(3):
        kiosk.tap(kiosk.corner())
    assert kiosk.screen == "pin"
    kiosk.type_pin("2468")
    assert kiosk.screen == "staff"
    assert kiosk.app._on_request_close() is False
    kiosk.tap("Back to the faces")
    assert kiosk.screen == "rating"


def test_a_full_disk_shows_in_the_banner_and_loses_no_saved_visit(make_kiosk):
    """SQLite's own "database or disk is full" (the file may not grow: the same error as a full
    disk), from real taps: a sentence in the banner, no crash, every saved visit kept."""
    kiosk = make_kiosk(staff_lock_s=900)
    kiosk.type_pin("2468")
    kiosk.tap("Check in")
    db = kiosk.store.db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 2}")
    saved = 1
    for _ in range(200):
        kiosk.tap("Check in")
        if kiosk.banner().startswith("The disk is full"):
            break
        saved += 1
    assert kiosk.banner().startswith("The disk is full") and "not saved" in kiosk.banner()
    assert kiosk.screen == "staff"
    assert kiosk.store._query("SELECT COUNT(*) AS n FROM visits")[0]["n"] == saved
    db.execute("PRAGMA max_page_count = 1073741823")  # space again
    kiosk.tap("Check in")
    assert kiosk.store._query("SELECT COUNT(*) AS n FROM visits")[0]["n"] == saved + 1


def test_undo_and_fix_a_time_from_the_screen(make_kiosk, ui_clock):
    kiosk = make_kiosk(staff_lock_s=900)
    kiosk.type_pin("2468")
    kiosk.tap("Check in")
    kiosk.tap("Undo")
    assert kiosk.store._query("SELECT status FROM visits")[0]["status"] == "voided"

    ui_clock.advance(minutes=10)
    kiosk.tap("Check in")
    visit_id = [e for e in kiosk.flow.desk.queue() if e.status == "waiting"][0].visit_id
    ticket = kiosk.store.visit(visit_id)["ticket"]
    kiosk.tap(kiosk.row(ticket, "More"))
    kiosk.tap("Fix a time")
    kiosk.tap("\u22125 min")
    kiosk.tap("\u22121 min")
    kiosk.tap("Save the time")
    assert kiosk.screen == "staff"
    events = [e["type"] for e in kiosk.store.events()]
    assert events[-1] == "visit.corrected"
    assert [e for e in kiosk.flow.desk.queue() if e.status == "waiting"][0].wait_min == 6


def test_the_staff_screen_never_shows_which_face_was_pressed(make_kiosk):
    from tests.ui.driver import _words

    kiosk = make_kiosk(staff_lock_s=900)
    kiosk.type_pin("2468")
    kiosk.whole_visit()
    kiosk.tap("Very good")
    kiosk.advance(kiosk.flow.settings.thanks_s)
    assert kiosk.screen == "staff"
    assert kiosk.store._query("SELECT score FROM ratings") == [{"score": 5}]

    on_screen = _words(kiosk.app.root.manager.current_screen).lower()
    assert "check in" in on_screen and "waiting" in on_screen  # the words were read
    for face_word in ("very good", "good", "okay", "poor", "happy index", "rated", "score"):
        assert face_word not in on_screen, face_word


def test_the_sites_new_settings_reach_the_screen_without_a_restart(make_kiosk):
    """A manager's `site set` arrives through the sync loop: the faces and tags on screen
    change at the next tick, and a patient mid-follow-up finishes on the old scale first."""
    from kiosk.screens.widgets import FaceButton

    kiosk = make_kiosk(role="ratings")
    site = {"rating_scale": 4, "followup_tags": ["waiting_time", "billing"],
            "target_wait_min": 25.0}
    kiosk.tap("Poor")  # 2 of 5: the follow-up opens
    assert kiosk.screen == "followup"
    kiosk.app.site_settings = lambda: site
    kiosk.advance(1)
    assert kiosk.flow.settings.rating_scale == 5  # not while this face's tags are open
    kiosk.tap("Billing")
    kiosk.tap("Send")
    kiosk.advance(kiosk.flow.settings.thanks_s)
    assert kiosk.screen == "rating" and kiosk.flow.settings.rating_scale == 4
    faces = [w for w in kiosk.app.root.manager.current_screen.walk(restrict=True)
             if isinstance(w, FaceButton)]
    assert len(faces) == 4
    kiosk.tap("Very poor")
    assert kiosk.screen == "followup"
    assert {b.tag for b in kiosk.buttons() if hasattr(b, "tag")} == {"waiting_time", "billing"}
    saved = kiosk.store._query("SELECT score, scale FROM ratings ORDER BY occurred_at")
    assert [(r["score"], r["scale"]) for r in saved] == [(2, 5)]
