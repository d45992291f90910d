"""Machine facts, the results table and the target lines of the benchmark."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from backends import BACKEND_LABELS
from http_load import HttpResult
from inprocess import SCENARIO_LABELS, SCENARIOS, PairResult
from scale import SMALL_ROWS, ScaleResult

#: Distributions whose versions the report lists.
PACKAGES = (
    "flask-portal-session",
    "Flask",
    "Werkzeug",
    "SQLAlchemy",
    "Flask-Session",
    "Flask-SQLAlchemy",
    "msgspec",
    "cryptography",
    "argon2-cffi",
    "gunicorn",
    "psycopg",
    "PyMySQL",
)

#: Contender keys in column order, with their column headings.
COLUMNS = (
    ("bare", "bare Flask"),
    ("cookie", "Flask cookie"),
    ("flask_session", "Flask-Session"),
    ("flask_session_norefresh", "Flask-Session*"),
    ("floor", "1-query floor"),
    ("portal", "portal-session"),
)

#: The targets, from the package's performance contract.
MAX_READ_VS_BARE = 1.35
MIN_FLASK_SESSION_VS_READ = 8.0
MAX_LARGE_VS_SMALL = 1.3
MAX_CLEANUP_BATCH_SECONDS = 0.5
MIN_HTTP_SHARE_OF_BARE = 0.70


def machine_facts() -> dict[str, Any]:
    """Return the CPU, memory, load, Python and package versions of this run."""
    facts: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "load_average_start": [round(value, 2) for value in os.getloadavg()],
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "packages": {},
    }
    for name in PACKAGES:
        try:
            facts["packages"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            facts["packages"][name] = "not installed"
    return facts


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str:
    folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", folder, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", folder, "status", "--porcelain"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown"
    return f"{commit} (with uncommitted changes)" if dirty else commit


def format_machine(facts: dict[str, Any]) -> str:
    """Return the machine facts as the lines printed above the table."""
    packages = ", ".join(f"{name} {version}" for name, version in facts["packages"].items())
    load = " ".join(str(value) for value in facts["load_average_start"])
    lines = [
        f"date: {facts['date_utc']}; commit: {facts['git_commit']}",
        f"CPU: {facts['cpu_model']}; {facts['cpus']} CPUs ({facts['cpus_usable']} usable); "
        f"memory: {facts['memory_gib']} GiB; load average at start: {load}",
        f"Python: {facts['python']} on {facts['platform']}",
        f"packages: {packages}",
    ]
    servers = facts.get("servers") or {}
    if servers:
        lines.append("databases: " + ", ".join(f"{BACKEND_LABELS[key]} {value}" for key, value in servers.items()))
    if facts.get("wrk"):
        lines.append(f"wrk: {facts['wrk']}")
    return "\n".join(lines)


@dataclass
class Row:
    """One line of the results table."""

    case: str
    database: str
    cells: dict[str, str]
    note: str = ""


def _micro(value: float) -> str:
    return f"{value:,.0f} us"


def _statements(value: float) -> str:
    return f"{value:g}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def request_rows(backend: str, results: dict[str, dict[str, PairResult]]) -> list[Row]:
    """Return the table rows of the in-process section of one backend."""
    rows = []
    for scenario in SCENARIOS:
        cells = {}
        for key, _heading in COLUMNS:
            if key in results:
                pair = results[key][scenario]
                cells[key] = f"{_micro(pair.median_us)} [{_statements(pair.statements)}]"
        notes = []
        portal = results["portal"][scenario].median_us
        notes.append(f"portal {_ratio(portal / results['bare'][scenario].median_us)} bare")
        if "flask_session" in results:
            notes.append(f"Flask-Session {_ratio(results['flask_session'][scenario].median_us / portal)} portal")
        if "flask_session_norefresh" in results:
            notes.append(f"Flask-Session* {_ratio(results['flask_session_norefresh'][scenario].median_us / portal)}")
        if "floor" in results:
            notes.append(f"{portal - results['floor'][scenario].median_us:+,.0f} us over the floor")
        rows.append(Row(SCENARIO_LABELS[scenario], BACKEND_LABELS[backend], cells, ", ".join(notes)))
    return rows


def scale_rows(result: ScaleResult) -> list[Row]:
    """Return the table rows of the scale section of one backend."""
    database = BACKEND_LABELS[result.backend]
    small = result.median_read_us(SMALL_ROWS)
    large = result.median_read_us(result.large_rows)
    longest = max(result.cleanup_batch_seconds) if result.cleanup_batch_seconds else 0.0
    rate = result.cleanup_rows / result.cleanup_seconds if result.cleanup_seconds else 0.0
    loaded = ", loaded in key order (--sorted-keys)" if result.sorted_keys else ""
    return [
        Row(
            f"read, {SMALL_ROWS:,} rows",
            database,
            {"portal": f"{_micro(small)} [{_statements(result.read_statements[SMALL_ROWS])}]"},
        ),
        Row(
            f"read, {result.large_rows:,} rows",
            database,
            {"portal": f"{_micro(large)} [{_statements(result.read_statements[result.large_rows])}]"},
            f"{_ratio(large / small)} the {SMALL_ROWS:,}-row read",
        ),
        Row(
            f"cleanup, {result.cleanup_rows:,} rows",
            database,
            {"portal": f"{result.cleanup_seconds:,.1f} s"},
            f"{len(result.cleanup_batch_seconds)} batches of up to {result.cleanup_batch_size:,}, "
            f"longest {longest * 1000:,.0f} ms, "
            f"{rate:,.0f} rows/s, {result.rows_left} left{loaded}",
        ),
    ]


def http_rows(result: HttpResult) -> list[Row]:
    """Return the table rows of the HTTP section."""
    rows = []
    for workers in result.runs:
        keys = [key for key in ("bare", "floor", "portal") if key in result.runs[workers]]
        rps = {key: result.median_rps(workers, key) for key in keys}
        failed = sum(result.failed_requests(workers, key) for key in keys)
        note = f"portal {rps['portal'] / rps['bare']:.0%} of bare"
        if "floor" in rps:
            note += f", {rps['portal'] / rps['floor']:.0%} of the floor"
        if failed:
            note += f", {failed:,} failed requests"
        rows.append(
            Row(f"HTTP, {workers} workers", result.database, {key: f"{rps[key]:,.0f} req/s" for key in keys}, note)
        )
        p99 = {key: result.median_p99_ms(workers, key) for key in keys}
        rows.append(
            Row(
                f"HTTP p99, {workers} workers",
                result.database,
                {key: f"{p99[key]:,.1f} ms" for key in keys},
                f"portal {_ratio(p99['portal'] / p99['bare'])} bare",
            )
        )
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """Return ``rows`` as one aligned text table, with its legend."""
    headings = ["case", "database"] + [heading for _key, heading in COLUMNS] + ["ratios and notes"]
    lines_cells = [
        [row.case, row.database] + [row.cells.get(key, "-") for key, _heading in COLUMNS] + [row.note] for row in rows
    ]
    widths = [max(len(cells[index]) for cells in [headings, *lines_cells]) for index in range(len(headings))]

    def line(cells: list[str]) -> str:
        left = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
        numbers = [cells[index].rjust(widths[index]) for index in range(2, len(cells) - 1)]
        return "  ".join(left + numbers + [cells[-1]]).rstrip()

    output = [line(headings), line(["-" * width for width in widths])]
    previous_section = None
    for row, cells in zip(rows, lines_cells, strict=True):
        section = (row.database, _section_of(row.case))
        if previous_section is not None and section != previous_section:
            output.append("")
        previous_section = section
        output.append(line(cells))
    return "\n".join(output)


def _section_of(case: str) -> str:
    if case.startswith("HTTP"):
        return "http"
    if case.startswith(("read, ", "cleanup")):
        return "scale"
    return "requests"


@dataclass
class Target:
    """One PASS/MISS line."""

    passed: bool | None
    text: str

    def format(self) -> str:
        """Return the line, with SKIP when the numbers were not measured."""
        if self.passed is None:
            word = "SKIP"
        elif self.passed:
            word = "PASS"
        else:
            word = "MISS"
        return f"{word}  {self.text}"


def evaluate_targets(
    requests: dict[str, dict[str, dict[str, PairResult]]],
    scales: dict[str, ScaleResult],
    http: HttpResult | None,
    full_rows: int,
) -> list[Target]:
    """Compare the measured numbers with the targets; return one line per target and backend."""
    targets = []
    for backend, results in requests.items():
        label = BACKEND_LABELS[backend]
        portal = results["portal"]
        untouched = portal["untouched"].statements
        targets.append(Target(untouched == 0, f"{label}: untouched request issues 0 statements ({untouched:g})"))
        read_statements = portal["read"].statements
        targets.append(
            Target(read_statements == 1, f"{label}: authenticated read issues 1 statement ({read_statements:g})")
        )
        read = portal["read"].median_us
        versus_bare = read / results["bare"]["read"].median_us
        targets.append(
            Target(
                versus_bare <= MAX_READ_VS_BARE,
                f"{label}: authenticated read costs at most {MAX_READ_VS_BARE}x bare Flask ({versus_bare:.2f}x)",
            )
        )
        if "flask_session" in results:
            versus_peer = results["flask_session"]["read"].median_us / read
            targets.append(
                Target(
                    versus_peer >= MIN_FLASK_SESSION_VS_READ,
                    f"{label}: authenticated read at least {MIN_FLASK_SESSION_VS_READ:g}x cheaper than "
                    f"Flask-Session ({versus_peer:.1f}x)",
                )
            )

    if not scales:
        targets.append(Target(None, "read with 1,000,000 rows and cleanup batches (not measured)"))
    for backend, result in scales.items():
        label = BACKEND_LABELS[backend]
        reduced = "" if result.large_rows >= full_rows else f"; only {result.large_rows:,} rows, set --rows {full_rows}"
        ratio = result.median_read_us(result.large_rows) / result.median_read_us(SMALL_ROWS)
        targets.append(
            Target(
                ratio <= MAX_LARGE_VS_SMALL,
                f"{label}: read with {result.large_rows:,} rows within {MAX_LARGE_VS_SMALL}x of "
                f"{SMALL_ROWS:,} rows ({ratio:.2f}x{reduced})",
            )
        )
        longest = max(result.cleanup_batch_seconds, default=0.0)
        complete = result.rows_left == 0 and result.cleanup_rows == result.large_rows
        targets.append(
            Target(
                longest <= MAX_CLEANUP_BATCH_SECONDS and complete,
                f"{label}: no cleanup batch over {MAX_CLEANUP_BATCH_SECONDS} s (longest {longest:.3f} s, "
                f"{result.cleanup_rows:,} deleted, {result.rows_left:,} left{reduced})",
            )
        )

    if http is None:
        targets.append(Target(None, "HTTP throughput at least 70% of bare Flask (not measured)"))
    else:
        for workers in http.runs:
            share = http.median_rps(workers, "portal") / http.median_rps(workers, "bare")
            failed = http.failed_requests(workers, "bare") + http.failed_requests(workers, "portal")
            suffix = f", {failed:,} failed requests" if failed else ""
            targets.append(
                Target(
                    share >= MIN_HTTP_SHARE_OF_BARE and not failed,
                    f"{http.database}, {workers} workers: HTTP throughput at least "
                    f"{MIN_HTTP_SHARE_OF_BARE:.0%} of bare Flask ({share:.0%}{suffix})",
                )
            )
    return targets


def floor_lines(
    requests: dict[str, dict[str, dict[str, PairResult]]],
    http: HttpResult | None,
) -> list[str]:
    """Return one line per database on what the 1-query floor leaves for a session layer.

    A target set relative to bare Flask can only be met when the floor itself
    meets it. These lines show whether it does, and how far this package is
    above the floor.
    """
    lines = []
    for backend, results in requests.items():
        if "floor" not in results:
            continue
        bare = results["bare"]["read"].median_us
        floor = results["floor"]["read"].median_us
        portal = results["portal"]["read"].median_us
        lines.append(
            f"FLOOR  {BACKEND_LABELS[backend]}: bare Flask plus one SELECT costs {floor / bare:.2f}x bare "
            f"(target for the read: {MAX_READ_VS_BARE}x); portal-session costs {portal / floor:.2f}x the floor, "
            f"{portal - floor:+,.0f} us"
        )
    if http is not None:
        for workers, by_key in http.runs.items():
            if "floor" not in by_key:
                continue
            bare = http.median_rps(workers, "bare")
            floor = http.median_rps(workers, "floor")
            portal = http.median_rps(workers, "portal")
            lines.append(
                f"FLOOR  {http.database}, {workers} workers: bare Flask plus one SELECT serves {floor / bare:.0%} "
                f"of bare over HTTP (target: {MIN_HTTP_SHARE_OF_BARE:.0%}); portal-session serves "
                f"{portal / floor:.0%} of the floor"
            )
    return lines
