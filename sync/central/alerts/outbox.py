"""The alerts' own outbox: one delivery per alert and channel, retried with backoff.

A delivery is claimed (``sending``, committed) before its attempt and settled after it, so a
message is never sent twice for one alert and channel: one interrupted mid-send (the process
died) is marked failed on the next start, not resent. A failed attempt waits 5 s, 10 s, 20 s
... (at most 10 min) before the next; after ``MAX_ATTEMPTS`` the delivery is ``failed`` and
shown on the Alerts page with its last error, where it can be queued again (unless its
channel was removed: then it has nowhere to go, and one found queued is failed, not sent).
Deliveries are claimed and sent one at a time, so a stop between two leaves the rest queued.
Sending happens on the outbox's own thread, never on ingest's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339
from sync.central.alerts import channels

MAX_ATTEMPTS = 8
FIRST_BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=10)
QUIET_RECHECK = timedelta(minutes=5)
CHANNEL_GONE = "the channel was removed"
INTERRUPTED = "interrupted while sending (the store stopped); not resent, to never send twice"

logger = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt."""
    return min(FIRST_BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)


def enqueue(db: Database, alert_id: int, site: str, now: datetime) -> int:
    """A delivery for every channel of the site; returns how many were queued."""
    queued = 0
    for channel in channels.channels_for_site(db, site):
        queued += db.execute(
            "INSERT OR IGNORE INTO alert_deliveries (alert_id, channel_id, status, attempts, "
            "next_attempt_at, created_at) VALUES (?, ?, 'pending', 0, ?, ?)",
            [alert_id, channel["id"], to_rfc3339(now), to_rfc3339(now)],
        ).rowcount
    return queued


def recover_interrupted(db: Database) -> int:
    return db.execute(
        "UPDATE alert_deliveries SET status = 'failed', last_error = ? WHERE status = 'sending'",
        [INTERRUPTED],
    ).rowcount


def _alert(db: Database, alert_id: int) -> dict:
    row = next(iter(db.query("SELECT * FROM alerts WHERE id = ?", [alert_id])))
    return {**row, "figures": json.loads(row["figures"])}


def _next_due(db: Database, now: datetime) -> tuple[int, int, int] | None:
    return db.execute(
        "SELECT id, alert_id, channel_id FROM alert_deliveries WHERE status = 'pending' "
        "AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
        [to_rfc3339(now)],
    ).fetchone()


def _claim_one(store, now: datetime) -> tuple[int, dict, dict] | None:
    """The next delivery due, marked ``sending``; None when nothing is due.

    One at a time, so a stop or a failure between sends never leaves a row claimed that was
    not attempted. A delivery whose channel is gone is settled as failed on the way, so it
    can never block the ones behind it.
    """
    # A read first: the usual answer is "nothing due", which needs no write transaction.
    if _next_due(store.db, now) is None:
        return None
    with store.write() as db:
        while (row := _next_due(db, now)) is not None:
            delivery_id, alert_id, channel_id = row
            try:
                channel = channels.get_channel(db, channel_id)
            except channels.ChannelNotFound:
                db.execute("UPDATE alert_deliveries SET status = 'failed', last_error = ? "
                           "WHERE id = ?", [CHANNEL_GONE, delivery_id])
                continue
            if channels.in_quiet_hours(channel, now):
                # Held, not attempted: looked at again a few minutes on, sent once they end.
                db.execute("UPDATE alert_deliveries SET next_attempt_at = ? WHERE id = ?",
                           [to_rfc3339(now + QUIET_RECHECK), delivery_id])
                continue
            db.execute("UPDATE alert_deliveries SET status = 'sending' WHERE id = ?",
                       [delivery_id])
            return delivery_id, _alert(db, alert_id), channel
    return None


def _settle(db: Database, delivery_id: int, alert: dict, channel: dict, error: str | None,
            now: datetime) -> None:
    now_text = to_rfc3339(now)
    if error is None:
        db.execute(
            "UPDATE alert_deliveries SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
            "last_error = NULL WHERE id = ?",
            [now_text, delivery_id],
        )
        db.execute(
            "UPDATE alerts SET notified_at = COALESCE(notified_at, ?), state = CASE state "
            "WHEN 'open' THEN 'notified' ELSE state END WHERE id = ?",
            [now_text, alert["id"]],
        )
        db.execute(
            "INSERT INTO alert_history (alert_id, at, action, actor, note) "
            "VALUES (?, ?, 'notified', 'system', ?)",
            [alert["id"], now_text, f"{channel['kind']} channel {channel['id']}"],
        )
        return
    attempts = db.execute(
        "SELECT attempts FROM alert_deliveries WHERE id = ?", [delivery_id]
    ).fetchone()[0] + 1
    if attempts >= MAX_ATTEMPTS:
        status, next_at = "failed", None
    else:
        status, next_at = "pending", to_rfc3339(now + backoff(attempts))
    db.execute(
        "UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, "
        "last_error = ? WHERE id = ?",
        [status, attempts, next_at, error, delivery_id],
    )


Sender = Callable[[dict, dict, datetime, float], None]


def _attempt(send: Sender, channel: dict, alert: dict, now: datetime,
             timeout_s: float) -> str | None:
    """One send; the error sentence, or None when it went."""
    try:
        send(channel, alert, now, timeout_s)
    except channels.DeliveryFailed as failure:
        error = str(failure)
    except Exception as failure:  # noqa: BLE001 - a bug in one send must not strand the rest
        logger.exception("sending alert %s to channel %s failed", alert["id"], channel["id"])
        error = f"the message could not be sent: {type(failure).__name__}"
    else:
        return None
    logger.warning("alert %s to %s channel %s: %s", alert["id"], channel["kind"],
                   channel["id"], error)
    return error


def deliver_due(store, now: datetime, timeout_s: float = channels.SEND_TIMEOUT_S,
                send: Sender = channels.send,
                should_stop: Callable[[], bool] = lambda: False,
                clock: Callable[[], datetime] | None = None) -> int:
    """Attempt every delivery due, one by one, until none is left or ``should_stop()``;
    returns how many were attempted. With ``clock`` each attempt takes its own time from it,
    so a webhook's timestamp is when it was sent, not when the run began (sends before it
    may have waited out their timeouts); without, every attempt is at ``now``."""
    attempted = 0
    while not should_stop():
        if clock is not None:
            now = clock()
        claimed = _claim_one(store, now)
        if claimed is None:
            break
        delivery_id, alert, channel = claimed
        error = _attempt(send, channel, alert, now, timeout_s)
        attempted += 1
        try:
            with store.write() as db:
                _settle(db, delivery_id, alert, channel, error, now)
        except Exception:  # noqa: BLE001 - the rest still go; this one shows as interrupted
            logger.exception("recording delivery %s failed", delivery_id)
    return attempted


def requeue(db: Database, delivery_id: int, now: datetime) -> None:
    """Queue a failed delivery again, from its first attempt (a person fixed the channel)."""
    row = db.execute("SELECT channel_id FROM alert_deliveries WHERE id = ? AND status = 'failed'",
                     [delivery_id]).fetchone()
    if row is None:
        raise LookupError(f"there is no failed delivery with id {delivery_id}")
    if not channel_exists(db, row[0]):
        raise LookupError(f"delivery {delivery_id} cannot be sent again: its channel "
                          f"{row[0]} was removed")
    db.execute(
        "UPDATE alert_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ? "
        "WHERE id = ? AND status = 'failed'",
        [to_rfc3339(now), delivery_id],
    )


def channel_exists(db: Database, channel_id: int) -> bool:
    return db.execute("SELECT 1 FROM alert_channels WHERE id = ?", [channel_id]).fetchone() \
        is not None


def deliveries(db: Database, alert_id: int | None = None) -> list[dict]:
    sql = ("SELECT d.id, d.alert_id, d.channel_id, c.kind, d.status, d.attempts, "
           "d.next_attempt_at, d.last_error, d.sent_at FROM alert_deliveries d "
           "LEFT JOIN alert_channels c ON c.id = d.channel_id")
    params: list = []
    if alert_id is not None:
        sql += " WHERE d.alert_id = ?"
        params.append(alert_id)
    return list(db.query(sql + " ORDER BY d.id", params))
