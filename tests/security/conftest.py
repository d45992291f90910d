"""Helpers shared by the security tests.

The fixtures of ``tests/conftest.py`` (``make_app``, ``db_url``, ``clock``,
...) run every storage test on SQLite, PostgreSQL and MariaDB. Tests that
need only one backend mark themselves with :func:`only_on`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select
from werkzeug.serving import BaseWSGIServer, make_server

from conftest import basic_header
from flask_portal_session import interface
from flask_portal_session.store import sessions_table

EMAIL = "dev@example.test"
PASSWORD = "correct horse battery staple"
OTHER_EMAIL = "other@example.test"
OTHER_PASSWORD = "another long passphrase"

INVALID = {"message": "Invalid authentication credentials"}


def only_on(*backends: str) -> pytest.MarkDecorator:
    """Run a test on the named backends only (sqlite, postgresql, mariadb).

    It parametrizes the session-scoped ``migrated_url`` fixture indirectly,
    so the test shares the database that the other tests of that backend use.
    """
    return pytest.mark.parametrize("migrated_url", backends, indirect=True)


def add_developer(app: Flask, email: str = EMAIL, password: str = PASSWORD, status: str = "approved") -> Any:
    """Create a developer in the app's built-in store and return it."""
    return app.portal.developers.create(email, password, status=status)  # type: ignore[attr-defined]


def add_api_key(app: Flask, email: str = EMAIL) -> str:
    """Create an API key for ``email`` and return the key."""
    key, _ = app.portal.developers.create_api_key(email)  # type: ignore[attr-defined]
    return key


def session_set_cookies(response: Any, name: str = "session") -> list[str]:
    """Return the response's Set-Cookie headers for the session cookie."""
    return [header for header in response.headers.getlist("Set-Cookie") if header.startswith(f"{name}=")]


def cookie_value(response: Any, name: str = "session") -> str:
    """Return the value of the one session cookie the response sets."""
    headers = session_set_cookies(response, name)
    assert len(headers) == 1, headers
    cookie = SimpleCookie()
    cookie.load(headers[0])
    return cookie[name].value


def is_expiry(header: str) -> bool:
    """Tell whether a Set-Cookie header deletes its cookie."""
    return "Max-Age=0" in header


def cookie_header(*tokens: str, name: str = "session") -> dict[str, str]:
    """Return a raw ``Cookie`` header carrying each token under ``name``, in order."""
    return {"Cookie": "; ".join(f"{name}={token}" for token in tokens)}


def log_in(app: Flask, email: str = EMAIL, password: str = PASSWORD, **headers: str) -> str:
    """Log in with basic-auth and return the new session cookie value."""
    client = app.test_client(use_cookies=False)
    response = client.get("/auth", headers={**basic_header(email, password), **headers})
    assert response.status_code == 200, response.get_data(as_text=True)
    return cookie_value(response)


def session_rows(engine: Engine) -> list[Any]:
    """Return every row of ``portal_sessions``."""
    with engine.connect() as connection:
        return list(connection.execute(select(sessions_table)).all())


def row_count(engine: Engine) -> int:
    """Return the number of rows in ``portal_sessions``."""
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(sessions_table)).scalar_one()


class CountingHasher:
    """Wraps a store's argon2 hasher and counts calls to ``verify``.

    ``delay`` seconds are slept in each call, so that tests of concurrent
    logins see verifications overlap as they would with production cost.
    """

    def __init__(self, hasher: Any, delay: float = 0.0) -> None:
        self._hasher = hasher
        self.delay = delay
        self.verify_calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)

    def verify(self, password_hash: Any, password: Any) -> Any:
        with self._lock:
            self.verify_calls += 1
        if self.delay:
            time.sleep(self.delay)
        return self._hasher.verify(password_hash, password)


def count_verifications(app: Flask, delay: float = 0.0) -> CountingHasher:
    """Replace the app's password hasher by a :class:`CountingHasher` and return it."""
    developers = app.portal.developers  # type: ignore[attr-defined]
    counting = CountingHasher(developers.hasher, delay)
    developers.hasher = counting
    return counting


@pytest.fixture
def tag_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reset the rate limit of the rejected-cookie WARNING, so this test captures the first one."""
    monkeypatch.setattr(interface, "_rejected_tag_log", interface._RateLimitedWarning())


class LiveServer:
    """A threaded Werkzeug server for one app on 127.0.0.1, on a free port."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        # A short poll interval lets shutdown() return quickly at the end of each test.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, name="live-server", daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def live_server() -> Iterator[Any]:
    """Return ``start(app) -> LiveServer``; every server started is stopped after the test."""
    servers: list[LiveServer] = []

    def start(app: Flask) -> LiveServer:
        server = LiveServer(app)
        servers.append(server)
        return server.__enter__()

    yield start
    for server in servers:
        server.__exit__(None, None, None)
