"""Scale-out: two gunicorn servers with one secret share sessions through PostgreSQL.

Each server is a separate gunicorn process (one with two workers) running the
example portal on 127.0.0.1. A login on the first server must be usable on the
second, and a logout on the second must end the session on the first.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import FAST_HASH, TEST_SECRET, fresh_database_url
from flask_portal_session.credentials import DeveloperStore
from flask_portal_session.migrate import upgrade
from flask_portal_session.store import create_store_engine

ROOT = Path(__file__).resolve().parent.parent
EMAIL = "scale@example.com"
PASSWORD = "scale-out password 1"
COOKIE = "portal_session"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"gunicorn on port {port} did not listen within {timeout} s")


def request(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], list[str]]:
    """Send one request to 127.0.0.1:port; return (status, JSON body, Set-Cookie headers)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}"), response.headers.get_all("Set-Cookie") or []
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body or b"{}"), error.headers.get_all("Set-Cookie") or []


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    url, drop = fresh_database_url("postgresql", tmp_path, "scaleout")
    upgrade(url)
    engine = create_store_engine(url)
    DeveloperStore(engine, **FAST_HASH).create(EMAIL, PASSWORD)
    engine.dispose()
    yield url
    drop()


@pytest.fixture
def two_servers(postgres_url: str, tmp_path: Path) -> Iterator[tuple[int, int]]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    environ.update(
        PORTAL_AUTH="basic-auth",
        PORTAL_SESSION_CONF=json.dumps({"secret": TEST_SECRET, "cookie_secure": False, "cookie_name": COOKIE}),
        PORTAL_SESSION_DATABASE_URI=postgres_url,
        PORTAL_PASSWORD_HASH_CONF=json.dumps(FAST_HASH),
    )
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    processes = []
    ports = []
    for workers in ("1", "2"):
        port = free_port()
        process = subprocess.Popen(
            [
                gunicorn,
                "--chdir",
                str(ROOT / "examples" / "portal"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                workers,
                "--log-level",
                "warning",
                "app:create_app()",
            ],
            env=environ,
            cwd=tmp_path,
        )
        processes.append(process)
        ports.append(port)
    try:
        for port, process in zip(ports, processes):
            wait_until_listening(port, process)
        yield ports[0], ports[1]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_session_moves_between_servers(two_servers: tuple[int, int]) -> None:
    first, second = two_servers
    credentials = base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode("ascii")

    status, body, cookies = request(first, "POST", "/auth", {"Authorization": f"Basic {credentials}"})
    assert status == 200, body
    assert body["developer"]["email"] == EMAIL
    token = next(c.split(";", 1)[0].split("=", 1)[1] for c in cookies if c.startswith(COOKIE + "="))
    cookie_header = {"Cookie": f"{COOKIE}={token}", "Accept": "application/json"}

    for _ in range(4):
        status, body, _ = request(second, "GET", "/session", cookie_header)
        assert status == 200, body
        assert body["developer"]["email"] == EMAIL

    status, body, cookies = request(second, "DELETE", "/auth?session_logout=true", cookie_header)
    assert status == 200
    assert body == {"message": "Logged out"}
    assert any("Max-Age=0" in cookie for cookie in cookies)

    status, body, _ = request(first, "GET", "/session", cookie_header)
    assert status == 401
    assert body == {"message": "Unauthorized"}
