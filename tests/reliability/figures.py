"""The figures of the last run, one entry per scenario, kept in test-output/reliability.json.

A scenario calls ``record()`` once its checks have passed, so a figure in the file is a figure
that was checked. ``lost``, ``duplicated`` and ``server_errors`` are what the checks counted
(each asserted to be 0); the other figures say how hard the scenario pushed.

Entries are kept per central store engine, ``{scenario: {"sqlite": entry, "postgres": entry}}``:
a scenario parametrised over both engines (``tests.support.engines``) records each run under
its own engine, so the report can show both. The engine comes from the running test's
``central_engine`` (this suite's conftest sets it), or from ``record(engine=...)``.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = ROOT / "test-output" / "reliability.json"
FIGURES_PATH = Path(os.environ.get("RELIABILITY_FIGURES", DEFAULT_PATH))
ENGINES = ("sqlite", "postgres")

# The engine of the test running now; tests/reliability/conftest.py sets it for each test.
_current_engine = "sqlite"


def set_engine(engine: str) -> None:
    global _current_engine
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    _current_engine = engine


def load(path: Path = FIGURES_PATH) -> dict[str, dict[str, Any]]:
    """``{scenario: {engine: entry}}``; a file written before entries were kept per engine
    (an entry straight under its scenario) reads as SQLite's, the only engine then."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {scenario: ({"sqlite": entry} if "title" in entry else entry)
            for scenario, entry in document.items() if isinstance(entry, dict)}


def record(
    scenario: str,
    *,
    title: str,
    figures: dict[str, Any],
    lost: int = 0,
    duplicated: int = 0,
    server_errors: int = 0,
    seconds: float | None = None,
    engine: str | None = None,
    path: Path = FIGURES_PATH,
) -> None:
    """Merge one scenario's figures, for one engine (default: the running test's), into the
    file; other scenarios' and engines' entries are kept."""
    engine = engine or _current_engine
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The suite runs on several processes (pytest-xdist): each read-change-write of the file
    # holds a lock, so none loses another's entry.
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _merge(path, scenario, engine, title, figures, lost, duplicated, server_errors, seconds)


def _merge(path: Path, scenario: str, engine: str, title: str, figures: dict[str, Any],
           lost: int, duplicated: int, server_errors: int, seconds: float | None) -> None:
    document = load(path)
    document.setdefault(scenario, {})[engine] = {
        "title": title,
        "figures": figures,
        "lost": lost,
        "duplicated": duplicated,
        "server_errors": server_errors,
        "seconds": None if seconds is None else round(seconds, 1),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    temporary.replace(path)
