"""The NHS Friends and Family Test (FFT): its question, its six answers and its figures.

One home for both ends: the kiosk shows ``QUESTION`` and ``ANSWERS`` word for word (NHS
England fixes the wording), and the central store's monthly return counts with
``fft_figures``. The five graded answers are the five faces of the 5-point scale (5 = Very
good ... 1 = Very poor); "Don't know" is sent as ``"dont_know": true`` with ``"score": null``
and counts in the FFT's denominator and nowhere else.

NHS England's definitions: % positive = (Very good + Good) / all responses, % negative =
(Poor + Very poor) / all responses, where all responses include "Neither good nor poor" and
"Don't know".
"""

from __future__ import annotations

from collections.abc import Mapping

from kiosk.shared.metrics import round_figure

SURVEYS = ("faces", "fft")
DEFAULT_SURVEY = "faces"
FFT_SCALE = 5
QUESTION = "Overall, how was your experience of our service?"
# (key, words, score on the 5-point scale or None); in the order the form lists them.
ANSWERS = (
    ("very_good", "Very good", 5),
    ("good", "Good", 4),
    ("neither", "Neither good nor poor", 3),
    ("poor", "Poor", 2),
    ("very_poor", "Very poor", 1),
    ("dont_know", "Don't know", None),
)
ANSWER_KEYS = tuple(key for key, _, _ in ANSWERS)
KEY_OF_SCORE = {score: key for key, _, score in ANSWERS if score is not None}
COLLECTION_MODE = "tablet/kiosk"


def fft_faces() -> tuple[tuple[int, str], ...]:
    """(score, words) for the five graded answers, best first."""
    return tuple((score, words) for _, words, score in ANSWERS if score is not None)


def fft_figures(counts: Mapping[str, int]) -> dict:
    """Counts per answer key (missing keys are 0) -> the six counts, total, % positive and
    % negative (0-100, two decimals as every figure; None when there are no responses)."""
    row = {key: int(counts.get(key, 0)) for key in ANSWER_KEYS}
    total = sum(row.values())
    positive = row["very_good"] + row["good"]
    negative = row["poor"] + row["very_poor"]
    return {
        **row,
        "total": total,
        "pct_positive": round_figure(100.0 * positive / total) if total else None,
        "pct_negative": round_figure(100.0 * negative / total) if total else None,
    }
