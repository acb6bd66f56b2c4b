"""How the screens word things: every level has a word, every face its word, sync in plain words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kiosk import presenter
from kiosk.errors import PinLocked
from kiosk.shared.timeutil import parse_rfc3339
from kiosk.sync_status import SyncStatus

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def test_levels_are_never_colour_alone():
    assert presenter.level_text("ok") == "\u2713 On target"
    assert presenter.level_text("near") == "\u25b2 Near target"
    assert presenter.level_text("over") == "\u26a0 Over target"


@pytest.mark.parametrize("scale", [5, 4])
def test_each_face_has_a_word_and_an_image(scale):
    from kiosk.screens.theme import FACES_DIR

    faces = presenter.faces(scale)
    assert [score for score, _, _ in faces] == list(range(scale, 0, -1))
    for _, word, image in faces:
        assert word and (FACES_DIR / f"{image}.png").exists()


def test_timers_and_minutes():
    assert presenter.clock_minutes(7 + 5 / 60) == "7:05"
    assert presenter.clock_minutes(62) == "1:02:00"
    assert presenter.whole_minutes(0.4) == "<1 min"
    assert presenter.whole_minutes(None) == "–"


def test_summary_always_shows_n():
    parts = presenter.summary_parts(
        {"waits": 12, "wait_median_min": 8.4, "pct_within_target": 81.7, "visits": 14}, 15
    )
    assert parts[0] == ("8 min", "median wait\nn = 12")
    assert parts[1] == ("82%", "seen within\n15 min")
    assert parts[2] == ("14", "visits\ntoday")
    empty = presenter.summary_parts({"waits": 0, "visits": 0}, 15)
    assert empty[0][0] == "–" and empty[1][0] == "–"


def test_sync_corner():
    local = presenter.sync_lines(SyncStatus(backlog=3), None, NOW, "UTC")
    assert local == ["Recording locally", "no central store configured", "3 waiting to sync"]
    synced = presenter.sync_lines(
        SyncStatus(rejected=2, last_synced_at=parse_rfc3339("2026-11-23T09:25:00Z")),
        "https://central.example", NOW, "UTC",
    )
    assert synced == [
        "Last sync 5 min ago", "all saved here", "\u26a0 2 refused by the central store"
    ]
    never = presenter.sync_lines(SyncStatus(backlog=1), "https://central.example", NOW, "UTC")
    assert never[0] == "Not synced yet"


def test_sync_corner_names_what_the_staff_must_act_on():
    refused = SyncStatus(configured=True, token_refused=True, consecutive_failures=3)
    lines = presenter.sync_lines(refused, "https://central.example", NOW, "UTC")
    assert lines[-1] == "the central store refused this kiosk's token: ask IT to enrol it again"
    offline = SyncStatus(configured=True, consecutive_failures=1)
    assert presenter.sync_problem(offline) == "central store unreachable; saving here and retrying"
    assert offline.trouble and SyncStatus(rejected=1).trouble and not SyncStatus().trouble
    assert presenter.sync_problem(SyncStatus(configured=True)) is None


def test_the_lockout_sentence_is_one_rule_for_the_pad_and_the_refusal():
    """The PIN pad and the PinLocked refusal say the same: seconds rounded up, as counted down."""
    for seconds in (0.2, 29.4, 30, 89.5, 125, 900):
        assert str(PinLocked(seconds)) == presenter.lockout_text(seconds)
    assert presenter.lockout_text(29.4) == "Too many wrong PINs. Try again in 30 s."
    assert presenter.lockout_text(0.2) == "Too many wrong PINs. Try again in 1 s."


def test_countdowns_round_up():
    assert presenter.seconds_left(3.2) == 4
    assert presenter.seconds_left(3.0) == 3
    assert presenter.seconds_left(-1) == 0
    undo = presenter.undo_text("Undo check-in of A-001", 7.5)
    assert undo == "\u21b6 Undo check-in of A-001  (8 s)"
    assert presenter.lockout_text(125) == "Too many wrong PINs. Try again in 2 min."
    assert presenter.pin_dots(2) == "\u25cf \u25cf \u25cb \u25cb"
