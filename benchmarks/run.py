"""Measure flask-portal-session against bare Flask and its peers; print one table.

Run ``python benchmarks/run.py --help`` for the options, and see
docs/benchmarks.md for what each number means. Every number in the table is
measured in this run, with rounds alternated between the contenders.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from flask_portal_session.migrate import upgrade

from backends import BACKEND_LABELS, BenchmarkError, DatabaseFactory, check_server_url
from contenders import (
    CHEAP_PASSWORD_HASH,
    Contender,
    bare_contender,
    build_portal_app,
    cookie_contender,
    ensure_developer,
    flask_session_contender,
    portal_contender,
)
from floor import floor_contender, prepare_floor_database
from http_load import HttpResult, measure_http, require_wrk, wrk_version
from inprocess import SCENARIOS, PairResult, measure_requests
from report import (
    Row,
    evaluate_targets,
    floor_lines,
    format_machine,
    format_table,
    http_rows,
    machine_facts,
    request_rows,
    scale_rows,
)
from scale import DEFAULT_CLEANUP_BATCH_SIZE, ScaleResult, measure_scale

logger = logging.getLogger("benchmarks")

#: Rows in the large table of the scale section unless --rows sets another count.
FULL_ROWS = 1_000_000

#: Settings of a full run and of --quick.
FULL = {"rounds": 9, "requests": 300, "rows": FULL_ROWS, "http_duration": 10, "http_rounds": 3}
QUICK = {"rounds": 3, "requests": 30, "rows": 20_000, "http_duration": 2, "http_rounds": 1}


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; the defaults of unset options depend on --quick."""
    parser = argparse.ArgumentParser(
        description="Measure flask-portal-session against bare Flask, Flask's cookie session and Flask-Session.",
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    parser.add_argument("--skip-http", action="store_true", help="skip the gunicorn and wrk section")
    parser.add_argument("--skip-scale", action="store_true", help="skip the large-table reads and the cleanup")
    parser.add_argument(
        "--rows", type=int, help=f"rows in the large table (default {FULL_ROWS:,}; {QUICK['rows']:,} with --quick)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers to FILE as JSON")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("BENCH_POSTGRES_URL") or None,
        help="PostgreSQL server URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test "
        "(default: $BENCH_POSTGRES_URL; unset skips PostgreSQL)",
    )
    parser.add_argument(
        "--mariadb",
        metavar="URL",
        default=os.environ.get("BENCH_MARIADB_URL") or None,
        help="MariaDB server URL, e.g. mysql+pymysql://root@127.0.0.1:3306/test "
        "(default: $BENCH_MARIADB_URL; unset skips MariaDB)",
    )
    parser.add_argument(
        "--rounds", type=int, help="timed rounds per contender and scenario (default 9; 3 with --quick)"
    )
    parser.add_argument("--requests", type=int, help="requests per round (default 300; 30 with --quick)")
    parser.add_argument(
        "--http-duration", type=int, help="seconds of each wrk run (default 10; 2 with --quick)"
    )
    parser.add_argument("--http-rounds", type=int, help="wrk runs per server (default 3; 1 with --quick)")
    parser.add_argument("--http-connections", type=int, default=8, help="open connections per wrk run (default 8)")
    parser.add_argument(
        "--http-workers", default="2,4", help="comma-separated gunicorn worker counts (default 2,4)"
    )
    parser.add_argument(
        "--cleanup-batch",
        type=int,
        default=DEFAULT_CLEANUP_BATCH_SIZE,
        help=f"rows per portal.cleanup() batch (default {DEFAULT_CLEANUP_BATCH_SIZE:,}, the package default)",
    )
    parser.add_argument(
        "--sorted-keys",
        action="store_true",
        help="load the large table in key order: several times faster, but with fuller index pages than "
        "real traffic leaves, which flatters the cleanup times",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the shuffled order and the filler rows")
    arguments = parser.parse_args(argv)

    defaults = QUICK if arguments.quick else FULL
    for name, value in defaults.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, value)
    for name in ("rounds", "requests", "http_duration", "http_rounds", "http_connections", "cleanup_batch"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, not {getattr(arguments, name)}")
    if arguments.rows <= 1_000:
        parser.error(f"--rows must be more than 1,000 (the small table's size), not {arguments.rows}")
    try:
        arguments.http_workers = [int(part) for part in arguments.http_workers.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--http-workers must be comma-separated whole numbers, not {arguments.http_workers!r}")
    if not arguments.http_workers or min(arguments.http_workers) < 1:
        parser.error("--http-workers needs at least one worker count of 1 or more")
    for option, backend in (("postgres", "postgresql"), ("mariadb", "mariadb")):
        url = getattr(arguments, option)
        if url is not None:
            problem = check_server_url(url, backend)
            if problem:
                parser.error(f"--{option} (or BENCH_{option.upper()}_URL) {problem}")
    return arguments


def progress(message: str) -> None:
    """Print a progress line to standard error, so standard output keeps only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _stop_on_sigterm(_signal_number: int, _frame: Any) -> None:
    # Raising here runs the finally blocks that stop servers and drop databases.
    raise SystemExit(143)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The apps turn cookie_secure off on purpose, because the benchmark uses plain HTTP.
    logging.getLogger("flask_portal_session.config").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    servers = {"postgresql": arguments.postgres, "mariadb": arguments.mariadb}
    servers = {backend: url for backend, url in servers.items() if url}
    backends = ["sqlite", *servers]
    facts = machine_facts()
    wrk = None
    if not arguments.skip_http:
        try:
            wrk = require_wrk()
        except BenchmarkError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        facts["wrk"] = wrk_version(wrk)

    factory = DatabaseFactory(servers)
    failures: list[str] = []
    scales: dict[str, ScaleResult] = {}
    http = None
    try:
        try:
            facts["servers"] = {backend: factory.server_version(backend) for backend in backends}
            print(format_machine(facts), flush=True)
            rng = random.Random(arguments.seed)
            requests = run_request_section(factory, backends, arguments, rng)
        except BenchmarkError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

        # A failure in a later section still prints what was measured before it.
        if not arguments.skip_scale:
            for backend in backends:
                progress(f"{BACKEND_LABELS[backend]}: scale with {arguments.rows:,} rows")
                try:
                    scales[backend] = measure_scale(
                        factory,
                        backend,
                        arguments.rows,
                        arguments.rounds,
                        arguments.requests,
                        rng,
                        progress,
                        cleanup_batch_size=arguments.cleanup_batch,
                        sorted_keys=arguments.sorted_keys,
                    )
                except BenchmarkError as error:
                    failures.append(f"{BACKEND_LABELS[backend]} scale: {error}")
        if wrk is not None:
            try:
                http = run_http_section(factory, wrk, arguments, rng)
            except BenchmarkError as error:
                failures.append(f"HTTP: {error}")
    finally:
        factory.drop_all()

    facts["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    print_report(arguments, facts, requests, scales, http)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 2 if failures else 0


def run_request_section(
    factory: DatabaseFactory, backends: list[str], arguments: argparse.Namespace, rng: random.Random
) -> dict[str, dict[str, dict[str, PairResult]]]:
    """Time the five scenarios on every contender, one backend at a time."""
    results = {}
    for backend in backends:
        progress(f"{BACKEND_LABELS[backend]}: per-request costs, {arguments.rounds} rounds of {arguments.requests}")
        portal_url = factory.create(backend, "portal")
        upgrade(portal_url)
        contenders: list[Contender] = []
        try:
            contenders.append(bare_contender())
            contenders.append(cookie_contender())
            contenders.append(flask_session_contender(factory.create(backend, "flask_session")))
            contenders.append(flask_session_contender(factory.create(backend, "flask_session_nr"), False))
            floor_url = factory.create(backend, "floor")
            upgrade(floor_url)
            contenders.append(floor_contender(floor_url))
            contenders.append(portal_contender(portal_url))
            results[backend] = measure_requests(
                contenders, arguments.rounds, arguments.requests, rng, lambda text: progress(f"  {text}")
            )
        finally:
            for contender in contenders:
                contender.close()
    return results


def run_http_section(
    factory: DatabaseFactory, wrk: str, arguments: argparse.Namespace, rng: random.Random
) -> HttpResult:
    """Load gunicorn servers with wrk, on PostgreSQL when given and SQLite otherwise."""
    backend = "postgresql" if "postgresql" in factory.servers else "sqlite"
    url = factory.create(backend, "http")
    upgrade(url)
    app, portal = build_portal_app(url)
    try:
        ensure_developer(app, portal)
    finally:
        portal.engine.dispose()
    prepare_floor_database(url)
    progress(
        f"HTTP on {BACKEND_LABELS[backend]}: workers {arguments.http_workers}, {arguments.http_duration} s per run"
    )
    return measure_http(
        wrk,
        url,
        BACKEND_LABELS[backend],
        arguments.http_workers,
        arguments.http_duration,
        arguments.http_connections,
        arguments.http_rounds,
        rng,
        progress,
    )


def print_report(
    arguments: argparse.Namespace,
    facts: dict[str, Any],
    requests: dict[str, dict[str, dict[str, PairResult]]],
    scales: dict[str, ScaleResult],
    http: HttpResult | None,
) -> None:
    """Print the table, its legend and the targets; write the JSON file when asked."""
    rows: list[Row] = []
    for backend, results in requests.items():
        rows.extend(request_rows(backend, results))
    for result in scales.values():
        rows.extend(scale_rows(result))
    if http is not None:
        rows.extend(http_rows(http))

    hash_conf = ", ".join(f"{name}={value}" for name, value in CHEAP_PASSWORD_HASH.items())
    print()
    if arguments.quick:
        print("QUICK RUN: small counts, for a smoke test; do not quote these numbers.")
    print(
        f"Per-request times: median over {arguments.rounds} rounds of the mean of {arguments.requests} requests "
        "(Werkzeug test client, one process). [n] = SQL statements per request, BEGIN and COMMIT not counted."
    )
    print(
        f"Logins: portal-session checks HTTP Basic credentials with cheap argon2id parameters ({hash_conf}; "
        "memory in KiB), so a login costs far less than in production; the peers only set a user id "
        "in the session. Flask-Session* is Flask-Session with SESSION_REFRESH_EACH_REQUEST=False. "
        "1-query floor is bare Flask plus the one SQL statement each case needs at least, sent on a kept "
        "DBAPI connection: the cost of the database alone."
    )
    if http is not None:
        print(
            f"HTTP: gunicorn sync workers and wrk (1 thread, {http.connections} connections, {http.duration} s per "
            f"run, median of {arguments.http_rounds}) on 127.0.0.1, GET /private with the session cookie."
        )
    print()
    print(format_table(rows))
    print()
    load = " ".join(str(value) for value in facts["load_average_end"])
    print(f"load average at end: {load}")
    print()
    targets = evaluate_targets(requests, scales, http, FULL_ROWS)
    if arguments.quick:
        print("QUICK RUN: the timing verdicts below come from too few requests to judge; rerun without --quick.")
    for target in targets:
        print(target.format())
    print()
    for line in floor_lines(requests, http):
        print(line)

    if arguments.json:
        document = {
            "machine": facts,
            "options": {key: value for key, value in vars(arguments).items() if key not in ("postgres", "mariadb")},
            "requests": {
                backend: {
                    key: {
                        scenario: {
                            "median_us": pair.median_us,
                            "rounds_us": pair.rounds_us,
                            "statements": pair.statements,
                        }
                        for scenario, pair in by_scenario.items()
                    }
                    for key, by_scenario in results.items()
                }
                for backend, results in requests.items()
            },
            "scale": {backend: result.to_json() for backend, result in scales.items()},
            "http": http.to_json() if http is not None else None,
            "targets": [{"passed": target.passed, "text": target.text} for target in targets],
            "scenarios": list(SCENARIOS),
        }
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
        progress(f"raw numbers written to {arguments.json}")


if __name__ == "__main__":
    sys.exit(main())
