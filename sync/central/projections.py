"""Turn stored events into the ``visits``, ``ratings`` and device-health rows metrics read.

Called inside the ingest transaction, so an event and its projection commit together.

Visits are rebuilt from *all* of the visit's stored events each time one of them arrives, not
patched incrementally: a visit has a handful of events, and replaying them makes the row right
whatever order the batches arrived in (a `called` stored before its `checked_in`, a correction
before the event it corrects). One kiosk's events are replayed in ``device_seq`` order (its own
clock may be stepped back by NTP, its sequence never is); a visit touched by several devices is
replayed in ``occurred_at`` order.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.shared import metrics
from kiosk.shared.metrics import minutes_between
from kiosk.shared.timeutil import parse_optional, parse_rfc3339, to_rfc3339
from kiosk.shared.wire import Event
from sync.central.auth import Device
from sync.central.bulk_writes import execute_later, insert_rows

# A ratings tablet's face press is paired with a checkout on another device at most this long
# before it; the small allowance after covers two tablets whose clocks disagree a little.
PAIRING_WINDOW = timedelta(minutes=5)
PAIRING_CLOCK_ALLOWANCE = timedelta(minutes=1)
# An event stamped further than this in the future of its arrival had a wrong clock.
FUTURE_TOLERANCE = timedelta(minutes=5)

VISIT_COLUMNS = (
    "ticket",
    "appointment_at",
    "checked_in_at",
    "called_at",
    "checked_out_at",
    "cancelled_at",
    "cancel_reason",
    "voided",
)


def normalize_instant(text: str | None) -> str | None:
    """One fixed shape for every stored timestamp, so string order is time order."""
    return None if text is None else to_rfc3339(parse_rfc3339(text))


def is_clock_suspect(occurred_at: datetime, received_at: datetime) -> bool:
    return occurred_at - received_at > FUTURE_TOLERANCE


def replay_visit(events: list[dict]) -> dict:
    """The visit's columns after applying its events (rows of ``events``) in the given order.

    Each row's ``data`` is its JSON text (as stored) or the dict itself.
    """
    state: dict = dict.fromkeys(VISIT_COLUMNS)
    state["voided"] = 0
    for event in events:
        kind, at, data = event["type"], event["occurred_at"], event["data"]
        if isinstance(data, str):  # a stored row's JSON text; ingest passes what it just parsed
            data = json.loads(data)
        if kind == "visit.checked_in":
            state["ticket"] = data["ticket"]
            state["appointment_at"] = normalize_instant(data.get("appointment_at"))
            state["checked_in_at"] = at
            state["voided"] = 0
        elif kind == "visit.called":
            state["called_at"] = at
        elif kind == "visit.checked_out":
            state["checked_out_at"] = at
        elif kind == "visit.cancelled":
            state["cancelled_at"] = at
            state["cancel_reason"] = data["reason"]
        elif kind == "visit.corrected":
            state[data["field"]] = normalize_instant(data["value"])
        elif kind == "visit.undone":
            _undo(state, data["action"])
    state["status"] = visit_status(state)
    return state


def _undo(state: dict, action: str) -> None:
    if action == "visit.checked_in":
        # The check-in itself was a mistake: the visit never happened, like a cancellation.
        state["voided"] = 1
    elif action == "visit.called":
        state["called_at"] = None
    elif action == "visit.checked_out":
        state["checked_out_at"] = None
    elif action == "visit.cancelled":
        state["cancelled_at"] = None
        state["cancel_reason"] = None


def visit_status(state: dict) -> str:
    """The same status words as the kiosk's store."""
    if state["voided"]:
        return "voided"
    if not state["checked_in_at"]:
        return "incomplete"  # later events arrived before the check-in did
    if state["cancel_reason"]:
        return state["cancel_reason"]
    if state["checked_out_at"]:
        return "done"
    if state["called_at"]:
        return "in_chair"
    return "waiting"


ORDERED_FIELDS = (("checked_in_at", "check-in"), ("called_at", "called in"),
                  ("checked_out_at", "check-out"))


# Two kiosks' clocks, or one kiosk's clock after NTP steps it, disagree by a little: a call
# stamped a few seconds before the check-in another desk stamped is a real visit, and refusing
# either event would lose it (a refused event is never resent). Times out of order by more than
# this are refused; a person's correction gets no allowance, as the desk's own model gives none.
CLOCK_ALLOWANCE = timedelta(minutes=5)


def times_out_of_order(
    state: dict, allowance: timedelta = timedelta(0), field: str | None = None
) -> str | None:
    """What is out of order in a replayed visit's times (check-in, then called in, then
    check-out; equal instants allowed, and ``allowance`` of disagreement), looking only at the
    pairs that hold ``field`` when one is named; None when all is in order."""
    present = [(state[name], name, words) for name, words in ORDERED_FIELDS if state[name]]
    for (earlier, first, earlier_words), (later, second, later_words) in zip(
        present, present[1:], strict=False
    ):
        if field is not None and field not in (first, second):
            continue
        if parse_rfc3339(later) < parse_rfc3339(earlier) - allowance:
            return f"{later_words} {later} is before {earlier_words} {earlier}"
    return None


def order_problem(state: dict, event: dict) -> str | None:
    """Why ``event`` may not join its visit (whose replayed times, with it, are ``state``), or
    None. A device's stamp gets ``CLOCK_ALLOWANCE``, whichever event arrives first; a
    correction gets none, on the pairs of the field it corrects."""
    if event["type"] == "visit.corrected":
        data = event["data"] if isinstance(event["data"], dict) else json.loads(event["data"])
        return times_out_of_order(state, field=data["field"])
    return times_out_of_order(state, CLOCK_ALLOWANCE)


def order_events(events: list[dict]) -> list[dict]:
    """A visit's events in replay order (see the module docstring)."""
    if len({event["device_id"] for event in events}) <= 1:
        return sorted(events, key=lambda event: event["device_seq"])
    return sorted(events, key=lambda event: (event["occurred_at"], event["device_seq"]))


def _waiting_minutes(state: dict) -> float | None:
    # Never below 0: clocks within CLOCK_ALLOWANCE of each other may stamp a call a little
    # before its check-in, and that patient did not wait a negative time.
    wait = minutes_between(
        parse_optional(state["checked_in_at"]), parse_optional(state["called_at"])
    )
    return None if wait is None else max(0.0, wait)


# Derived once per visit when it is projected, so the figures read numbers from a covering
# index instead of parsing four timestamps per visit on every request (README, "Metrics").
APPOINTMENT_COLUMNS = ("chair_min", "adjusted_wait_min", "arrival")


def appointment_columns(state: dict) -> dict:
    """A replayed visit's chair time, lateness-adjusted wait and arrival class (early, on_time,
    late), as ``kiosk.shared.metrics`` defines them; None where they do not apply."""
    if state["voided"] or not state["checked_in_at"] or (
        state["appointment_at"] is None and state["checked_out_at"] is None
    ):
        return dict.fromkeys(APPOINTMENT_COLUMNS)  # most projections: nothing to parse
    visit = metrics.VisitTimes(
        checked_in_at=parse_rfc3339(state["checked_in_at"]),
        called_at=parse_optional(state["called_at"]),
        checked_out_at=parse_optional(state["checked_out_at"]),
        appointment_at=parse_optional(state["appointment_at"]),
    )
    chair = metrics.chair_minutes(visit)
    return {
        # Never below 0, as the wait: two desks' clocks may disagree by a little.
        "chair_min": None if chair is None else max(0.0, chair),
        "adjusted_wait_min": metrics.lateness_adjusted_wait(visit),
        "arrival": metrics.arrival_class(visit),
    }


VISIT_ROW = ("id", "device_id", "site", *VISIT_COLUMNS, "status", "wait_min",
             *APPOINTMENT_COLUMNS, "updated_at")
# What sqlite-utils' ``Table.upsert`` would run, prepared once: upsert re-reads the table's
# schema on every call, which was a third of the store's CPU under a stream of batches
# (benchmark figure 3).
def _upsert_visit(columns: tuple[str, ...]) -> str:
    return (
        f"INSERT INTO visits ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + column for column in columns)}) ON CONFLICT(id) DO UPDATE "
        "SET " + ", ".join(f"{column} = excluded.{column}" for column in columns[1:])
    )


UPSERT_VISIT = _upsert_visit(VISIT_ROW)


def upsert_visit_sql(db: Database) -> str:
    """``UPSERT_VISIT``, or its form without the columns the table lacks: a migration older
    than ``_appointment_figures`` (number 4's repair) rebuilds visits with this code before
    those columns exist, and that migration then fills them in. Asked once per repair (it
    reads the table's columns), never per visit: ingest runs on the current schema and
    writes ``UPSERT_VISIT`` as it is."""
    present = {row[1] for row in db.execute("PRAGMA table_info(visits)")}
    if present.issuperset(VISIT_ROW):
        return UPSERT_VISIT
    return _upsert_visit(tuple(column for column in VISIT_ROW if column in present))


def project_visit(
    db: Database,
    visit_id: str,
    updated_at: str,
    only_events: list[dict] | None = None,
    device_site: tuple | None = None,
    has_ratings: bool = True,
    pending_upserts: list[dict] | None = None,
    all_events: list[dict] | None = None,
    rated_next: bool = False,
    upsert_sql: str = UPSERT_VISIT,
) -> dict:
    """Rebuild one visit's row from its events, then keep its ratings' cached wait in step.

    ``only_events``: when the caller knows these rows (one device's, whose ``devices.site`` row
    is ``device_site``) are *all* the visit's stored events, as ingest does for a visit none of
    whose events were stored before its batch, they are replayed without reading them back.
    ``has_ratings=False``: the caller knows no rating names this visit (ingest asks once per
    batch), so there are none to keep in step.
    ``upsert_sql``: the statement that writes the row; a repair inside an older migration
    passes ``upsert_visit_sql(db)``, asked once for all its visits.
    ``pending_upserts``: the row is added there for the caller to write with
    :func:`upsert_visits` (before anything reads ``visits`` again) instead of written now;
    keeping ratings in step reads only ``ratings``, so it need not wait for the row.
    ``all_events``: every stored event of the visit (any devices'), already read by the
    caller, so they are not read again.
    ``rated_next``: a rating naming this visit is about to be stored (the desk's own, in the
    same batch), so no waiting rating from a tablet is paired with it meanwhile.
    """
    if only_events is not None:
        events = order_events(only_events)
        site = device_site
        check_in = next((e for e in events if e["type"] == "visit.checked_in"), events[0])
    else:
        if all_events is None:
            all_events = list(
                db.query(
                    "SELECT device_id, device_seq, type, occurred_at, data FROM events "
                    "WHERE visit_id = ? AND type LIKE 'visit.%'",
                    [visit_id],
                )
            )
        events = order_events(all_events)
        check_in = next((e for e in events if e["type"] == "visit.checked_in"), events[0])
        sites = {
            device_id: db.execute("SELECT site FROM devices WHERE id = ?", [device_id]).fetchone()
            for device_id in {event["device_id"] for event in events}
        }
        site = sites[check_in["device_id"]]
        # Only the visit's own site changes it. Ingest refuses another site's device once the
        # visit is known; this covers one whose events arrived before the check-in did.
        events = order_events([event for event in events if sites[event["device_id"]] == site])
    state = replay_visit(events)
    row = {
        "id": visit_id,
        "device_id": check_in["device_id"],
        "site": site[0] if site else None,
        **state,
        "wait_min": None if state["voided"] else _waiting_minutes(state),
        **appointment_columns(state),
        "updated_at": updated_at,
    }
    if pending_upserts is None:
        db.execute(upsert_sql, row)
    else:
        pending_upserts.append(row)
    _keep_ratings_in_step(db, row, has_ratings, pair_waiting=not rated_next)
    return row


UPSERT_VISITS_HEAD = f"INSERT INTO visits ({', '.join(VISIT_ROW)})"
UPSERT_VISITS_TAIL = " ON CONFLICT(id) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in VISIT_ROW[1:]
)


def upsert_visits(db: Database, rows: list[dict]) -> None:
    """Write visit rows ``project_visit`` left pending, in order."""
    if rows:
        insert_rows(db, UPSERT_VISITS_HEAD, [tuple(row[c] for c in VISIT_ROW) for row in rows],
                    UPSERT_VISITS_TAIL)


def _keep_ratings_in_step(
    db: Database, visit: dict, has_ratings: bool = True, pair_waiting: bool = True
) -> None:
    rateable = not visit["voided"] and visit["checked_out_at"] is not None
    if not has_ratings:
        # Nothing to unpair or update; only a rating waiting for this checkout may pair.
        if rateable and pair_waiting:
            _pair_waiting_rating(db, visit, already_rated=False)
        return
    if not rateable:
        # A checkout that was undone (or a visit voided) frees the rating paired with it.
        execute_later(
            db,
            "UPDATE ratings SET visit_id = NULL, link = NULL, wait_min = NULL "
            "WHERE visit_id = ? AND link = 'paired'",
            [visit["id"]],
        )
    execute_later(
        db, "UPDATE ratings SET wait_min = ? WHERE visit_id = ?", [visit["wait_min"], visit["id"]]
    )
    if rateable and pair_waiting:
        _pair_waiting_rating(db, visit)


# The earliest unpaired rating of the window, found and paired in one statement: nothing waits
# for its answer, so on PostgreSQL it is pipelined (bulk_writes.execute_later) instead of
# costing two round trips per checkout; on SQLite it simply runs. The same SQL on both.
PAIR_WAITING_RATING = (
    "UPDATE ratings SET visit_id = ?, link = 'paired', wait_min = ? WHERE id = ("
    "SELECT id FROM ratings WHERE site = ? AND visit_id IS NULL AND misuse = 0 "
    "AND occurred_at >= ? AND occurred_at <= ? ORDER BY occurred_at LIMIT 1)"
)
PAIR_WAITING_RATING_UNRATED = (
    PAIR_WAITING_RATING + " AND NOT EXISTS (SELECT 1 FROM ratings WHERE visit_id = ?)"
)


def _pair_waiting_rating(db: Database, visit: dict, already_rated: bool | None = None) -> None:
    """A checkout that synced after its rating: pair it with the earliest unpaired rating then.
    ``already_rated`` None: not known, so the statement checks that no rating names the visit."""
    if already_rated:
        return
    checked_out = parse_rfc3339(visit["checked_out_at"])
    params = [visit["id"], visit["wait_min"], visit["site"],
              to_rfc3339(checked_out - PAIRING_CLOCK_ALLOWANCE),
              to_rfc3339(checked_out + PAIRING_WINDOW)]
    if already_rated is None:
        execute_later(db, PAIR_WAITING_RATING_UNRATED, [*params, visit["id"]])
    else:
        execute_later(db, PAIR_WAITING_RATING, params)


def project_rating(
    db: Database,
    device: Device,
    event: Event,
    occurred_at: str | None = None,
    visit_rows: dict[str, dict] | None = None,
    pending_inserts: list[tuple] | None = None,
    linked_here: set[str] | None = None,
    rated_visits: set[str] | None = None,
    checked_in_waits: dict[str, tuple] | None = None,
) -> None:
    """Store a rating and link it to its visit.

    With a ``visit_id`` (a desk kiosk rating its own checkout) the link is direct. Without one
    (a ``ratings``-only tablet that never saw the checkout) the rating is paired with the most
    recent unrated checked-out visit at the same site within 5 minutes before it (1 minute after
    is allowed for clock differences). If that checkout has not synced yet, the pairing is made
    when it does (``_pair_waiting_rating``). Ratings flagged as misuse are never paired: they are
    left out of every figure, and pairing one would take the visit from the real rating.
    ``occurred_at``: the event's instant already normalised (ingest has it), else worked out.
    ``visit_rows``: visits rows as just written in this transaction (by ``project_visit``),
    which need not be read back. ``pending_inserts``: the rating's row is added there for the
    caller to write with :func:`insert_ratings`; a rating that must look for its visit writes
    what is pending first, because the look-up reads ``ratings``.

    A visit has at most one rating linked to it: a rating naming a visit that already has one,
    or a visit the store does not know, is stored unlinked (a rating, never a response), so
    the response rate cannot pass 100%. ``linked_here``: the visits linked by ratings still
    pending, which the store cannot see yet.
    ``rated_visits`` and ``checked_in_waits``: what the caller read once for a batch of
    ratings, before the first of them, instead of two look-ups per rating: the visits (named
    by these ratings) that a stored rating names, and per such visit not in ``visit_rows``
    that is checked in, ``(wait_min,)``. Storing the batch's ratings links only visits added
    to ``linked_here``, so the first set with ``linked_here`` answers as the store would.
    """
    if linked_here is None:
        linked_here = set()
    data = event.data
    if occurred_at is None:
        occurred_at = normalize_instant(event.occurred_at)
    row = {
        "id": event.id,
        "device_id": device.id,
        "site": device.site,
        "visit_id": event.visit_id,
        "link": "direct" if event.visit_id else None,
        "score": data["score"],
        "scale": data["scale"],
        "tags": json.dumps(data.get("tags", [])),
        "misuse": int(bool(data.get("misuse", False))),
        "occurred_at": occurred_at,
        "wait_min": None,
        # Asked as the FFT question (the FFT return counts only these), else None: faces.
        "survey": data.get("survey"),
        "lang": data.get("lang"),
    }
    if event.visit_id:
        if visit_rows and event.visit_id in visit_rows:
            visit = visit_rows[event.visit_id]
            found = (visit["wait_min"],) if visit["checked_in_at"] else None
        elif checked_in_waits is not None:
            found = checked_in_waits.get(event.visit_id)
        else:
            found = db.execute(
                "SELECT wait_min FROM visits WHERE id = ? AND checked_in_at IS NOT NULL",
                [event.visit_id],
            ).fetchone()
        if rated_visits is not None:
            taken = event.visit_id in linked_here or event.visit_id in rated_visits
        else:
            taken = event.visit_id in linked_here or db.execute(
                "SELECT 1 FROM ratings WHERE visit_id = ? LIMIT 1", [event.visit_id]
            ).fetchone()
        if found and not taken:
            row["wait_min"] = found[0]
            linked_here.add(event.visit_id)
        else:
            row.update(visit_id=None, link=None)
    elif not row["misuse"]:
        if pending_inserts:
            insert_ratings(db, pending_inserts)
            pending_inserts.clear()
        at = parse_rfc3339(occurred_at)
        found = db.execute(
            "SELECT v.id, v.wait_min FROM visits v WHERE v.site = ? AND v.voided = 0 "
            "AND v.checked_out_at >= ? AND v.checked_out_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.visit_id = v.id) "
            "ORDER BY v.checked_out_at DESC LIMIT 1",
            [
                device.site,
                to_rfc3339(at - PAIRING_WINDOW),
                to_rfc3339(at + PAIRING_CLOCK_ALLOWANCE),
            ],
        ).fetchone()
        if found and found[0] not in linked_here:
            row.update(visit_id=found[0], link="paired", wait_min=found[1])
            linked_here.add(found[0])
    if pending_inserts is None:
        insert_ratings(db, [tuple(row[column] for column in RATING_ROW)])
    else:
        pending_inserts.append(tuple(row[column] for column in RATING_ROW))


def project_dont_know(db: Database, device: Device, event: Event, occurred_at: str) -> None:
    """An FFT "Don't know" answer: kept apart from ``ratings`` (it has no score), so it counts
    in the FFT's denominators (``sync.central.fft``) and in no other figure: not the Happy
    Index, not the rating-by-wait chart, not the response rate, not the alerts."""
    execute_later(
        db,
        "INSERT OR IGNORE INTO dont_know_answers (id, device_id, site, visit_id, misuse, "
        "occurred_at) VALUES (?, ?, ?, ?, ?, ?)",
        [event.id, device.id, device.site, event.visit_id,
         int(bool(event.data.get("misuse", False))), occurred_at],
    )


RATING_ROW = ("id", "device_id", "site", "visit_id", "link", "score", "scale", "tags", "misuse",
              "occurred_at", "wait_min", "survey", "lang")
INSERT_RATINGS_HEAD = f"INSERT OR IGNORE INTO ratings ({', '.join(RATING_ROW)})"


def insert_ratings(db: Database, rows: list[tuple]) -> None:
    """Write rating rows (``RATING_ROW`` order), in order; one already stored is left as is."""
    if rows:
        insert_rows(db, INSERT_RATINGS_HEAD, rows)


def project_heartbeat(db: Database, device: Device, event: Event, received_at: datetime) -> None:
    """Device health from its newest heartbeat; an older one arriving late changes nothing.

    A stored heartbeat stamped further ahead of the store's clock than FUTURE_TOLERANCE came
    from a clock glitch and is not "newer" than anything: the next heartbeat replaces it, so a
    future stamp can never freeze the device's row until that time comes.
    """
    occurred = parse_rfc3339(event.occurred_at)
    execute_later(
        db,
        "UPDATE devices SET last_heartbeat_at = :at, backlog = :backlog, rejected = :rejected, "
        "version = :version, clock_skew_s = :skew "
        "WHERE id = :id AND (last_heartbeat_at IS NULL OR last_heartbeat_at <= :at "
        "OR last_heartbeat_at > :trusted_until)",
        {
            "at": to_rfc3339(occurred),
            "trusted_until": to_rfc3339(received_at + FUTURE_TOLERANCE),
            "backlog": event.data["backlog"],
            "rejected": event.data.get("rejected"),
            "version": event.data["version"],
            # Positive: the kiosk's clock is behind ours (or the heartbeat waited in its outbox).
            "skew": round((received_at - occurred).total_seconds(), 3),
            "id": device.id,
        },
    )


def record_sequence(db: Database, device: Device, seqs: list[int], reused: int = 0) -> None:
    """Keep the device's sequence health: the highest ``device_seq`` stored, how many events
    are stored (so ``seq_max - (seq_stored - seq_reused)`` numbers were never stored: events
    the store rejected, which keep their number, or not sent yet), how many arrived after a
    higher number had (a resend after a lost answer, or a kiosk whose outbox was rebuilt) and
    how many reused a number already stored (a kiosk that started a new database)."""
    if not seqs:
        return
    highest, reversals = db.execute(
        "SELECT seq_max, seq_reversals FROM devices WHERE id = ?", [device.id]
    ).fetchone()
    reversals = reversals or 0
    for seq in seqs:
        if highest is not None and seq < highest:
            reversals += 1
        highest = seq if highest is None else max(highest, seq)
    db.execute(
        "UPDATE devices SET seq_max = ?, seq_stored = coalesce(seq_stored, 0) + ?, "
        "seq_reversals = ?, seq_reused = coalesce(seq_reused, 0) + ? WHERE id = ?",
        [highest, len(seqs), reversals, reused, device.id],
    )
