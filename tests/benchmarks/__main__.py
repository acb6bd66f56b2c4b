"""Run the benchmarks and print one table: ``python -m tests.benchmarks [--quick] [--json PATH]
[--only NAME]``.

Each figure is a module with ``run(quick) -> list[dict]``. A module another change has not
landed yet gets a "not available yet" row instead of stopping the run, and a figure that fails
gets an "error" row with the reason, so one broken figure never hides the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from tests.benchmarks.common import row

# (number, module): the numbering, kept so the table reads like the issue.
FIGURES = (
    ("1", "tap_commit"),
    ("2", "kiosk_start"),
    ("3", "central_ingest"),
    ("4", "tap_to_central"),
    ("5", "backlog_drain"),
    ("6", "dashboard_requests"),
    ("7", "many_kiosks"),
    ("8", "alerts"),
    ("9", "comment_send"),
    ("10", "enrolment"),
    ("11", "backup_restore"),
    ("12", "language_switch"),
    ("13", "pg_ingest"),
    ("14", "thousand_kiosks"),
    ("15", "replica_lag"),
    ("16", "dashboard_10m"),
)
COLUMNS = ("figure", "value", "unit", "baseline", "ratio", "target", "pass")


def _selected(only: str | None) -> list[tuple[str, str]]:
    if only is None:
        return list(FIGURES)
    chosen = [f for f in FIGURES if only in (f[0], f[1])]
    if not chosen:
        names = ", ".join(f"{number} ({name})" for number, name in FIGURES)
        raise SystemExit(f"--only {only!r} is not a figure; use one of: {names}")
    return chosen


def _run_figure(number: str, name: str, quick: bool) -> list[dict]:
    qualified = f"tests.benchmarks.{name}"
    try:
        module = importlib.import_module(qualified)
    except ModuleNotFoundError as error:
        if error.name != qualified:
            raise
        return [row(f"{number}. {name}", None, "", None, "not available yet", None)]
    try:
        return module.run(quick)
    except Exception as error:  # one figure's failure must not hide the others
        traceback.print_exc()
        return [row(f"{number}. {name}", None, "", None, f"error: {error}", False)]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    """A Markdown table, so the same text reads in a terminal and in README.md."""
    cells = [[_cell(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(COLUMNS)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for line in cells:
        lines.append(
            "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} CPUs ({cpu}), {memory} RAM, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as a JSON list")
    parser.add_argument("--only", metavar="NAME", help="one figure, by number or module name")
    args = parser.parse_args(argv)

    rows: list[dict] = []
    began = time.monotonic()
    for number, name in _selected(args.only):
        started = time.monotonic()
        print(f"[bench] {number}. {name} ...", file=sys.stderr, flush=True)
        figure_rows = _run_figure(number, name, args.quick)
        print(f"[bench] {number}. {name}: {time.monotonic() - started:.1f} s", file=sys.stderr,
              flush=True)
        rows.extend(figure_rows)
    print(f"Machine: {machine()}")
    print(f"Mode: {'quick' if args.quick else 'full'}, {time.monotonic() - began:.0f} s in all\n")
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    failed = [r for r in rows if r["pass"] is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
