"""Figure 15: how far a streaming replica falls behind during figure 14's burst on PostgreSQL.

Figure 14's PostgreSQL run (1,000 kiosks x 25 events at once, ``--workers 2``, fsync on), with
a real hot standby of the cluster (``tests.support.postgres.PostgresReplica``, made with
``pg_basebackup -R``) given to the store as ``--read-database-url``.

What "lag" means here: how old the replica's view is. A thread samples, every 50 ms, the
primary's ``pg_current_wal_lsn()`` and then the replica's ``pg_last_wal_replay_lsn()``. At a
sample, the lag is the time since the primary's WAL was where the replica's replay is now (0
when the replica has replayed the position read from the primary a moment before); that moment
is interpolated between the two samples of the primary's position around it (the WAL taken to
grow steadily in between, 50 ms or so). The replica's ``pg_last_xact_replay_timestamp()`` is
not used because it also grows while nothing is written. The samples counted are those from the
burst's first request until the replica has caught up after its last answer; the baseline is
the same measure before the burst (the store starting, one kiosk posting alone). The bytes of
WAL the replica was behind are shown for information.
"""

from __future__ import annotations

import threading
import time

import psycopg

from tests.benchmarks import kiosk_burst
from tests.benchmarks.common import median, row
from tests.benchmarks.thousand_kiosks import BATCH, KIOSKS, WORKERS, _run_engine
from tests.support.postgres import PostgresCluster, PostgresReplica

SAMPLE_EVERY_S = 0.05


def lsn_bytes(lsn: str) -> int:
    """A ``pg_lsn`` such as ``0/16B3748`` as a byte position."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class LagSampler(threading.Thread):
    """Samples (time, primary WAL position, replica replay position) until stopped."""

    def __init__(self, primary_url: str, replica_url: str):
        super().__init__(name="replica-lag-sampler", daemon=True)
        self.primary_url, self.replica_url = primary_url, replica_url
        self.samples: list[tuple[float, int, int]] = []
        self.error: BaseException | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            with psycopg.connect(self.primary_url, autocommit=True) as primary, \
                    psycopg.connect(self.replica_url, autocommit=True) as replica:
                while not self._stopping.is_set():
                    written = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
                    replayed = replica.execute(
                        "SELECT pg_last_wal_replay_lsn()::text").fetchone()[0]
                    self.samples.append(
                        (time.monotonic(), lsn_bytes(written), lsn_bytes(replayed)))
                    self._stopping.wait(SAMPLE_EVERY_S)
        except BaseException as error:  # reported by stop(), in the figure's thread
            self.error = error

    def stop(self) -> None:
        self._stopping.set()
        self.join()
        if self.error is not None:
            raise RuntimeError(f"sampling the replica's lag failed: {self.error}")


def lags(samples: list[tuple[float, int, int]]) -> list[tuple[float, float, int]]:
    """(time, lag in seconds, bytes behind) for each sample (the module docstring's measure)."""
    result = []
    for index, (at, written, replayed) in enumerate(samples):
        if replayed >= written:
            result.append((at, 0.0, 0))
            continue
        result.append((at, at - _when_written(samples, index, replayed), written - replayed))
    return result


def _when_written(samples: list[tuple[float, int, int]], index: int, position: int) -> float:
    """When the primary's WAL reached ``position``, as seen from samples up to ``index``: the
    WAL is taken to grow steadily between two samples (linear interpolation)."""
    later = index
    while later > 0 and samples[later - 1][1] > position:
        later -= 1
    if later == 0:
        return samples[0][0]  # before the first sample: the oldest time known
    (t0, w0, _), (t1, w1, _) = samples[later - 1], samples[later]
    return t0 + (t1 - t0) * (position - w0) / (w1 - w0)


def _during(lagged: list[tuple[float, float, int]], burst: kiosk_burst.Burst):
    """The samples from the burst's first request until the replica caught up after it."""
    chosen = []
    for at, lag, behind in lagged:
        if at < burst.began:
            continue
        if at > burst.ended and lag == 0:
            break
        chosen.append((at, lag, behind))
    return chosen


def run(quick: bool) -> list[dict]:
    kiosk_burst.ensure_open_files(KIOSKS)
    rounds = 1 if quick else 2
    with PostgresCluster(durable=True) as cluster, PostgresReplica(cluster) as replica:
        url = cluster.create_database("central")
        replica.wait_caught_up()
        sampler = LagSampler(url, replica.url("central"))
        sampler.start()
        try:
            _alone, bursts, stored = _run_engine(None, url, rounds, WORKERS,
                                                 read_database_url=replica.url("central"))
            replica.wait_caught_up(timeout=60)
            time.sleep(2 * SAMPLE_EVERY_S)  # a last sample or two after it caught up
        finally:
            sampler.stop()
    sent = KIOSKS * BATCH * rounds
    if stored != sent:
        raise RuntimeError(f"sent {sent} events in the bursts; the database holds {stored}")
    lagged = lags(sampler.samples)
    during = [sample for burst in bursts for sample in _during(lagged, burst)]
    before = [lag for at, lag, _ in lagged if at < bursts[0].began]
    if not during or not before:
        raise RuntimeError("the lag was not sampled before and during the burst")
    seconds = [lag for _, lag, _ in during]
    baseline = median(before)
    label = (f"{KIOSKS} kiosks x {BATCH} events at once, {WORKERS} workers, "
             f"{len(seconds)} samples over {rounds} burst{'s' if rounds > 1 else ''}")
    return [
        row(f"15. replica lag during the burst, median ({label})", median(seconds), "s",
            baseline, "(information)", None),
        row(f"15. replica lag during the burst, max ({label})", max(seconds), "s",
            max(before), "(information)", None),
        row(f"15. replica behind during the burst, max ({label})",
            max(b for _, _, b in during) / 1e6, "MB of WAL",
            max(b for at, _, b in lagged if at < bursts[0].began) / 1e6, "(information)", None),
    ]
