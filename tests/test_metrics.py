"""The metric definitions (README, "Metrics") against hand-computed figures."""

from datetime import UTC, date, datetime, timedelta

import pytest

from kiosk.shared import metrics
from kiosk.shared.metrics import RatingRow, VisitTimes

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def best_first(counts: list[int]) -> dict[tuple[int, int], int]:
    """Counts listed best face first (as HappyOrNot reports them) keyed by (scale, score)."""
    scale = len(counts)
    return {(scale, scale - i): n for i, n in enumerate(counts)}


def test_happy_index_matches_the_product_checks():
    five = best_first([51, 23, 12, 2, 4])
    four = best_first([126, 60, 16, 17])
    assert metrics.rating_summary(five)["happy_index"] == 81.25
    assert round(metrics.rating_summary(four)["happy_index"], 1) == 78.2


def test_negative_is_the_bottom_two_faces_in_python_and_in_sql():
    import sqlite3

    conn = sqlite3.connect(":memory:")
    for scale in (5, 4):
        for score in range(1, scale + 1):
            in_sql = conn.execute(f"SELECT {metrics.negative_sql('s')} FROM (SELECT ? AS s)",
                                  [score]).fetchone()[0]
            assert bool(in_sql) == metrics.is_negative(score, scale) == (score <= 2)
    conn.close()


def test_positive_and_negative_are_the_top_and_bottom_two_faces():
    five = metrics.rating_summary(best_first([51, 23, 12, 2, 4]))
    assert five["ratings"] == 92
    assert five["pct_positive"] == round(100 * 74 / 92, 2)
    assert five["pct_negative"] == round(100 * 6 / 92, 2)
    four = metrics.rating_summary(best_first([126, 60, 16, 17]))
    assert four["pct_positive"] == round(100 * 186 / 219, 2)
    assert four["pct_negative"] == round(100 * 33 / 219, 2)


def test_no_ratings_gives_none_not_zero():
    assert metrics.rating_summary({}) == {
        "ratings": 0, "happy_index": None, "pct_positive": None, "pct_negative": None,
        "csat": None,
    }


def test_csat_is_percent_positive_over_the_five_point_ratings_alone():
    five = best_first([51, 23, 12, 2, 4])
    four = best_first([126, 60, 16, 17])
    assert metrics.rating_summary(five)["csat"] == metrics.rating_summary(five)["pct_positive"]
    assert metrics.rating_summary(four)["csat"] is None
    assert metrics.rating_summary({**five, **four})["csat"] == round(100 * 74 / 92, 2)


def test_face_weights_are_evenly_spaced():
    assert [metrics.face_weight(s, 5) for s in (5, 4, 3, 2, 1)] == [100, 75, 50, 25, 0]
    assert [round(metrics.face_weight(s, 4), 1) for s in (4, 3, 2, 1)] == [100, 66.7, 33.3, 0]
    with pytest.raises(ValueError, match="outside"):
        metrics.face_weight(6, 5)
    with pytest.raises(ValueError, match="scale 3"):
        metrics.face_weight(1, 3)


def test_median_and_p90_use_linear_interpolation():
    waits = [2, 4, 6, 8, 10, 12, 14, 16, 18, 40]
    assert metrics.median(waits) == 11
    # position 0.9 * 9 = 8.1 -> 18 + 0.1 * (40 - 18)
    assert metrics.percentile(waits, 90) == pytest.approx(20.2)
    assert metrics.median([]) is None


def test_wait_summary_counts_the_target_itself_as_within():
    summary = metrics.wait_summary([5, 15, 15.01, 30], target_min=15, current_waits_min=[3, 22])
    assert summary["waits"] == 4
    assert summary["pct_within_target"] == 50.0
    assert summary["longest_current_wait_min"] == 22
    assert summary["wait_median_min"] == 15.0


def test_wait_and_lateness_adjusted_times():
    visit = VisitTimes(checked_in_at=at(0), called_at=at(25), checked_out_at=at(45),
                       appointment_at=at(10))
    assert metrics.waiting_minutes(visit) == 25
    assert metrics.lateness_adjusted_wait(visit) == 15
    early_patient_late_clinic = VisitTimes(checked_in_at=at(0), called_at=at(5),
                                           appointment_at=at(-10))
    assert metrics.lateness_adjusted_wait(early_patient_late_clinic) == 5
    called_before_the_appointment = VisitTimes(checked_in_at=at(0), called_at=at(5),
                                               appointment_at=at(15))
    assert metrics.lateness_adjusted_wait(called_before_the_appointment) == -10


def test_buckets_have_inclusive_lower_bounds():
    assert [metrics.bucket_of(w) for w in (0, 9.99, 10, 19.9, 20, 30, 300)] == [
        "0-10", "0-10", "10-20", "10-20", "20-30", "30+", "30+",
    ]
    assert metrics.bucket_of(-2) == "0-10"


def test_rating_by_wait_lists_all_four_buckets_and_leaves_out_misuse():
    ratings = [
        RatingRow(5, 5, linked=True, wait_min=3),
        RatingRow(4, 5, linked=True, wait_min=8),
        RatingRow(1, 5, linked=True, wait_min=35),
        RatingRow(1, 5, misuse=True, linked=True, wait_min=3),
        RatingRow(2, 5),  # not linked: no wait, so no bucket
    ]
    rows = {row["bucket"]: row for row in metrics.by_wait_bucket(ratings)}
    assert list(rows) == ["0-10", "10-20", "20-30", "30+"]
    assert rows["0-10"] == {"bucket": "0-10", "ratings": 2, "pct_positive": 100.0,
                            "happy_index": 87.5}
    assert rows["10-20"]["ratings"] == 0 and rows["10-20"]["happy_index"] is None
    assert rows["30+"]["pct_positive"] == 0.0


def test_report_puts_it_together_with_the_api_field_names():
    visits = [
        VisitTimes(at(0), at(10), at(20)),
        VisitTimes(at(5), at(35), at(50)),
        VisitTimes(at(6), None, None, cancelled=True),
        VisitTimes(at(50)),  # still waiting
    ]
    ratings = [RatingRow(5, 5, linked=True, wait_min=10), RatingRow(2, 5),
               RatingRow(3, 5, misuse=True)]
    figures = metrics.report(visits, ratings, target_min=15, now=at(60))
    assert figures["visits"] == 3
    assert figures["wait_median_min"] == 20
    assert figures["pct_within_target"] == 50.0
    assert figures["longest_current_wait_min"] == 10
    assert figures["ratings"] == 2
    assert figures["happy_index"] == 62.5
    assert figures["response_rate"] == 50.0  # 1 linked rating / 2 checked out
    assert [row["ratings"] for row in figures["by_wait_bucket"]] == [0, 1, 0, 0]


def test_local_days_follow_daylight_saving():
    start, end = metrics.local_day_bounds(date(2026, 3, 29), "Europe/London")
    assert (end - start) == timedelta(hours=23)
    assert start == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    start, end = metrics.local_day_bounds(date(2026, 10, 25), "Europe/London")
    assert (end - start) == timedelta(hours=25)
    late_evening_utc = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    assert metrics.local_today(late_evening_utc, "Europe/London") == date(2026, 7, 2)


def test_chair_time_is_never_negative():
    """A checkout stamped before its call (a clock fixed in between) is 0 minutes in the chair,
    in the one shared function the kiosk and the central store both use."""
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    visit = metrics.VisitTimes(checked_in_at=start, called_at=start + timedelta(minutes=10),
                               checked_out_at=start + timedelta(minutes=8))
    assert metrics.chair_minutes(visit) == 0.0


def test_a_booked_visit_still_waiting_is_a_miss_only_past_15_minutes():
    """Overdue from the later of arrival and appointment; exactly 15 minutes is not overdue."""
    appt = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    minutes = lambda m: appt + timedelta(minutes=m)  # noqa: E731
    assert not metrics.overdue_for_appointment(minutes(-10), appt, minutes(15))
    assert metrics.overdue_for_appointment(minutes(-10), appt, minutes(15.01))
    assert not metrics.overdue_for_appointment(minutes(10), appt, minutes(20))  # came late
    assert not metrics.overdue_for_appointment(minutes(0), None, minutes(60))
