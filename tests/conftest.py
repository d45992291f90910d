"""Shared fixtures: real databases, migrated once per run, and small portal apps.

Storage tests run on SQLite always, and on PostgreSQL and MariaDB when
``PORTAL_SESSION_TEST_POSTGRES_URL`` and ``PORTAL_SESSION_TEST_MARIADB_URL``
are set. A URL that is set but unreachable fails the run instead of skipping,
so CI cannot pass without both servers.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, delete, event, text
from sqlalchemy.engine import make_url

from flask_portal_session import PortalSession
from flask_portal_session.migrate import upgrade
from flask_portal_session.store import (
    add_statement_listener,
    api_keys_table,
    create_store_engine,
    developers_table,
    remove_statement_listener,
    sessions_table,
)

POSTGRES_ENV = "PORTAL_SESSION_TEST_POSTGRES_URL"
MARIADB_ENV = "PORTAL_SESSION_TEST_MARIADB_URL"
BACKENDS = ("sqlite", "postgresql", "mariadb")

#: A 32-character test secret; tests that check warnings use their own.
TEST_SECRET = "test-secret-0123456789-abcdefghij"

#: Cheap argon2 parameters so tests do not spend seconds hashing.
FAST_HASH = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class FakeClock:
    """A settable clock for the portal: ``clock()`` returns ``now``."""

    def __init__(self, now: float = 1_800_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def server_url(backend: str) -> str | None:
    """Return the base URL of a database server from the environment, if set."""
    if backend == "postgresql":
        return os.environ.get(POSTGRES_ENV) or None
    if backend == "mariadb":
        return os.environ.get(MARIADB_ENV) or None
    return None


def create_database(backend: str, name: str) -> str:
    """Create an empty database ``name`` on the server of ``backend``; return its URL."""
    base = server_url(backend)
    assert base is not None
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
                connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    finally:
        admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def drop_database(backend: str, name: str) -> None:
    """Drop a database made by :func:`create_database`."""
    base = server_url(backend)
    if base is None:
        return
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


def fresh_database_url(backend: str, tmp_path: Any, label: str) -> tuple[str, Callable[[], None]]:
    """Return ``(url, drop)`` for a new empty database of ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / (label + '.sqlite3')}", lambda: None
    if server_url(backend) is None:
        env = POSTGRES_ENV if backend == "postgresql" else MARIADB_ENV
        if os.environ.get("PORTAL_SESSION_REQUIRE_DATABASES"):
            pytest.fail(f"{env} is not set, and PORTAL_SESSION_REQUIRE_DATABASES requires every backend")
        pytest.skip(f"{env} is not set; set it to run the {backend} tests (.ci/run always does)")
    name = f"fps_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_database(backend, name)
    return url, lambda: drop_database(backend, name)


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of each backend, upgraded to the newest migration once per run."""
    backend = request.param
    url, drop = fresh_database_url(backend, tmp_path_factory.mktemp(backend), "shared")
    upgrade(url)
    yield url
    drop()


@pytest.fixture
def db_url(migrated_url: str) -> str:
    """The migrated database of one backend, emptied before the test."""
    engine = create_store_engine(migrated_url)
    try:
        with engine.begin() as connection:
            connection.execute(delete(api_keys_table))
            connection.execute(delete(sessions_table))
            connection.execute(delete(developers_table))
    finally:
        engine.dispose()
    return migrated_url


@pytest.fixture
def backend(db_url: str) -> str:
    """The name of the backend under test: sqlite, postgresql or mariadb."""
    name = make_url(db_url).get_backend_name()
    return "mariadb" if name in ("mysql", "mariadb") else name


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the emptied database."""
    engine = create_store_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand."""
    return FakeClock()


@pytest.fixture
def make_app(db_url: str, clock: FakeClock, tmp_path: Any) -> Iterator[Callable[..., Flask]]:
    """Return ``make_app(session_conf=None, **config)`` building a small portal app.

    The app logs in with basic-auth and key-auth, uses the fake clock, and has
    ``/private`` (login required), ``/put`` (stores ``request.args`` in the
    session), ``/get`` (returns the session) and ``/plain`` (no session).
    """
    engines: list[Engine] = []

    def build(session_conf: dict[str, Any] | None = None, **config: Any) -> Flask:
        from flask import jsonify, request, session

        from flask_portal_session import current_developer, login_required

        app = Flask(__name__, instance_path=str(tmp_path / "instance"))
        conf: dict[str, Any] = {"secret": TEST_SECRET, "cookie_secure": False}
        conf.update(session_conf or {})
        app.config.update(
            TESTING=True,
            PORTAL_AUTH=["basic-auth", "key-auth"],
            PORTAL_SESSION_CONF=conf,
            PORTAL_SESSION_DATABASE_URI=db_url,
            PORTAL_PASSWORD_HASH_CONF=FAST_HASH,
        )
        app.config.update(config)
        portal = PortalSession(app, clock=clock)
        engines.append(portal.engine)
        app.portal = portal  # type: ignore[attr-defined]

        @app.get("/private")
        @login_required
        def private() -> Any:
            return jsonify(email=current_developer.email, data=dict(session))

        @app.route("/put", methods=["GET", "POST"])
        def put() -> Any:
            for key, value in request.args.items():
                session[key] = value
            return jsonify(ok=True)

        @app.get("/get")
        def get() -> Any:
            return jsonify(dict(session))

        @app.get("/plain")
        def plain() -> Any:
            return jsonify(plain=True)

        return app

    yield build
    for engine in engines:
        engine.dispose()


def basic_header(email: str, password: str) -> dict[str, str]:
    """Return an ``Authorization: Basic`` header for ``email`` and ``password``."""
    token = base64.b64encode(f"{email}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class StatementCounter:
    """Counts SQL statements sent through an engine while active."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def _record_sql(self, statement: str) -> None:
        self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._record)
        add_statement_listener(self.engine, self._record_sql)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)
        remove_statement_listener(self.engine, self._record_sql)

    @property
    def count(self) -> int:
        return len(self.statements)
