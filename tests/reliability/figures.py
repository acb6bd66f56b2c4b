"""The figures of the last run, one entry per scenario, kept in test-output/reliability.json.

A scenario calls ``record()`` once its checks have passed, so a figure in the file is a figure
that was checked. ``lost``, ``duplicated`` and ``server_errors`` are what the checks counted
(each asserted to be 0); the other figures say how hard the scenario pushed.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = ROOT / "test-output" / "reliability.json"
FIGURES_PATH = Path(os.environ.get("RELIABILITY_FIGURES", DEFAULT_PATH))


def load(path: Path = FIGURES_PATH) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def record(
    scenario: str,
    *,
    title: str,
    figures: dict[str, Any],
    lost: int = 0,
    duplicated: int = 0,
    server_errors: int = 0,
    seconds: float | None = None,
    path: Path = FIGURES_PATH,
) -> None:
    """Merge one scenario's figures into the file (other scenarios' entries are kept)."""
    document = load(path)
    document[scenario] = {
        "title": title,
        "figures": figures,
        "lost": lost,
        "duplicated": duplicated,
        "server_errors": server_errors,
        "seconds": None if seconds is None else round(seconds, 1),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    temporary.replace(path)
