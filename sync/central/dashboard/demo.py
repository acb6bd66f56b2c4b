"""Realistic sample data for a first look at the dashboard, and volume for the benchmark.

Two sites, four desks, a ratings tablet that has gone silent. Mornings are busy, Tuesday is
slow, and Northgate's desk-2 runs late and is rated lower. Ratings follow their visit's
checkout and get worse as waits grow; negative ones often carry a follow-up tag; a few
repeated presses are flagged as misuse; a few visits are cancelled or no-shows. A handful of
patients are waiting right now, so the live queue has something to show.

The data is made as wire events (``kiosk.shared.wire``) and written one of two ways:

* :func:`write_via_ingest` sends them through ``ingest_batch``, the code path of a real kiosk
  (the default for ``demo-data``; a few seconds for 28 days);
* :func:`write_bulk` inserts the events and their projections in one transaction, building
  each visit row with ``projections.replay_visit`` so it matches what ingest would store
  (for the million-row benchmark, where per-event ingest would take far too long).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kiosk.shared.metrics import local_day_bounds
from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.shared.wire import MAX_BATCH_EVENTS
from sync.central import audit, auth, sites
from sync.central.ingest import ingest_batch
from sync.central.projections import APPOINTMENT_COLUMNS, appointment_columns, replay_visit
from sync.central.storage import CentralStore

VERSION = "0.1.0"

# site -> (zone, desks); desk name -> (lateness minutes, rating penalty in faces, days in use)
# Riverside's desk-3 was set up two days ago: too few responses to be shown on its own.
SITES = {
    "Northgate Dental": (
        "Europe/London",
        {"desk-1": (0.0, 0.0, None), "desk-2": (9.0, 0.45, None)},
    ),
    "Riverside Medical": (
        "Europe/London",
        {"desk-1": (2.0, 0.0, None), "desk-2": (0.0, 0.1, None), "desk-3": (1.0, 0.0, 2)},
    ),
}
SILENT_DEVICE = ("Northgate Dental", "tablet-1")
# Arrivals per desk per local hour on an ordinary weekday: busy mornings, a lunch dip.
HOURLY_ARRIVALS = {8: 4, 9: 7, 10: 7, 11: 6, 12: 3, 13: 3, 14: 4, 15: 4, 16: 4, 17: 2}
WEEKDAY_FACTOR = {0: 1.0, 1: 0.55, 2: 1.0, 3: 0.95, 4: 0.9, 5: 0.4, 6: 0.0}  # slow Tuesday
NEGATIVE_TAGS = ("friendliness", "explanation", "billing", "cleanliness", "other")


@dataclass
class DemoDevice:
    id: str
    site: str
    name: str
    zone: ZoneInfo
    lateness: float = 0.0
    penalty: float = 0.0
    days_in_use: int | None = None
    seq: int = 0
    events: list[dict] = field(default_factory=list)

    def emit(self, kind: str, at: datetime, visit_id: str | None, data: dict) -> None:
        self.seq += 1
        self.events.append(
            {
                "id": str(uuid.UUID(int=random.getrandbits(128), version=4)),
                "device_seq": self.seq,
                "type": kind,
                "occurred_at": to_rfc3339(at),
                "visit_id": visit_id,
                "data": data,
            }
        )


def enrol_devices(store: CentralStore) -> list[DemoDevice]:
    """The demo's sites and kiosks (enrolled like `device add` does, and recorded in the audit
    trail as it records them, by the command that ran demo-data)."""
    made = []
    actor = audit.command_actor()
    with store.write() as db:
        for site, (zone, desks) in SITES.items():
            config = sites.update_site(db, site, timezone=zone, target_wait_min=15)
            audit.record(db, actor, "site.set", site, site, None,
                         {**config.as_dict(), "by": "demo-data"})
            for name, (lateness, penalty, days_in_use) in desks.items():
                device, _ = auth.add_device(db, site, name)
                _record_device(db, actor, device)
                made.append(
                    DemoDevice(
                        device.id, site, name, ZoneInfo(zone), lateness, penalty, days_in_use
                    )
                )
        silent, _ = auth.add_device(db, SILENT_DEVICE[0], SILENT_DEVICE[1])
        _record_device(db, actor, silent)
        made.append(DemoDevice(silent.id, silent.site, silent.name, ZoneInfo("Europe/London")))
    return made


def _record_device(db, actor: audit.Actor, device: auth.Device) -> None:
    audit.record(db, actor, "device.add", device.id, device.site, None,
                 {"site": device.site, "name": device.name, "by": "demo-data"})


def _score(wait: float, penalty: float, rng: random.Random) -> int:
    """Happier with short waits; a late desk's patients a little less happy overall."""
    mood = 4.75 - 0.055 * max(wait - 5, 0) - penalty + rng.gauss(0, 0.75)
    return max(1, min(5, round(mood)))


def _tags(score: int, wait: float, rng: random.Random) -> list[str]:
    if score > 2 or rng.random() < 0.3:
        return []
    tags = []
    if wait > 15 and rng.random() < 0.8:
        tags.append("waiting_time")
    if not tags or rng.random() < 0.3:
        tags.append(rng.choice(NEGATIVE_TAGS))
    return tags


def _unlinked_rating(device: DemoDevice, around: datetime, plan: Plan) -> None:
    at = around + timedelta(minutes=plan.rng.uniform(0, 50))
    if at < plan.now:
        score = _score(plan.rng.uniform(0, 25), device.penalty, plan.rng)
        data = {"score": score, "scale": 5, "tags": [], "misuse": False}
        device.emit("rating.submitted", at, None, data)


def _appointment(visit_id: str, arrival: datetime) -> str | None:
    """About 7 visits in 10 were booked: a time from 6 minutes before to 19 minutes after the
    arrival, rounded to the nearest quarter-hour (as a desk books), so most patients come a
    little early and a few late. Taken from the visit's own random id, not from new draws, so
    every other figure of the demo stays as it was."""
    bits = uuid.UUID(visit_id).int
    if bits % 10 >= 7:
        return None
    booked = arrival + timedelta(minutes=(bits >> 8) % 26 - 6 + 7.5)  # + 7.5: round, not floor
    quarter = booked.replace(minute=booked.minute - booked.minute % 15, second=0, microsecond=0)
    return to_rfc3339(quarter)


def _visit(device: DemoDevice, arrival: datetime, load: float, plan: Plan) -> None:
    rng, now = plan.rng, plan.now
    visit_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    prefix = "ABCDEFGHI"[int(device.name[-1]) - 1] if device.name[-1].isdigit() else "A"
    ticket = f"{prefix}-{rng.randint(1, 999):03d}"
    data = {"ticket": ticket, "appointment_at": _appointment(visit_id, arrival)}
    device.emit("visit.checked_in", arrival, visit_id, data)
    if rng.random() < 0.03:
        at = arrival + timedelta(minutes=rng.uniform(2, 30))
        if at < now:
            reason = rng.choice(("cancelled", "no_show"))
            device.emit("visit.cancelled", at, visit_id, {"reason": reason})
        return
    wait = rng.gammavariate(2.0, 2.2 + 2.6 * load) + device.lateness * rng.uniform(0.5, 1.5)
    called = arrival + timedelta(minutes=wait, seconds=rng.randint(0, 59))
    if called >= now:
        return  # still waiting
    device.emit("visit.called", called, visit_id, {})
    checked_out = called + timedelta(minutes=rng.uniform(8, 30))
    if checked_out >= now:
        return  # in the chair
    device.emit("visit.checked_out", checked_out, visit_id, {})
    if rng.random() > 0.72:
        return  # walked past the tablet
    wait_min = (called - arrival).total_seconds() / 60
    score = _score(wait_min, device.penalty, rng)
    rated = checked_out + timedelta(seconds=rng.randint(5, 50))
    if rated >= now:
        return
    data = {"score": score, "scale": 5, "tags": _tags(score, wait_min, rng), "misuse": False}
    device.emit("rating.submitted", rated, visit_id, data)
    if rng.random() < 0.01:  # a child hammering the faces: stored, flagged, left out
        for extra in range(1, rng.randint(2, 4)):
            press = {"score": rng.randint(1, 5), "scale": 5, "tags": [], "misuse": True}
            device.emit("rating.submitted", rated + timedelta(seconds=extra), None, press)


@dataclass
class Plan:
    """How much to make: ``rate`` scales arrivals; ``extra_ratings`` adds unlinked presses
    (a patient who rated without a checkout to pair with) per visit, to reach a rating count."""

    now: datetime
    rate: float = 1.0
    extra_ratings: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))


def generate(devices: list[DemoDevice], days: list[int], plan: Plan) -> None:
    """Append to each device's ``events`` the given days (days before today, oldest first)."""
    for device in devices:
        if (device.site, device.name) == SILENT_DEVICE:
            continue
        today = plan.now.astimezone(device.zone).date()
        for offset in days:
            if device.days_in_use is None or offset < device.days_in_use:
                _day(device, today - timedelta(days=offset), plan)


def add_current_queue(devices: list[DemoDevice], plan: Plan) -> None:
    """A few patients waiting right now, whatever the hour, so the live queue is not empty."""
    rng = plan.rng
    for device in devices:
        if (device.site, device.name) == SILENT_DEVICE:
            continue
        # Within today in the desk's zone (the live queue shows today's visits), so that at
        # 00:05 the waits are squeezed into the five minutes since midnight.
        midnight, _ = local_day_bounds(plan.now.astimezone(device.zone).date(), device.zone.key)
        since_midnight = plan.now - midnight
        window = min(timedelta(minutes=40 + device.lateness), since_midnight)
        for minutes in sorted(rng.sample(range(1, 40), 3), reverse=True):
            visit_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            at = plan.now - window * (minutes / 40)
            data = {"ticket": f"Q-{rng.randint(1, 999):03d}", "appointment_at": None}
            device.emit("visit.checked_in", at, visit_id, data)


def _day(device: DemoDevice, day: date, plan: Plan) -> None:
    rng, now = plan.rng, plan.now
    factor = WEEKDAY_FACTOR[day.weekday()] * plan.rate
    for hour, per_hour in HOURLY_ARRIVALS.items():
        if day.weekday() == 5 and hour >= 12:
            break  # Saturday mornings only
        expected = per_hour * factor
        load = per_hour / 7
        start = datetime.combine(day, time(hour), tzinfo=device.zone)
        for _ in range(_poisson(expected, rng)):
            arrival = start + timedelta(seconds=rng.uniform(0, 3600))
            if arrival.astimezone(now.tzinfo) < now:
                _visit(device, arrival, load, plan)
                if rng.random() < plan.extra_ratings:
                    _unlinked_rating(device, arrival, plan)
    heartbeat_at = datetime.combine(day, time(18, 5), tzinfo=device.zone)
    if heartbeat_at < now:
        device.emit("device.heartbeat", heartbeat_at, None, {"backlog": 0, "version": VERSION})


def _poisson(expected: float, rng: random.Random) -> int:
    if expected > 30:
        return max(0, round(rng.gauss(expected, math.sqrt(expected))))
    limit, k, product = math.exp(-expected), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _final_heartbeats(devices: list[DemoDevice], now: datetime) -> dict[str, datetime]:
    """Each device's last contact: recent for the desks, three hours ago for the silent one."""
    last_contact = {}
    for device in devices:
        silent = (device.site, device.name) == SILENT_DEVICE
        contact = now - (timedelta(hours=3) if silent else timedelta(seconds=20))
        # desk-2 of Riverside has a clock 95 s behind: the Devices panel shows the skew.
        skew = 95 if (device.site, device.name) == ("Riverside Medical", "desk-2") else 0.4
        backlog = 4 if silent else 0
        device.emit(
            "device.heartbeat",
            contact - timedelta(seconds=skew),
            None,
            {"backlog": backlog, "version": "0.0.9" if silent else VERSION, "rejected": 0},
        )
        last_contact[device.id] = contact
    return last_contact


def write_via_ingest(store: CentralStore, devices: list[DemoDevice], now: datetime) -> int:
    """Send every device's events through the kiosks' ingest path, in batches, in order."""
    last_contact = _final_heartbeats(devices, now)
    total = 0
    for device in devices:
        who = auth.Device(device.id, device.site, device.name)
        events = sorted(device.events, key=lambda e: e["device_seq"])
        for start in range(0, len(events), MAX_BATCH_EVENTS):
            batch = events[start : start + MAX_BATCH_EVENTS]
            received = last_contact[device.id] if start + MAX_BATCH_EVENTS >= len(events) else now
            results = ingest_batch(store, who, batch, received)
            rejected = [r for r in results if r["status"] == "rejected"]
            if rejected:
                raise ValueError(f"demo event rejected: {rejected[0]['reason']}")
            total += len(batch)
    return total


def _bulk_rows(device: DemoDevice, received: str) -> tuple[list, list, list]:
    """Rows for events, visits and ratings as ingest would store them."""
    event_rows, visit_rows, rating_rows = [], [], []
    per_visit: dict[str, list[dict]] = defaultdict(list)
    for event in device.events:
        data_text = json.dumps(event["data"], separators=(",", ":"))
        event_rows.append(
            (
                device.id,
                event["id"],
                event["device_seq"],
                event["type"],
                event["occurred_at"],
                received,
                event["visit_id"],
                data_text,
            )
        )
        if event["type"].startswith("visit."):
            per_visit[event["visit_id"]].append(
                {**event, "device_id": device.id, "data": data_text}
            )
    waits: dict[str, float | None] = {}
    for visit_id, events in per_visit.items():
        state = replay_visit(events)  # the projection's own replay: the same row ingest makes
        wait = None
        if state["called_at"] and not state["voided"]:
            called = datetime.fromisoformat(state["called_at"])
            wait = (called - datetime.fromisoformat(state["checked_in_at"])).total_seconds() / 60
        waits[visit_id] = wait
        visit_rows.append(
            (
                visit_id,
                device.id,
                device.site,
                state["ticket"],
                state["appointment_at"],
                state["checked_in_at"],
                state["called_at"],
                state["checked_out_at"],
                state["cancelled_at"],
                state["cancel_reason"],
                state["status"],
                state["voided"],
                wait,
                *appointment_columns(state).values(),
                received,
            )
        )
    for event in device.events:
        if event["type"] == "rating.submitted":
            data, visit_id = event["data"], event["visit_id"]
            rating_rows.append(
                (
                    event["id"],
                    device.id,
                    device.site,
                    visit_id,
                    "direct" if visit_id else None,
                    data["score"],
                    data["scale"],
                    json.dumps(data["tags"]),
                    int(data["misuse"]),
                    event["occurred_at"],
                    waits.get(visit_id) if visit_id else None,
                )
            )
    return event_rows, visit_rows, rating_rows


# The columns of the rows _bulk_rows makes, per table, in their order.
BULK_COLUMNS = {
    "events": ("device_id", "id", "device_seq", "type", "occurred_at", "received_at",
               "visit_id", "data"),
    "visits": ("id", "device_id", "site", "ticket", "appointment_at", "checked_in_at",
               "called_at", "checked_out_at", "cancelled_at", "cancel_reason", "status",
               "voided", "wait_min", *APPOINTMENT_COLUMNS, "updated_at"),
    "ratings": ("id", "device_id", "site", "visit_id", "link", "score", "scale", "tags",
                "misuse", "occurred_at", "wait_min"),
}


def _insert_rows(conn, event_rows: list, visit_rows: list, rating_rows: list) -> None:
    for (table, columns), rows in zip(BULK_COLUMNS.items(),
                                      (event_rows, visit_rows, rating_rows), strict=True):
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            rows,
        )


def _chunk(devices: list[DemoDevice], received: str) -> tuple[list, list, list]:
    """Every device's pending events as rows (events, visits, ratings); the events are let go."""
    chunk: tuple[list, list, list] = ([], [], [])
    for device in devices:
        for rows, more in zip(chunk, _bulk_rows(device, received), strict=True):
            rows.extend(more)
        device.events.clear()
    return chunk


# A device's last contact as its final heartbeat leaves it (what ingest records).
DEVICE_CONTACT_UPDATE = (
    "UPDATE devices SET last_seen_at = ?, last_heartbeat_at = ?, backlog = ?, "
    "rejected = ?, version = ?, clock_skew_s = ? WHERE id = ?"
)


def bulk_rows(devices: list[DemoDevice], days: int, plan: Plan,
              contacts: list[list]) -> Iterator[tuple[list, list, list]]:
    """The rows ingest would store for ``days`` days ending today, a fortnight at a time (so
    memory holds one fortnight whatever the range), then today's queue and each device's last
    heartbeat. ``contacts`` receives the parameters of :data:`DEVICE_CONTACT_UPDATE` for each
    device once the last rows are made."""
    received = to_rfc3339(plan.now)
    offsets = list(range(days - 1, -1, -1))
    for start in range(0, len(offsets), 14):
        generate(devices, offsets[start : start + 14], plan)
        yield _chunk(devices, received)
    add_current_queue(devices, plan)
    last_contact = _final_heartbeats(devices, plan.now)
    heartbeats = {d.id: d.events[-1] for d in devices}
    yield _chunk(devices, received)
    for device in devices:
        beat, contact = heartbeats[device.id], last_contact[device.id]
        skew = (contact - datetime.fromisoformat(beat["occurred_at"])).total_seconds()
        contacts.append([
            to_rfc3339(contact),
            beat["occurred_at"],
            beat["data"]["backlog"],
            beat["data"].get("rejected"),
            beat["data"]["version"],
            round(skew, 3),
            device.id,
        ])


def write_bulk(store: CentralStore, devices: list[DemoDevice], days: int, plan: Plan) -> int:
    """Generate and insert ``days`` days a fortnight at a time, in one transaction.

    The big page cache keeps the random-UUID primary-key indexes in memory while they grow;
    it is this connection's setting only and is put back afterwards.
    """
    written = 0
    with store.write() as db:
        conn = db.conn
        conn.execute("PRAGMA cache_size = -1000000")  # 1 GB, for this load only
        try:
            contacts: list[list] = []
            for rows in bulk_rows(devices, days, plan, contacts):
                _insert_rows(conn, *rows)
                written += len(rows[0])
            for params in contacts:
                conn.execute(DEVICE_CONTACT_UPDATE, params)
        finally:
            conn.execute("PRAGMA cache_size = -2000")
    conn.execute("ANALYZE")  # so the planner knows the covering indexes are worth using
    return written


def fill(
    store: CentralStore,
    days: int = 28,
    visits: int | None = None,
    ratings: int | None = None,
    now: datetime | None = None,
    seed: int = 7,
) -> dict:
    """Enrol the demo devices and fill ``days`` days ending today.

    ``visits`` scales the arrival rate so about that many visits are made, and ``ratings``
    adds unlinked presses to reach about that many ratings; above 50,000 visits the rows are
    bulk-inserted (see the module docstring). Returns what was written.
    """
    if not 1 <= days <= 3660:
        raise ValueError("days must be between 1 and 3660")
    if visits is not None and visits < 1:
        raise ValueError("visits must be a positive number")
    plan = Plan(now or utc_now(), rng=random.Random(seed))
    random.seed(seed)  # event ids: reproducible demo data
    devices = enrol_devices(store)
    if visits:
        desks = sum(1 for _, desks in SITES.values() for d in desks.values() if d[2] is None)
        morning = sum(n for hour, n in HOURLY_ARRIVALS.items() if hour < 12)
        per_desk_week = sum(
            (morning if weekday == 5 else sum(HOURLY_ARRIVALS.values())) * factor
            for weekday, factor in WEEKDAY_FACTOR.items()
        )
        per_desk_day = per_desk_week / 7
        plan.rate = visits / (desks * days * per_desk_day)
        if ratings:
            # About 0.68 linked ratings per visit (72% of the ~95% checked out).
            plan.extra_ratings = max(0.0, ratings / visits - 0.68)
    bulk = bool(visits and visits > 50_000)
    if bulk:
        events = write_bulk(store, devices, days, plan)
    else:
        generate(devices, list(range(days - 1, -1, -1)), plan)
        add_current_queue(devices, plan)
        events = write_via_ingest(store, devices, plan.now)
    counts = store.db.execute(
        "SELECT (SELECT COUNT(*) FROM visits), (SELECT COUNT(*) FROM ratings)"
    ).fetchone()
    return {"events": events, "visits": counts[0], "ratings": counts[1], "bulk": bulk}
