"""The life of an alert: open -> notified -> acknowledged -> closed.

One alert per (site, rule, subject) is live at a time: the same rule firing again while it is
live updates its figures instead of opening another. Once its condition has been clear for the
rule's ``clear_min`` it closes by itself (a person can close it sooner); after it closes, the
rule stays quiet at that site for its ``cooldown_min``. Every change is written to
``alert_history`` with who made it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.shared.redaction import redact
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from sync.central.alerts import outbox
from sync.central.alerts.engine import Finding
from sync.central.alerts.rules import site_rules

STATES = ("open", "notified", "acknowledged", "closed")
LIVE = ("open", "notified", "acknowledged")
MAX_COMMENT = 500
SYSTEM = "system"


class AlertNotFound(LookupError):
    """No alert has that id."""


class AlertStateError(ValueError):
    """The alert cannot make that change in its state; the message says why."""


def _history(db: Database, alert_id: int, now: datetime, action: str, actor: str = SYSTEM,
             note: str | None = None) -> None:
    db.execute(
        "INSERT INTO alert_history (alert_id, at, action, actor, note) VALUES (?, ?, ?, ?, ?)",
        [alert_id, to_rfc3339(now), action, actor, note],
    )


def _in_cooldown(db: Database, site: str, rule: str, subject: str, cooldown_min: float,
                 now: datetime) -> bool:
    row = db.execute(
        "SELECT MAX(closed_at) FROM alerts WHERE site = ? AND rule = ? AND subject = ? "
        "AND state = 'closed'",
        [site, rule, subject],
    ).fetchone()
    return bool(row[0]) and parse_rfc3339(row[0]) + timedelta(minutes=cooldown_min) > now


# A live alert firing again is rewritten at most this often when its figures changed, and
# this often when they did not (to keep last_fired_at honest): each rewrite is a write
# transaction and an fsync that ingest's writer waits behind.
REFRESH_EVERY = timedelta(seconds=5)
STILL_FIRING_EVERY = timedelta(minutes=1)


def _live(db: Database, site: str, rule: str) -> dict[str, dict]:
    return {row["subject"]: row for row in db.query(
        "SELECT id, subject, summary, figures, last_fired_at, cleared_since FROM alerts "
        "WHERE site = ? AND rule = ? AND state != 'closed'",
        [site, rule],
    )}


def _refresh_due(alert: dict, summary: str, figures: str, now: datetime) -> bool:
    if alert["cleared_since"] is not None:
        return True  # it was clearing and fires again: that must be recorded at once
    changed = (alert["summary"], alert["figures"]) != (summary, figures)
    age = now - parse_rfc3339(alert["last_fired_at"])
    return age >= (REFRESH_EVERY if changed else STILL_FIRING_EVERY)


def _rule_changes(db: Database, site: str, rule: str, found: list[Finding], setting: dict,
                  now: datetime) -> list[tuple]:
    live = _live(db, site, rule)
    todo: list[tuple] = []
    for finding in found:
        figures = json.dumps(finding.figures, sort_keys=True)
        alert = live.get(finding.subject)
        if alert is not None:
            if _refresh_due(alert, finding.summary, figures, now):
                todo.append(("refresh", alert["id"], finding, figures))
        elif not _in_cooldown(db, site, rule, finding.subject, setting["cooldown_min"], now):
            todo.append(("open", rule, finding, figures))
    firing = {finding.subject for finding in found}
    for subject, alert in live.items():
        if subject in firing:
            continue
        if alert["cleared_since"] is None:
            todo.append(("clearing", alert["id"]))
        elif parse_rfc3339(alert["cleared_since"]) + timedelta(
                minutes=setting["clear_min"]) <= now:
            todo.append(("close", alert["id"], f"clear for {setting['clear_min']:g} min"))
    return todo


def changes(db: Database, site: str, findings: dict[str, list[Finding]],
            now: datetime) -> list[tuple]:
    """What :func:`apply_findings` would write; read on its own, it tells the caller whether
    a write transaction is needed at all."""
    settings = site_rules(db, site)
    return [change for rule, found in findings.items()
            for change in _rule_changes(db, site, rule, found, settings[rule], now)]


def apply_findings(db: Database, site: str, findings: dict[str, list[Finding]],
                   now: datetime) -> list[int]:
    """Open, refresh, clear and close the site's alerts for the rules evaluated; inside the
    caller's write transaction. Returns the ids of the alerts opened."""
    now_text = to_rfc3339(now)
    opened: list[int] = []
    for change in changes(db, site, findings, now):
        kind = change[0]
        if kind == "refresh":
            _, alert_id, finding, figures = change
            db.execute(
                "UPDATE alerts SET summary = ?, figures = ?, last_fired_at = ?, "
                "cleared_since = NULL WHERE id = ?",
                [finding.summary, figures, now_text, alert_id],
            )
        elif kind == "open":
            _, rule, finding, figures = change
            opened.append(_open(db, site, rule, finding, figures, now))
        elif kind == "clearing":
            db.execute("UPDATE alerts SET cleared_since = ? WHERE id = ?", [now_text, change[1]])
        else:
            _close(db, change[1], now, SYSTEM, change[2])
    return opened


def _open(db: Database, site: str, rule: str, finding: Finding, figures: str,
          now: datetime) -> int:
    now_text = to_rfc3339(now)
    alert_id = db.execute(
        "INSERT INTO alerts (site, rule, subject, state, summary, figures, opened_at, "
        "last_fired_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id",
        [site, rule, finding.subject, finding.summary, figures, now_text, now_text],
    ).fetchone()[0]
    _history(db, alert_id, now, "opened", note=finding.summary)
    outbox.enqueue(db, alert_id, site, now)
    return alert_id


def _close(db: Database, alert_id: int, now: datetime, actor: str, note: str | None) -> None:
    db.execute(
        "UPDATE alerts SET state = 'closed', closed_at = ?, closed_by = ? WHERE id = ?",
        [to_rfc3339(now), actor, alert_id],
    )
    _history(db, alert_id, now, "closed", actor, note)


def _alert_state(db: Database, alert_id: int) -> str:
    row = db.execute("SELECT state FROM alerts WHERE id = ?", [alert_id]).fetchone()
    if row is None:
        raise AlertNotFound(f"there is no alert with id {alert_id}")
    return row[0]


def _comment(comment: str | None) -> str | None:
    """The comment as kept: redacted as a patient's comment is (kiosk.shared.redaction), since
    it stays in the alert's history and in the audit trail, which nothing purges; the page
    asks for no patient details, and a phone number or date typed all the same goes."""
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT:
        raise AlertStateError(f"a comment may be at most {MAX_COMMENT} characters")
    if comment is None:
        return None
    return redact(comment).strip() or None


def acknowledge(db: Database, alert_id: int, by: str, now: datetime,
                comment: str | None = None) -> None:
    """Someone has seen it and is on it; the alert stays live until it clears or is closed."""
    comment = _comment(comment)
    state = _alert_state(db, alert_id)
    if state == "closed":
        raise AlertStateError(f"alert {alert_id} is already closed")
    if state == "acknowledged":
        raise AlertStateError(f"alert {alert_id} is already acknowledged")
    db.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?, "
        "ack_comment = ? WHERE id = ?",
        [to_rfc3339(now), by, comment, alert_id],
    )
    _history(db, alert_id, now, "acknowledged", by, comment)


def close_by_hand(db: Database, alert_id: int, by: str, now: datetime,
                  comment: str | None = None) -> None:
    comment = _comment(comment)
    if _alert_state(db, alert_id) == "closed":
        raise AlertStateError(f"alert {alert_id} is already closed")
    _close(db, alert_id, now, by, comment)


def _as_dict(row: dict) -> dict:
    return {
        "id": row["id"],
        "site": row["site"],
        "rule": row["rule"],
        "subject": row["subject"] or None,
        "state": row["state"],
        "summary": row["summary"],
        "figures": json.loads(row["figures"]),
        "opened_at": row["opened_at"],
        "notified_at": row["notified_at"],
        "acknowledged_at": row["acknowledged_at"],
        "acknowledged_by": row["acknowledged_by"],
        "comment": row["ack_comment"],
        "closed_at": row["closed_at"],
        "closed_by": row["closed_by"],
    }


def _in_sites(sites, clauses: list, params: list) -> None:
    """Only the given sites (a login's or token's scope); None: every site."""
    if sites is not None:
        names = sorted(sites)
        clauses.append(f"site IN ({', '.join('?' * len(names))})" if names else "0")
        params.extend(names)


def list_alerts(db: Database, start: datetime, end: datetime, site: str | None = None,
                state: str | None = None, limit: int = 1000, sites=None) -> list[dict]:
    """Alerts live at some time in [start, end) (opened before ``end``, not closed before
    ``start``), newest first, at most ``limit``; of ``sites`` only, when given."""
    clauses = ["opened_at < ?", "(closed_at IS NULL OR closed_at >= ?)"]
    params: list = [to_rfc3339(end), to_rfc3339(start)]
    if site is not None:
        clauses.append("site = ?")
        params.append(site)
    _in_sites(sites, clauses, params)
    if state is not None:
        clauses.append("state = ?")
        params.append(state)
    rows = db.query(
        f"SELECT * FROM alerts WHERE {' AND '.join(clauses)} ORDER BY opened_at DESC, id DESC "
        "LIMIT ?",
        [*params, limit],
    )
    return [_as_dict(row) for row in rows]


def live_count(db: Database, site: str | None = None, sites=None) -> int:
    """Alerts not yet closed (open, notified or acknowledged), of ``sites`` when given."""
    clauses, params = ["state != 'closed'"], []
    if site is not None:
        clauses.append("site = ?")
        params.append(site)
    _in_sites(sites, clauses, params)
    return db.execute(
        f"SELECT COUNT(*) FROM alerts WHERE {' AND '.join(clauses)}", params
    ).fetchone()[0]


def alert_site(db: Database, alert_id: int) -> str | None:
    row = db.execute("SELECT site FROM alerts WHERE id = ?", [alert_id]).fetchone()
    return row[0] if row else None


def history(db: Database, alert_id: int) -> list[dict]:
    return list(db.query(
        "SELECT at, action, actor, note FROM alert_history WHERE alert_id = ? ORDER BY id",
        [alert_id],
    ))
