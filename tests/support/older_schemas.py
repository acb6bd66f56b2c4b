"""Stores rebuilt as an older schema left them, with their rows, so a migration's own filling
in of existing data can be tested (each undo names the migration it takes back)."""

from __future__ import annotations

from sync.central.migrations import MIGRATIONS
from sync.central.rollups import SITE_ROLLUP_KEYS, _visit_triggers, site_rollup_triggers


def as_before_site_rollups(db) -> None:
    """The store as the schema before ``_site_rollups`` left it: no per-site rollups, and the
    per-desk visit triggers that take an updated visit out and put it back."""
    names = [m.__name__ for m in MIGRATIONS]
    assert names[-1] == "_site_rollups", "undo the migrations after _site_rollups here too"
    for name in site_rollup_triggers():
        db.execute(f"DROP TRIGGER {name}")
    for table in SITE_ROLLUP_KEYS:
        db.execute(f"DROP TABLE {table}")
    db.execute("DROP TRIGGER IF EXISTS visits_rollup_update_same")
    for name, (when, body) in _visit_triggers(versioned=True, appointments=True).items():
        db.execute(f"DROP TRIGGER {name}")
        db.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")
    db.conn.execute(f"PRAGMA user_version = {names.index('_site_rollups')}")
