"""Session lookups with 1,000 and with many rows, and cleanup of many expired rows.

Two databases of one backend are filled: the small one contains 1,000 valid
sessions, the large one the same 1,000 plus filler rows up to the requested
total. The reads go through the app to ``GET /private`` and cycle through
the 1,000 cookies in a shuffled order, so they hit keys spread over the
whole index instead of one cached row. Rounds alternate between the two
databases. Afterwards the clock is moved past every expiry and
``portal.cleanup()`` deletes the large table, with each batch timed.
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text

from flask_portal_session import PortalSession
from flask_portal_session.interface import new_session_keys, seal_data
from flask_portal_session.migrate import upgrade
from flask_portal_session.store import sessions_table

from backends import BenchmarkError, BulkSessionInserter, DatabaseFactory
from contenders import build_portal_app, ensure_developer
from inprocess import StatementCounter, time_batch

logger = logging.getLogger("benchmarks")

#: Valid sessions in both databases. The small database contains only these.
SMALL_ROWS = 1_000

#: Rows per cleanup batch, the default of ``PortalSession.cleanup``.
DEFAULT_CLEANUP_BATCH_SIZE = 5_000

#: Bytes in a filler row's data column, about the size of a small sealed session.
FILLER_DATA_BYTES = 90

#: Distinct developer ids spread over the filler rows.
FILLER_DEVELOPERS = 10_000


class FixedClock:
    """A clock that returns ``now`` until it is moved."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class ScaleResult:
    """Lookup timings at two table sizes and the cleanup of the large table."""

    backend: str
    large_rows: int
    cleanup_batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE
    sorted_keys: bool = False
    insert_seconds: float = 0.0
    #: Mean microseconds per read, one value per round, by table size.
    read_rounds_us: dict[int, list[float]] = field(default_factory=dict)
    #: SQL statements per read, by table size.
    read_statements: dict[int, float] = field(default_factory=dict)
    cleanup_batch_seconds: list[float] = field(default_factory=list)
    cleanup_rows: int = 0
    cleanup_seconds: float = 0.0
    rows_left: int = 0

    def median_read_us(self, rows: int) -> float:
        """Median over rounds of the mean read time at ``rows`` rows, in microseconds."""
        return statistics.median(self.read_rounds_us[rows])

    def to_json(self) -> dict[str, Any]:
        """Return the raw numbers as plain JSON types."""
        return {
            "backend": self.backend,
            "large_rows": self.large_rows,
            "cleanup_batch_size": self.cleanup_batch_size,
            "sorted_keys": self.sorted_keys,
            "insert_seconds": self.insert_seconds,
            "read_rounds_us": {str(rows): values for rows, values in self.read_rounds_us.items()},
            "read_statements": {str(rows): value for rows, value in self.read_statements.items()},
            "cleanup_batch_seconds": self.cleanup_batch_seconds,
            "cleanup_rows": self.cleanup_rows,
            "cleanup_seconds": self.cleanup_seconds,
            "rows_left": self.rows_left,
        }


def measure_scale(
    factory: DatabaseFactory,
    backend: str,
    large_rows: int,
    rounds: int,
    requests: int,
    rng: random.Random,
    progress: Callable[[str], None],
    cleanup_batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE,
    sorted_keys: bool = False,
) -> ScaleResult:
    """Fill two databases of ``backend``, time reads on both, then clean up the large one."""
    if large_rows <= SMALL_ROWS:
        raise ValueError(f"Invalid row count {large_rows}: use more than {SMALL_ROWS:,} rows.")
    result = ScaleResult(
        backend=backend, large_rows=large_rows, cleanup_batch_size=cleanup_batch_size, sorted_keys=sorted_keys
    )
    start_time = int(time.time())
    clock = FixedClock(start_time + 1)

    apps = {}
    for rows in (SMALL_ROWS, large_rows):
        url = factory.create(backend, f"scale{rows}")
        upgrade(url)
        app, portal = build_portal_app(url, clock=clock)
        developer_id = ensure_developer(app, portal)
        apps[rows] = (app, portal, developer_id)

    try:
        cookies = _insert_valid_sessions(apps, start_time)
        progress(f"inserting {large_rows - SMALL_ROWS:,} filler rows")
        app, portal, _developer_id = apps[large_rows]
        started = time.perf_counter()
        inserter = BulkSessionInserter(portal.engine)
        inserter.insert(_filler_rows(large_rows - SMALL_ROWS, start_time, rng, sorted_keys))
        result.insert_seconds = time.perf_counter() - started
        progress(
            f"inserted {large_rows - SMALL_ROWS:,} rows in {result.insert_seconds:.1f} s "
            f"({(large_rows - SMALL_ROWS) / result.insert_seconds:,.0f} rows/s)"
        )
        if backend == "postgresql":
            # Autovacuum would collect statistics soon after a load this size.
            with portal.engine.connect() as connection:
                connection.execute(text("ANALYZE portal_sessions"))

        _measure_reads(apps, cookies, result, rounds, requests, rng)
        progress("reads at both table sizes done; cleaning up")
        clock.now = start_time + 10 * 365 * 86400
        _measure_cleanup(app, portal, result)
    finally:
        for _app, each_portal, _developer in apps.values():
            each_portal.engine.dispose()
    return result


def _insert_valid_sessions(apps: dict[int, tuple[Any, PortalSession, str]], start_time: int) -> list[str]:
    """Insert the same 1,000 valid sessions into both databases; return their Cookie headers."""
    first_app, first_portal, _developer_id = next(iter(apps.values()))
    state = first_portal.state(first_app)
    sealed = []
    for _ in range(SMALL_ROWS):
        session_id, key = new_session_keys()
        blob, key_id = seal_data(state, {"note": "benchmark"}, key)
        sealed.append((session_id, key, blob, key_id))

    for _app, portal, developer_id in apps.values():
        rows = (
            {
                "id": key,
                "developer_id": developer_id,
                "data": blob,
                "key_id": key_id,
                "created_at": start_time,
                "expires_at": start_time + 3600,
                "last_seen_at": start_time,
                "replaced_by": None,
            }
            for _session_id, key, blob, key_id in sealed
        )
        BulkSessionInserter(portal.engine).insert(rows)

    name = state.session_conf.cookie_name
    return [f"{name}={state.keyring.encode_token(session_id)}" for session_id, _key, _blob, _key_id in sealed]


def _filler_rows(count: int, start_time: int, rng: random.Random, sorted_keys: bool) -> Iterator[dict[str, Any]]:
    """Yield ``count`` unexpired rows with random keys, as other users' sessions would be.

    By default the keys come in random order, as real logins insert them.
    With ``sorted_keys`` each key is drawn at random from its own slice of
    the 256-bit key space, so the keys are spread as evenly but come in
    ascending order. The load then appends to the primary key index and runs
    several times faster on MariaDB. It also leaves fuller index pages than
    real traffic, which makes the cleanup faster than it would be.
    """
    developers = [rng.randbytes(16).hex() for _ in range(FILLER_DEVELOPERS)]
    slice_size = 2**256 // count
    for index in range(count):
        if sorted_keys:
            key = f"{index * slice_size + rng.randrange(slice_size):064x}"
        else:
            key = rng.randbytes(32).hex()
        yield {
            "id": key,
            "developer_id": developers[index % FILLER_DEVELOPERS] if index % 4 else None,
            "data": rng.randbytes(FILLER_DATA_BYTES),
            "key_id": "0000000000000000",
            "created_at": start_time - (index % 3600),
            "expires_at": start_time + 3600 - (index % 3600) + 60,
            "last_seen_at": start_time,
            "replaced_by": None,
        }


def _measure_reads(
    apps: dict[int, tuple[Any, PortalSession, str]],
    cookies: list[str],
    result: ScaleResult,
    rounds: int,
    requests: int,
    rng: random.Random,
) -> None:
    clients = {rows: app.test_client(use_cookies=False) for rows, (app, _portal, _dev) in apps.items()}
    for rows, (_app, portal, _developer_id) in apps.items():
        result.read_rounds_us[rows] = []
        client = clients[rows]
        with StatementCounter(portal.engine) as counter:
            for cookie in cookies[:5]:
                status = client.get("/private", headers={"Cookie": cookie}).status_code
                if status != 200:
                    raise BenchmarkError(f"A seeded session returned {status} on the {rows:,}-row table, not 200.")
        result.read_statements[rows] = counter.count / 5
        # Read every seeded session once, so that the timed rounds compare
        # cached lookups rather than the first reads from disk.
        time_batch(client, [("GET", "/private", {"Cookie": cookie}) for cookie in cookies])

    order = list(apps)
    for _round in range(rounds):
        picked = [cookies[rng.randrange(len(cookies))] for _ in range(requests)]
        batch = [("GET", "/private", {"Cookie": cookie}) for cookie in picked]
        rng.shuffle(order)
        for rows in order:
            elapsed, statuses = time_batch(clients[rows], batch)
            bad = [status for status in statuses if status != 200]
            if bad:
                raise BenchmarkError(
                    f"{len(bad)} reads on the {rows:,}-row table did not return 200 (first: {bad[0]})."
                )
            result.read_rounds_us[rows].append(elapsed / 1000 / len(batch))


def _measure_cleanup(app: Any, portal: PortalSession, result: ScaleResult) -> None:
    """Run ``portal.cleanup()`` on the large table, timing every batch."""
    state = portal.state(app)
    store = state.store
    original = store.delete_expired_batch

    def timed_batch(now: int, limit: int) -> int:
        started = time.perf_counter()
        deleted = original(now, limit)
        result.cleanup_batch_seconds.append(time.perf_counter() - started)
        return deleted

    store.delete_expired_batch = timed_batch  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        with app.app_context():
            result.cleanup_rows = portal.cleanup(batch_size=result.cleanup_batch_size)
        result.cleanup_seconds = time.perf_counter() - started
    finally:
        del store.delete_expired_batch

    with portal.engine.connect() as connection:
        result.rows_left = connection.execute(select(func.count()).select_from(sessions_table)).scalar_one()
