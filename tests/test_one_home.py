"""Each kiosk-side rule is written once: a second copy typed elsewhere fails here.

A copy drifts: two lockout sentences rounded differently, a negative rating counted as ≤ 2 in
one place and < 3 in another. These checks read the kiosk's source, so they cost nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIOSK_SIDE = sorted(
    [*ROOT.glob("kiosk/**/*.py"),
     *(ROOT / "sync" / name for name in ("client.py", "replies.py", "loop.py", "runner.py",
                                        "backoff.py"))]
)


def _files_matching(pattern: str) -> set[str]:
    found = re.compile(pattern)
    return {
        str(path.relative_to(ROOT))
        for path in KIOSK_SIDE
        if found.search(path.read_text(encoding="utf-8"))
    }


def test_the_kiosk_side_files_are_there():
    assert ROOT / "kiosk" / "shared" / "metrics.py" in KIOSK_SIDE
    assert ROOT / "sync" / "loop.py" in KIOSK_SIDE


def test_negative_means_the_bottom_two_faces_in_one_place():
    # metrics.is_negative / negative_sql compare with NEGATIVE_MAX_SCORE: no literal anywhere.
    assert _files_matching(r"score\s*<=?\s*\d") == set()
    assert _files_matching(r"NEGATIVE_MAX_SCORE\s*=") == {"kiosk/shared/metrics.py"}


def test_the_lockout_sentence_is_written_once():
    assert _files_matching(r"(?<!\")f?\"Too many wrong PINs") == {"kiosk/presenter.py"}


def test_the_connection_pragmas_are_set_once():
    assert _files_matching(r"PRAGMA (synchronous|journal_mode|busy_timeout)") == {
        "kiosk/local_db.py"}


def test_write_transactions_are_opened_in_one_place():
    assert _files_matching(r"BEGIN IMMEDIATE") <= {"kiosk/local_db.py",
                                                   "kiosk/migration_runner.py", "kiosk/store.py"}


def test_the_sync_status_is_read_by_attribute_never_by_string_key():
    assert _files_matching(r"status(\(\))?(\[\"|\.get\(\")") == set()
