"""Throughput over HTTP: gunicorn on 127.0.0.1, loaded by wrk.

For each worker count, three gunicorn servers run bare Flask, the 1-query
floor (see floor.py) and this package, on free loopback ports. wrk sends the
authenticated read (``GET /private``, with the session cookie for this
package) to each in turn, in a new order every round. Servers are stopped before this module returns, also on
errors.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from backends import BenchmarkError
from contenders import BENCH_EMAIL, BENCH_PASSWORD, basic_auth_header

logger = logging.getLogger("benchmarks")

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))

#: Seconds to wait for a gunicorn server to respond to its first request.
STARTUP_TIMEOUT = 30.0

#: Seconds a stopping gunicorn gets before it is killed.
STOP_TIMEOUT = 10.0

_DURATION_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def require_wrk() -> str:
    """Return the path of ``wrk``; raise :class:`BenchmarkError` with the install step when missing."""
    path = shutil.which("wrk")
    if path is None:
        raise BenchmarkError(
            "wrk was not found on PATH, and the HTTP benchmark needs it. Install it with "
            "'apt-get install wrk' (Debian and Ubuntu), or run with --skip-http."
        )
    return path


def wrk_version(path: str) -> str:
    """Return the first line ``wrk -v`` prints."""
    completed = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10, check=False)
    output = (completed.stdout or completed.stderr).strip().splitlines()
    return output[0] if output else "unknown"


@dataclass
class WrkRun:
    """Numbers from one wrk run."""

    requests_per_second: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int


@dataclass
class HttpResult:
    """wrk runs by worker count and contender key (``bare``, ``floor`` or ``portal``)."""

    database: str
    duration: int
    connections: int
    runs: dict[int, dict[str, list[WrkRun]]] = field(default_factory=dict)

    def median_rps(self, workers: int, key: str) -> float:
        """Median requests per second over rounds."""
        return statistics.median(run.requests_per_second for run in self.runs[workers][key])

    def median_p99_ms(self, workers: int, key: str) -> float:
        """Median over rounds of the 99th percentile latency, in milliseconds."""
        return statistics.median(run.p99_ms for run in self.runs[workers][key])

    def failed_requests(self, workers: int, key: str) -> int:
        """Socket errors plus non-2xx responses over all rounds."""
        return sum(run.errors + run.non_2xx for run in self.runs[workers][key])

    def to_json(self) -> dict[str, Any]:
        """Return the raw numbers as plain JSON types."""
        return {
            "database": self.database,
            "duration": self.duration,
            "connections": self.connections,
            "runs": {
                str(workers): {key: [vars(run) for run in runs] for key, runs in by_key.items()}
                for workers, by_key in self.runs.items()
            },
        }


def measure_http(
    wrk: str,
    database_url: str,
    database_label: str,
    worker_counts: Sequence[int],
    duration: int,
    connections: int,
    rounds: int,
    rng: random.Random,
    progress: Callable[[str], None],
) -> HttpResult:
    """Run wrk against bare Flask and this package under gunicorn; return the runs."""
    result = HttpResult(database=database_label, duration=duration, connections=connections)
    for workers in worker_counts:
        with (
            _server("bare", workers, database_url) as bare_port,
            _server("floor", workers, database_url) as floor_port,
            _server("portal", workers, database_url) as port,
        ):
            cookie = _log_in(port)
            _check_status(bare_port, {}, "bare Flask")
            _check_status(floor_port, {}, "the 1-query floor")
            _check_status(port, {"Cookie": cookie}, "flask-portal-session")
            targets = {
                "bare": (bare_port, {}),
                "floor": (floor_port, {}),
                "portal": (port, {"Cookie": cookie}),
            }
            runs: dict[str, list[WrkRun]] = {key: [] for key in targets}
            order = list(targets)
            for round_number in range(rounds):
                rng.shuffle(order)
                for key in order:
                    target_port, headers = targets[key]
                    runs[key].append(_run_wrk(wrk, target_port, headers, duration, connections))
                progress(f"HTTP, {workers} workers: round {round_number + 1}/{rounds} done")
            result.runs[workers] = runs
    return result


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _server(kind: str, workers: int, database_url: str) -> Iterator[int]:
    """Run gunicorn with ``workers`` sync workers serving ``kind``; yield its port."""
    port = _free_port()
    environment = dict(os.environ, BENCH_APP=kind, BENCH_DATABASE_URL=database_url)
    log = tempfile.NamedTemporaryFile(prefix=f"gunicorn-{kind}-", suffix=".log", delete=False)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--pythonpath",
        BENCHMARKS_DIR,
        "--log-level",
        "warning",
        "wsgi:app",
    ]
    process = subprocess.Popen(
        command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_until_ready(process, port, log.name)
        yield port
    finally:
        _stop(process)
        log.close()
        os.unlink(log.name)


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, log_path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"gunicorn exited with code {process.returncode} at start:\n{_tail(log_path)}")
        try:
            status = _get(port, "/plain", {})[0]
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchmarkError(
        f"gunicorn did not respond on 127.0.0.1:{port} within {STARTUP_TIMEOUT:.0f} s:\n{_tail(log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        logger.warning(
            "gunicorn (pid %d) did not stop within %.0f s; killing its process group.", process.pid, STOP_TIMEOUT
        )
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def _tail(path: str, lines: int = 20) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


def _get(port: int, path: str, headers: dict[str, str], method: str = "GET") -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        connection.close()


def _log_in(port: int) -> str:
    """Log in over HTTP; return the ``Cookie`` header value of the new session."""
    status, headers = _get(port, "/auth", basic_auth_header(BENCH_EMAIL, BENCH_PASSWORD), method="POST")
    if status != 200:
        raise BenchmarkError(f"Logging in over HTTP returned {status}, not 200.")
    for header in headers.get_all("Set-Cookie") or []:
        pair = header.split(";", 1)[0]
        if pair.startswith("session="):
            return pair
    raise BenchmarkError("Logging in over HTTP set no session cookie.")


def _check_status(port: int, headers: dict[str, str], label: str) -> None:
    status = _get(port, "/private", headers)[0]
    if status != 200:
        raise BenchmarkError(f"GET /private on {label} over HTTP returned {status}, not 200.")


def _run_wrk(wrk: str, port: int, headers: dict[str, str], duration: int, connections: int) -> WrkRun:
    command = [wrk, "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{port}/private")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    if completed.returncode != 0:
        raise BenchmarkError(f"wrk failed with code {completed.returncode}: {completed.stderr.strip()}")
    return parse_wrk(completed.stdout)


def parse_wrk(output: str) -> WrkRun:
    """Parse the text ``wrk --latency`` prints; raise :class:`BenchmarkError` when a field is missing."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in ", output, re.MULTILINE)
    if rps is None or p99 is None or total is None:
        raise BenchmarkError(f"Could not read the wrk output:\n{output}")
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkRun(
        requests_per_second=float(rps.group(1)),
        p99_ms=float(p99.group(1)) * _DURATION_UNITS[p99.group(2)],
        requests=int(total.group(1)),
        errors=sum(int(value) for value in socket_errors.groups()) if socket_errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )
