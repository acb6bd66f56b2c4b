"""The rules and the life of an alert on a real store, the clock moved by passing ``now``."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.shared.timeutil import to_rfc3339
from sync.central.alerts import lifecycle, rules
from sync.central.alerts.hours import InvalidHours, opened_at, set_site_hours
from sync.central.alerts.scheduler import evaluate
from sync.central.sites import update_site
from tests.alerts.conftest import SITE, minutes


def open_alerts(clinic, rule: str | None = None) -> list[dict]:
    return [a for a in clinic.alerts() if a["state"] != "closed" and rule in (None, a["rule"])]


def burst(clinic, now) -> list[int]:
    """The negative-burst rule alone (the kiosk falls silent too as these tests move on)."""
    return evaluate(clinic.store, now, rules=("negative_burst",))


def test_a_new_site_has_every_rule_on_at_its_default(clinic):
    settings = rules.site_rules(clinic.store.db, SITE)

    assert set(settings) == set(rules.RULES)
    assert all(setting.enabled for setting in settings.values())
    burst = settings["negative_burst"]
    assert (burst["threshold"], burst["min_ratings"], burst["window_min"]) == (50.0, 4, 15.0)
    assert settings["long_wait"]["multiple"] == 2.0
    assert settings["kiosk_silent"]["silent_min"] == 5.0


def test_a_negative_burst_opens_one_alert_with_figures_and_n_and_no_ticket(clinic):
    clinic.rate([1, 2, 2, 5], minutes(1))

    opened = evaluate(clinic.store, minutes(2))
    again = evaluate(clinic.store, minutes(3))  # still firing: the same alert, refreshed

    assert len(opened) == 1 and again == []
    (alert,) = clinic.alerts()
    assert (alert["rule"], alert["state"], alert["site"]) == ("negative_burst", "open", SITE)
    figures = json.loads(alert["figures"])
    assert (figures["ratings"], figures["negative"], figures["pct_negative"]) == (4, 3, 75.0)
    assert "3 of 4 ratings negative" in alert["summary"] and "(n=4)" in alert["summary"]
    assert "A-0" not in alert["summary"]


class CountedWrites:
    """The store, counting the write transactions taken through it."""

    def __init__(self, store):
        self.store, self.db, self.writes = store, store.db, 0

    def write(self):
        self.writes += 1
        return self.store.write()


def test_a_live_alert_firing_unchanged_takes_no_write_and_a_change_is_written_at_most_every_5_s(
        clinic):
    counted = CountedWrites(clinic.store)
    clinic.rate([1, 2, 2, 5], minutes(1))
    evaluate(counted, minutes(2), rules=("negative_burst",))
    at = minutes(2) + timedelta(seconds=1)
    for _ in range(20):  # nudge passes while the alert is live and nothing changed
        evaluate(counted, at, rules=("negative_burst",))
        at += timedelta(seconds=1)
    assert counted.writes == 1  # the opening only

    clinic.rate([1], minutes(2))
    evaluate(counted, minutes(2) + timedelta(seconds=22), rules=("negative_burst",))
    assert counted.writes == 2  # new figures, last written 22 s ago: written now
    clinic.rate([1], minutes(2))
    evaluate(counted, minutes(2) + timedelta(seconds=24), rules=("negative_burst",))
    assert counted.writes == 2  # new figures again, 2 s on: they wait for the next pass
    evaluate(counted, minutes(2) + timedelta(seconds=27), rules=("negative_burst",))
    assert counted.writes == 3
    (alert,) = clinic.alerts()
    assert json.loads(alert["figures"])["ratings"] == 6
    assert alert["last_fired_at"] == to_rfc3339(minutes(2) + timedelta(seconds=27))

    evaluate(counted, minutes(3) + timedelta(seconds=27), rules=("negative_burst",))
    assert counted.writes == 4  # unchanged for a minute: last_fired_at is kept current


def test_misuse_presses_never_count(clinic):
    clinic.rate([1, 1, 1, 1, 1, 1], minutes(1), misuse=True)
    clinic.rate([1, 5, 5], minutes(1))

    assert evaluate(clinic.store, minutes(2)) == []
    assert clinic.alerts() == []


def test_below_the_minimum_number_of_ratings_nothing_fires(clinic):
    clinic.rate([1, 1, 1], minutes(1))

    assert evaluate(clinic.store, minutes(2)) == []


def test_an_alert_closes_itself_once_clear_for_the_set_time_then_the_cooldown_holds(clinic):
    clinic.rate([1, 1, 1, 1], minutes(0))
    (alert_id,) = burst(clinic, minutes(1))

    burst(clinic, minutes(16))  # the ratings left the 15-minute window: clear
    assert open_alerts(clinic)[0]["cleared_since"] == to_rfc3339(minutes(16))
    burst(clinic, minutes(25))  # clear for 9 min: still live
    assert open_alerts(clinic)
    burst(clinic, minutes(26))  # clear for 10 min (clear_min): closed
    (closed,) = clinic.alerts()
    assert (closed["state"], closed["closed_by"]) == ("closed", "system")
    assert [h["action"] for h in lifecycle.history(clinic.store.db, alert_id)] == [
        "opened", "closed"]

    clinic.rate([1, 1, 1, 1], minutes(30))
    assert burst(clinic, minutes(31)) == []  # within the 30-min cool-down
    assert burst(clinic, minutes(40)) == []
    clinic.rate([1, 1, 1, 1], minutes(50))
    assert len(burst(clinic, minutes(57))) == 1  # 31 min after it closed


def test_a_rule_set_off_fires_no_more_and_thresholds_are_editable(clinic):
    with clinic.store.write() as db:
        rules.set_rule(db, SITE, "negative_burst", threshold=80, min_ratings=4)
    clinic.rate([1, 1, 1, 5], minutes(1))  # 75 % negative: under the new 80 %
    assert evaluate(clinic.store, minutes(2)) == []

    with clinic.store.write() as db:
        rules.set_rule(db, SITE, "negative_burst", threshold=70)
        rules.set_rule(db, SITE, "waits_and_mood", enabled=False)
    assert [a["rule"] for a in clinic.alerts()] == [] and evaluate(clinic.store, minutes(3))
    with clinic.store.write() as db:
        rules.set_rule(db, SITE, "negative_burst", enabled=False)
    evaluate(clinic.store, minutes(4))
    assert open_alerts(clinic)[0]["cleared_since"] == to_rfc3339(minutes(4))


@pytest.mark.parametrize(("params", "message"), [
    ({"threshold": 150}, "threshold of negative_burst must be a number from 0 to 100"),
    ({"min_ratings": 2.5}, "min_ratings of negative_burst must be a whole number from 1"),
    ({"multiple": 2}, "'multiple' is not a parameter of negative_burst"),
])
def test_a_bad_rule_setting_is_refused_with_a_sentence(clinic, params, message):
    with pytest.raises(rules.InvalidRule, match=message), clinic.store.write() as db:
        rules.set_rule(db, SITE, "negative_burst", **params)
    assert rules.site_rules(clinic.store.db, SITE)["negative_burst"]["threshold"] == 50.0


def test_low_happy_index_over_the_window(clinic):
    clinic.rate([3] * 10, minutes(1))  # Happy Index 50: not below 50

    assert evaluate(clinic.store, minutes(2)) == []
    clinic.rate([2], minutes(2))  # 11 ratings, index 47.73
    evaluate(clinic.store, minutes(3))
    (alert,) = open_alerts(clinic, "low_happy_index")
    assert json.loads(alert["figures"])["ratings"] == 11
    assert "(n=11)" in alert["summary"]


def test_a_long_wait_is_found_on_the_schedule_with_the_clock_moved(clinic):
    visit_id, events = clinic.kiosk.visit(checked_in=0, ticket="A-017")
    clinic.send(events, minutes(0))

    waits = ("long_wait",)
    assert evaluate(clinic.store, minutes(30), rules=waits) == []  # 2 x the target, not over
    opened = evaluate(clinic.store, minutes(30.5), rules=waits)

    (alert,) = [a for a in clinic.alerts() if a["id"] in opened]
    assert alert["rule"] == "long_wait"
    assert json.loads(alert["figures"])["longest_current_wait_min"] == 30.5
    assert "A-017" not in alert["summary"] and "(n=1)" in alert["summary"]
    # Called in: the wait is over, the alert clears.
    clinic.send([clinic.kiosk.called(visit_id, to_rfc3339(minutes(31)))], minutes(31))
    evaluate(clinic.store, minutes(32), rules=waits)
    assert open_alerts(clinic, "long_wait")[0]["cleared_since"] == to_rfc3339(minutes(32))


def test_outside_opening_hours_in_the_sites_zone_no_long_wait_and_no_silent_kiosk(clinic):
    with clinic.store.write() as db:
        # 09:00 UTC on a Monday in March is 04:00 in New York: closed.
        update_site(db, SITE, timezone="America/New_York")
    clinic.send(clinic.kiosk.visit(checked_in=0)[1], minutes(0))

    assert evaluate(clinic.store, minutes(45)) == []
    with clinic.store.write() as db:
        set_site_hours(db, SITE, "always")
    opened = evaluate(clinic.store, minutes(46))
    assert {a["rule"] for a in clinic.alerts() if a["id"] in opened} == {
        "long_wait", "kiosk_silent"}


def test_opening_hours_are_read_with_a_sentence_when_wrong(clinic):
    with pytest.raises(InvalidHours, match="must look like 'mon-fri 08:00-18:00"):
        set_site_hours(clinic.store.db, SITE, "weekdays 8 to 6")
    with pytest.raises(InvalidHours, match="opening time must be before the closing time"):
        set_site_hours(clinic.store.db, SITE, "mon 18:00-08:00")


def test_a_silent_kiosk_during_opening_hours_opens_an_alert_per_device(clinic):
    clinic.send([clinic.kiosk.heartbeat(to_rfc3339(minutes(0)))], minutes(0))

    assert evaluate(clinic.store, minutes(5)) == []  # 5 min is the limit, not over it
    opened = evaluate(clinic.store, minutes(6))

    (alert,) = [a for a in clinic.alerts() if a["id"] in opened]
    assert (alert["rule"], alert["subject"]) == ("kiosk_silent", clinic.device.id)
    assert "Desk 1 has not been in contact for 6 min" in alert["summary"]
    clinic.send([clinic.kiosk.heartbeat(to_rfc3339(minutes(7)))], minutes(7))
    evaluate(clinic.store, minutes(7.5))
    assert open_alerts(clinic, "kiosk_silent")[0]["cleared_since"] is not None


def silent_alerts(clinic, now) -> list[dict]:
    opened = evaluate(clinic.store, now, rules=("kiosk_silent",))
    return [a for a in clinic.alerts() if a["id"] in opened]


def test_a_kiosk_switched_off_overnight_counts_its_silence_from_opening(clinic):
    # Last seen Friday evening; MORNING is Monday 09:00 UTC and the site opens at 08:00 UTC.
    friday = minutes(-(2 * 24 + 15) * 60)
    clinic.send([clinic.kiosk.heartbeat(to_rfc3339(friday))], friday)
    opening = minutes(-60)

    assert silent_alerts(clinic, opening + timedelta(minutes=1)) == []
    assert silent_alerts(clinic, opening + timedelta(minutes=5)) == []
    (alert,) = silent_alerts(clinic, opening + timedelta(minutes=6))
    assert "has not been in contact for 6 min of opening hours" in alert["summary"]
    assert json.loads(alert["figures"])["last_seen_at"] == to_rfc3339(friday)


def test_on_the_day_the_clocks_go_forward_silence_counts_from_the_local_opening(clinic):
    # Sunday 29 March 2026: London moves to BST, so 08:00 there is 07:00 UTC.
    with clinic.store.write() as db:
        update_site(db, SITE, timezone="Europe/London")
        set_site_hours(db, SITE, "sun 08:00-18:00")
    saturday = datetime(2026, 3, 28, 17, 0, tzinfo=UTC)
    clinic.send([clinic.kiosk.heartbeat(to_rfc3339(saturday))], saturday)
    opening = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)

    assert silent_alerts(clinic, opening + timedelta(minutes=5)) == []
    (alert,) = silent_alerts(clinic, opening + timedelta(minutes=6))
    assert json.loads(alert["figures"])["silent_min"] == 6


def test_the_opening_instant_is_read_on_the_sites_clock_for_that_date():
    hours = {6: ("08:00", "18:00")}
    assert opened_at(hours, "Europe/London", datetime(2026, 3, 29, 7, 30, tzinfo=UTC)) == \
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert opened_at(hours, "Europe/London", datetime(2026, 3, 22, 8, 30, tzinfo=UTC)) == \
        datetime(2026, 3, 22, 8, 0, tzinfo=UTC)
    assert opened_at(hours, "Europe/London", datetime(2026, 3, 22, 7, 30, tzinfo=UTC)) is None
    assert opened_at(None, "UTC", datetime(2026, 3, 22, 7, 30, tzinfo=UTC)) is None


def test_waits_and_mood_together_fire_where_neither_rule_alone_would(clinic):
    clinic.send(clinic.kiosk.visit(checked_in=0)[1], minutes(0))
    clinic.rate([1, 2, 5], minutes(10))  # 3 ratings: below the burst's minimum of 4

    # Waited 16 min: over the target, not over 2 x it (the kiosk's silence is another test's).
    evaluate(clinic.store, minutes(16), rules=("negative_burst", "long_wait", "waits_and_mood"))
    assert [a["rule"] for a in open_alerts(clinic)] == ["waits_and_mood"]
    figures = json.loads(open_alerts(clinic)[0]["figures"])
    assert (figures["negative"], figures["ratings"], figures["waiting"]) == (2, 3, 1)


def test_acknowledge_then_close_by_hand_with_history_and_clear_errors(clinic):
    clinic.rate([1, 1, 1, 1], minutes(0))
    (alert_id,) = evaluate(clinic.store, minutes(1))

    with clinic.store.write() as db:
        lifecycle.acknowledge(db, alert_id, "front desk lead", minutes(2), "calling in help")
    with pytest.raises(lifecycle.AlertStateError, match=f"alert {alert_id} is already ack"):
        lifecycle.acknowledge(clinic.store.db, alert_id, "someone", minutes(3))
    evaluate(clinic.store, minutes(3))  # still firing: stays acknowledged
    (alert,) = clinic.alerts()
    assert (alert["state"], alert["acknowledged_by"], alert["ack_comment"]) == (
        "acknowledged", "front desk lead", "calling in help")
    with clinic.store.write() as db:
        lifecycle.close_by_hand(db, alert_id, "front desk lead", minutes(4))
    with pytest.raises(lifecycle.AlertStateError, match="is already closed"):
        lifecycle.close_by_hand(clinic.store.db, alert_id, "x", minutes(5))
    with pytest.raises(lifecycle.AlertNotFound, match="there is no alert with id 999"):
        lifecycle.acknowledge(clinic.store.db, 999, "x", minutes(5))
    # The comment stays in the history and the audit trail for good: a patient's details
    # typed into it all the same are redacted as a patient's comment is, control characters
    # dropped.
    clinic.rate([1, 1, 1, 1], minutes(60))  # after the rule's 30 minutes of quiet
    (second,) = evaluate(clinic.store, minutes(61))
    with clinic.store.write() as db:
        lifecycle.acknowledge(db, second, "lead", minutes(62),
                              "called 07700,900,123 dob 12/03/1980\x1b\x07 back soon")
    kept = [a["ack_comment"] for a in clinic.alerts() if a["id"] == second]
    assert kept == ["called [removed] dob [removed] back soon"]
    assert [(h["action"], h["actor"]) for h in lifecycle.history(clinic.store.db, alert_id)] == [
        ("opened", "system"), ("acknowledged", "front desk lead"), ("closed", "front desk lead")]


def test_a_kiosk_whose_backlog_keeps_growing_opens_an_alert(clinic):
    backlog = ("kiosk_backlog",)
    for minute, waiting in ((0, 0), (1, 4), (2, 4)):
        clinic.send([clinic.kiosk.heartbeat(to_rfc3339(minutes(minute)), backlog=waiting)],
                    minutes(minute))
    assert evaluate(clinic.store, minutes(2), rules=backlog) == []  # 0, 4, 4: not rising

    for minute, waiting in ((3, 9), (4, 15)):
        clinic.send([clinic.kiosk.heartbeat(to_rfc3339(minutes(minute)), backlog=waiting)],
                    minutes(minute))
    (alert_id,) = evaluate(clinic.store, minutes(4), rules=backlog)

    (alert,) = clinic.alerts()
    assert (alert["rule"], alert["subject"]) == ("kiosk_backlog", clinic.device.id)
    assert "rose at each of its last 3 heartbeats, from 4 to 15" in alert["summary"]
    clinic.send([clinic.kiosk.heartbeat(to_rfc3339(minutes(5)), backlog=0)], minutes(5))
    evaluate(clinic.store, minutes(5), rules=backlog)
    assert open_alerts(clinic)[0]["cleared_since"] == to_rfc3339(minutes(5))


def test_the_scheduled_thread_finds_a_long_wait_with_no_event_arriving(clinic):
    import time

    from sync.central.alerts.scheduler import AlertService

    clinic.send(clinic.kiosk.visit(checked_in=0)[1], minutes(0))
    clock = {"now": minutes(10)}
    service = AlertService(clinic.store, clock=lambda: clock["now"], evaluate_every_s=0.05)
    service.start()
    threads = list(service._threads)
    try:
        time.sleep(0.2)  # a few scheduled passes at 09:10: nothing to find yet
        assert open_alerts(clinic, "long_wait") == []
        clock["now"] = minutes(31)  # the wait passes 2 x 15 min; no event arrives
        deadline = time.monotonic() + 5.0
        while not open_alerts(clinic, "long_wait"):
            assert time.monotonic() < deadline, "the scheduled pass found no long wait"
            time.sleep(0.02)
    finally:
        service.stop()
    assert len(threads) == 2 and not any(thread.is_alive() for thread in threads)


def test_one_sites_failing_evaluation_does_not_stop_the_others(clinic, monkeypatch):
    from sync.central.alerts import scheduler

    real = scheduler.evaluate_site

    def broken_first(db, site, now, rules):
        if site == "Broken Clinic":
            raise RuntimeError("a bad row at this site")
        return real(db, site, now, rules)

    monkeypatch.setattr(scheduler, "evaluate_site", broken_first)
    clinic.rate([1, 2, 2, 5], minutes(1))

    opened = evaluate(clinic.store, minutes(2), sites=["Broken Clinic", SITE],
                      rules=("negative_burst",))
    assert [a["id"] for a in clinic.alerts()] == opened and len(opened) == 1


def test_a_database_out_of_reach_ends_the_pass_in_one_logged_line(clinic, monkeypatch, caplog):
    """PostgreSQL restarting is every site's problem, not one site's: the pass stops at the
    first site that meets it, and the loop logs one line instead of a traceback per site."""
    import psycopg

    from sync.central.alerts import scheduler

    evaluated: list[str] = []

    def server_gone(db, site, now, rules):
        evaluated.append(site)
        try:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        except psycopg.OperationalError as cause:
            raise sqlite3.OperationalError("server closed the connection unexpectedly") from cause

    monkeypatch.setattr(scheduler, "evaluate_site", server_gone)
    with pytest.raises(sqlite3.OperationalError):
        evaluate(clinic.store, minutes(2), sites=["A Clinic", SITE])
    assert evaluated == ["A Clinic"]
    with caplog.at_level("WARNING", logger=scheduler.__name__):
        try:
            evaluate(clinic.store, minutes(2), sites=[SITE])
        except sqlite3.OperationalError as error:
            scheduler._log_failure("evaluating alert rules failed", error)
    assert [r.getMessage() for r in caplog.records if r.name == scheduler.__name__] == [
        "evaluating alert rules failed: the database cannot be reached (server closed the "
        "connection unexpectedly); trying again"]
    assert not any(r.exc_info for r in caplog.records)
