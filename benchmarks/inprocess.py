"""Per-request cost in one process, through the Werkzeug test client.

Each round runs every (contender, scenario) pair once, in a shuffled order,
and times ``requests`` requests of that pair. The reported cost is the median
over rounds of the mean time per request, so a burst of load from another
process spoils one round and not one contender. Statement counts come from a
separate warm-up pass, so the listeners add nothing to the timed requests.
"""

from __future__ import annotations

import gc
import logging
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, event

from flask_portal_session.store import add_statement_listener, remove_statement_listener

from backends import BenchmarkError
from contenders import Contender

logger = logging.getLogger("benchmarks")

#: Scenario keys, in the order the table prints them.
SCENARIOS = ("untouched", "read", "write", "login", "logout")

#: Row labels of the scenarios in the table.
SCENARIO_LABELS = {
    "untouched": "untouched request",
    "read": "authenticated read",
    "write": "session write",
    "login": "login",
    "logout": "logout",
}

#: Requests per (contender, scenario) in the warm-up pass that counts statements.
WARMUP_REQUESTS = 5

#: Cookie sent to the app without sessions: as long as a flask-portal-session cookie.
PLACEHOLDER_COOKIE = "session=" + "A" * 66

Request = tuple[str, str, dict[str, str]]


class StatementCounter:
    """Counts the SQL statements sent on an engine while active.

    Core statements fire SQLAlchemy's ``before_cursor_execute`` event; the
    package's precompiled session lookup does not, and reports through
    ``add_statement_listener`` instead. Transaction control (BEGIN, COMMIT)
    is not counted by either.
    """

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine
        self.count = 0

    def _on_cursor_execute(self, *_args: Any) -> None:
        self.count += 1

    def _on_precompiled(self, _sql: str) -> None:
        self.count += 1

    def __enter__(self) -> StatementCounter:
        if self.engine is not None:
            event.listen(self.engine, "before_cursor_execute", self._on_cursor_execute)
            add_statement_listener(self.engine, self._on_precompiled)
        return self

    def __exit__(self, *_exc: Any) -> None:
        if self.engine is not None:
            event.remove(self.engine, "before_cursor_execute", self._on_cursor_execute)
            remove_statement_listener(self.engine, self._on_precompiled)


@dataclass
class PairResult:
    """Timings and statement count of one contender in one scenario."""

    #: Mean microseconds per request, one value per round.
    rounds_us: list[float] = field(default_factory=list)
    #: SQL statements per request, from the warm-up pass.
    statements: float = 0.0

    @property
    def median_us(self) -> float:
        """Median over rounds of the mean time per request, in microseconds."""
        return statistics.median(self.rounds_us)


class Driver:
    """Sends the scenarios' requests to one contender."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self.client: FlaskClient = contender.app.test_client(use_cookies=False)
        if contender.cookie_name is None:
            # Apps without a session still receive a cookie of the same size,
            # so that every contender gets requests of the same length.
            self.session_cookie = PLACEHOLDER_COOKIE
        else:
            self.session_cookie = self.log_in()

    def log_in(self) -> str:
        """Log in once; return the ``Cookie`` header value of the new session."""
        method, path, headers = self.contender.login_request
        response = self.client.open(path, method=method, headers=headers)
        if response.status_code != 200:
            raise BenchmarkError(
                f"Login on {self.contender.label} returned {response.status_code}: {response.get_data(as_text=True)}"
            )
        return self._cookie_from(response)

    def _cookie_from(self, response: Any) -> str:
        name = self.contender.cookie_name
        for header in response.headers.getlist("Set-Cookie"):
            pair = header.split(";", 1)[0]
            if pair.startswith(f"{name}="):
                return pair
        raise BenchmarkError(f"{self.contender.label} set no {name!r} cookie on login.")

    def _with_session(self) -> dict[str, str]:
        return {"Cookie": self.session_cookie}

    def build_batch(self, scenario: str, count: int) -> list[Request]:
        """Return ``count`` requests of ``scenario``; logouts get a fresh session each."""
        if scenario == "untouched":
            return [("GET", "/plain", self._with_session())] * count
        if scenario == "read":
            return [("GET", "/private", self._with_session())] * count
        if scenario == "write":
            return [("POST", "/note?value=benchmark", self._with_session())] * count
        if scenario == "login":
            method, path, headers = self.contender.login_request
            return [(method, path, headers)] * count
        if scenario == "logout":
            if self.contender.cookie_name is None:
                return [("POST", "/logout", self._with_session())] * count
            return [("POST", "/logout", {"Cookie": self.log_in()}) for _ in range(count)]
        raise ValueError(f"Unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}.")

    def run_batch(self, batch: Sequence[Request]) -> tuple[int, list[int]]:
        """Send ``batch``; return ``(nanoseconds, statuses)``."""
        return time_batch(self.client, batch)

    def check_statuses(self, scenario: str, statuses: list[int]) -> None:
        """Raise when any request of a batch did not return 200."""
        failed = [status for status in statuses if status != 200]
        if failed:
            raise BenchmarkError(
                f"{len(failed)} of {len(statuses)} '{scenario}' requests on {self.contender.label} did not return "
                f"200 (first: {failed[0]}); the scenario does not measure what it claims."
            )

    def check_logout_revokes(self) -> None:
        """Raise when a logged-out cookie still reads the session on a server-side contender."""
        if not self.contender.revocable:
            return
        cookie = self.log_in()
        self.client.post("/logout", headers={"Cookie": cookie})
        status = self.client.get("/private", headers={"Cookie": cookie}).status_code
        if status != 401:
            raise BenchmarkError(f"{self.contender.label}: a logged-out cookie still returned {status}, not 401.")


def time_batch(client: FlaskClient, batch: Sequence[Request]) -> tuple[int, list[int]]:
    """Send ``batch`` with the garbage collector paused; return ``(nanoseconds, statuses)``."""
    open_request = client.open
    statuses: list[int] = []
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter_ns()
        for method, path, headers in batch:
            response = open_request(path, method=method, headers=headers)
            response.get_data()
            statuses.append(response.status_code)
        elapsed = time.perf_counter_ns() - started
    finally:
        gc.enable()
    return elapsed, statuses


def measure_requests(
    contenders: Sequence[Contender],
    rounds: int,
    requests: int,
    rng: random.Random,
    progress: Callable[[str], None],
) -> dict[str, dict[str, PairResult]]:
    """Time every scenario on every contender; return results by contender key and scenario."""
    drivers = [Driver(contender) for contender in contenders]
    results: dict[str, dict[str, PairResult]] = {
        driver.contender.key: {scenario: PairResult() for scenario in SCENARIOS} for driver in drivers
    }

    for driver in drivers:
        driver.check_logout_revokes()
        for scenario in SCENARIOS:
            batch = driver.build_batch(scenario, WARMUP_REQUESTS)
            own_count = driver.contender.count_statements
            before = own_count() if own_count else 0
            with StatementCounter(driver.contender.engine) as counter:
                _elapsed, statuses = driver.run_batch(batch)
            driver.check_statuses(scenario, statuses)
            sent = counter.count + (own_count() - before if own_count else 0)
            results[driver.contender.key][scenario].statements = sent / WARMUP_REQUESTS

    pairs = [(driver, scenario) for driver in drivers for scenario in SCENARIOS]
    for round_number in range(rounds):
        rng.shuffle(pairs)
        for driver, scenario in pairs:
            batch = driver.build_batch(scenario, requests)
            elapsed, statuses = driver.run_batch(batch)
            driver.check_statuses(scenario, statuses)
            results[driver.contender.key][scenario].rounds_us.append(elapsed / 1000 / len(batch))
        progress(f"round {round_number + 1}/{rounds} done")
    return results
