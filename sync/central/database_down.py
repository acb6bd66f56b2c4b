"""PostgreSQL out of reach (restarting, failed over, the network to it cut): answered 503.

On PostgreSQL the database is a server of its own, and it can go away while the central
store keeps running. Nothing of a request that met it is kept (a transaction whose connection
dies is rolled back by the server; one whose COMMIT was sent but not answered may have
committed, and the kiosk's resend is then answered ``duplicate``), so the kiosk may simply
send again: the answer is 503 with ``Retry-After`` and a sentence, never a 500 with a trace.
The store itself needs no restart: the pool checks a connection before handing it out and
each thread replaces a broken one (``storage.CentralStore._thread_connection``).
"""

from __future__ import annotations

RETRY_AFTER_S = 5
SENTENCE = (
    "The central store cannot reach its database right now: nothing of this request was "
    "stored. The kiosk keeps its events and sends them again "
    f"(retry in {RETRY_AFTER_S} s); if this lasts, check that PostgreSQL is running."
)


def is_database_unreachable(error: BaseException) -> bool:
    """True for a lost or refused PostgreSQL connection (or a pool that could hand out
    none in time), found in ``error``'s chain of causes; SQLite's errors never are."""
    try:
        import psycopg
    except ImportError:  # SQLite-only installs
        return False
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, psycopg.OperationalError):
            return True
        current = current.__cause__ or current.__context__
    return False
