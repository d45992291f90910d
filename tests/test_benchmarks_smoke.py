"""Smoke test of benchmarks/run.py: it runs on SQLite and prints its table.

The benchmark's timings are not checked here: they depend on the machine
and its load. This only proves that the script runs end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN_SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.mark.slow
def test_quick_benchmark_prints_table(tmp_path: Path) -> None:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("BENCH_POSTGRES_URL", "BENCH_MARIADB_URL")
    }
    json_path = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, str(RUN_SCRIPT), "--quick", "--skip-http", "--skip-scale", "--json", str(json_path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    output = completed.stdout
    assert "case" in output
    assert "bare Flask" in output
    assert "Flask-Session" in output
    assert "portal-session" in output
    assert "1-query floor" in output
    assert "FLOOR  SQLite: bare Flask plus one SELECT costs" in output
    for label in ("untouched request", "authenticated read", "session write", "login", "logout"):
        assert label in output, label
    assert "SQLite" in output
    assert "PostgreSQL" not in output
    assert "untouched request issues 0 statements" in output
    assert "SKIP  HTTP throughput" in output
    assert json_path.is_file()
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document["requests"]["sqlite"]["floor"]["read"]["statements"] == 1
    assert document["requests"]["sqlite"]["floor"]["untouched"]["statements"] == 0


@pytest.mark.parametrize(
    ("option", "url", "message"),
    [
        ("--mariadb", "notaurl", "is not a database URL"),
        ("--postgres", "mysql+pymysql://root:hidden@127.0.0.1:3306/test", "names the 'mysql' dialect"),
        ("--mariadb", "postgresql+psycopg://postgres@127.0.0.1:5432/test", "names the 'postgresql' dialect"),
    ],
)
def test_benchmark_rejects_wrong_server_url(option: str, url: str, message: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(RUN_SCRIPT), "--quick", "--skip-http", option, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 2
    assert message in completed.stderr
    assert "hidden" not in completed.stderr
    assert "Traceback" not in completed.stderr
