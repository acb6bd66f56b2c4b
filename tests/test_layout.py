"""The direction of imports: ``kiosk/`` never imports ``sync/``, and ``kiosk/shared/`` (the wire
format, time and metric definitions both sides use) imports nothing of the project but itself,
so there is no cycle and the shared rules have one home."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _project_imports(folder: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(ROOT)): {
            name for name in _imports(path) if name.split(".")[0] in ("kiosk", "sync", "tests")
        }
        for path in (ROOT / folder).rglob("*.py")
    }


def test_the_kiosk_never_imports_sync():
    offending = {
        path: sorted(n for n in names if n.split(".")[0] == "sync")
        for path, names in _project_imports("kiosk").items()
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_shared_definitions_import_only_each_other():
    offending = {
        path: sorted(n for n in names if not n.startswith("kiosk.shared"))
        for path, names in _project_imports("kiosk/shared").items()
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_no_reference_leads_outside_the_repository():
    # The product's definitions the code relies on are in the README; design notes kept
    # elsewhere are not something a reader of this repository can open.
    outside = tuple(f"{name}.md" for name in ("PRODUCT", "ARCHITECTURE", "KIVY_HEADLESS",
                                               "WEB_TESTING", "TESTING_NOTES"))
    found = [
        str(path.relative_to(ROOT))
        for folder in ("kiosk", "sync", "tests", "assets")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".md", ".kv", ".html", ".toml", ".js", ".css")
        and any(name in path.read_text(encoding="utf-8", errors="replace") for name in outside)
    ]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert found == [] and not any(name in readme for name in outside)
