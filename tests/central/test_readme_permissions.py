"""The README's permission table is the permission module's, row for row: the table a reader
trusts cannot drift from the one every route is checked against."""

from __future__ import annotations

from pathlib import Path

from sync.central.permissions import ROLES, permission_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_shows_the_permission_table_of_the_code():
    text = README.read_text(encoding="utf-8")
    header = "| action | what it covers | " + " | ".join(ROLES) + " |"
    assert header in text
    for action, covers, allowed in permission_table():
        cells = " | ".join("yes" if allowed[role] else "—" for role in ROLES)
        assert f"| `{action}` | {covers} | {cells} |" in text, action
