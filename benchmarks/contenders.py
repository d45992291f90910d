"""The Flask apps that the benchmark compares, one factory per contender.

Every app serves the same five routes, so a scenario sends the same request
to each of them:

``GET /plain``
    does not touch the session.
``GET /private``
    an authenticated read: 401 without a logged-in session.
``POST /note?value=...``
    stores one value in the session.
``POST /login``
    the peers' login, which only sets a user id in the session, because
    neither peer has a password store. This package logs in at ``POST /auth``
    with HTTP Basic credentials instead (see :attr:`Contender.login_request`).
``POST /logout``
    ends the session.

The bare Flask app has no session at all: its views do the same work minus
the session access, which makes it the floor for the others.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request, session
from sqlalchemy import Engine

from flask_portal_session import PortalSession, current_developer, login_required

#: Secret of every benchmark app; the apps only ever run on 127.0.0.1.
BENCH_SECRET = "benchmark-secret-0123456789-abcdefghij"

#: The developer that every benchmark login uses.
BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "bench-password-0123"

#: The user id that the peers' logins store in the session.
PEER_USER_ID = "developer-1"

#: Cheap argon2id parameters, so that a login measures the session layer and
#: not the deliberately slow password hash (memory_cost is in KiB).
CHEAP_PASSWORD_HASH = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@dataclass
class Contender:
    """One app under test and how to drive it."""

    #: Short key used in JSON output and on the command line.
    key: str
    #: Column heading in the printed table.
    label: str
    app: Flask
    #: Engine whose statements are counted, or ``None`` when the app has no database.
    engine: Engine | None = None
    #: ``(method, path, headers)`` of a request that logs in.
    login_request: tuple[str, str, dict[str, str]] = ("POST", "/login", {})
    #: Name of the session cookie, or ``None`` when the app sets no cookie.
    cookie_name: str | None = "session"
    #: Whether a logged-out cookie stops working (true for server-side sessions).
    revocable: bool = False
    #: Called once at the end to close connection pools.
    close: Callable[[], None] = field(default=lambda: None)
    #: Returns the statements the app has sent so far, for apps whose raw DBAPI
    #: calls fire no SQLAlchemy events; ``None`` counts them on ``engine``.
    count_statements: Callable[[], int] | None = None


def basic_auth_header(email: str, password: str) -> dict[str, str]:
    """Return an ``Authorization: Basic`` header for ``email`` and ``password``."""
    token = base64.b64encode(f"{email}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def build_bare_app() -> Flask:
    """Build the app without any session: the floor that the others are compared with."""
    app = Flask(__name__, instance_path=tempfile.gettempdir())

    @app.get("/plain")
    def plain() -> Any:
        return jsonify(plain=True)

    @app.get("/private")
    def private() -> Any:
        return jsonify(user=PEER_USER_ID, note=None)

    @app.post("/note")
    def note() -> Any:
        request.args.get("value", "")
        return jsonify(ok=True)

    @app.post("/login")
    def login() -> Any:
        return jsonify(user=PEER_USER_ID)

    @app.post("/logout")
    def logout() -> Any:
        return jsonify(message="Logged out")

    return app


def _add_peer_routes(app: Flask) -> None:
    """Add the routes of the session-based peers (Flask's cookie session and Flask-Session)."""

    @app.get("/plain")
    def plain() -> Any:
        return jsonify(plain=True)

    @app.get("/private")
    def private() -> Any:
        user = session.get("user_id")
        if user is None:
            return jsonify(message="Unauthorized"), 401
        return jsonify(user=user, note=session.get("note"))

    @app.post("/note")
    def note() -> Any:
        session["note"] = request.args.get("value", "")
        return jsonify(ok=True)

    @app.post("/login")
    def login() -> Any:
        session["user_id"] = PEER_USER_ID
        return jsonify(user=PEER_USER_ID)

    @app.post("/logout")
    def logout() -> Any:
        session.clear()
        return jsonify(message="Logged out")


def build_cookie_app() -> Flask:
    """Build an app on Flask's own signed-cookie session."""
    app = Flask(__name__, instance_path=tempfile.gettempdir())
    app.config["SECRET_KEY"] = BENCH_SECRET
    _add_peer_routes(app)
    return app


def build_flask_session_app(url: str, refresh_each_request: bool = True) -> tuple[Flask, Engine, Callable[[], None]]:
    """Build an app on Flask-Session's SQLAlchemy backend; return ``(app, engine, close)``.

    ``refresh_each_request`` sets Flask's ``SESSION_REFRESH_EACH_REQUEST``,
    which defaults to true: Flask-Session then writes the row back on every
    request that has a session, to push its expiry forward.
    """
    from flask_session import Session
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__, instance_path=tempfile.gettempdir())
    app.config.update(
        SECRET_KEY=BENCH_SECRET,
        SQLALCHEMY_DATABASE_URI=url,
        SESSION_TYPE="sqlalchemy",
        SESSION_REFRESH_EACH_REQUEST=refresh_each_request,
    )
    database = SQLAlchemy(app)
    app.config["SESSION_SQLALCHEMY"] = database
    Session(app)
    _add_peer_routes(app)

    with app.app_context():
        engine = database.engine

    def close() -> None:
        with app.app_context():
            for bind_engine in database.engines.values():
                bind_engine.dispose()

    return app, engine, close


def build_portal_app(url: str, clock: Callable[[], float] | None = None) -> tuple[Flask, PortalSession]:
    """Build an app on this package with basic-auth logins; return ``(app, portal)``.

    The cookie is not marked Secure because the benchmark uses plain HTTP.
    The database at ``url`` must already be migrated.
    """
    app = Flask(__name__, instance_path=tempfile.gettempdir())
    app.config.update(
        PORTAL_AUTH="basic-auth",
        PORTAL_SESSION_CONF={"secret": BENCH_SECRET, "cookie_secure": False},
        PORTAL_SESSION_DATABASE_URI=url,
        PORTAL_PASSWORD_HASH_CONF=CHEAP_PASSWORD_HASH,
    )
    portal = PortalSession(app, clock=clock)

    @app.get("/plain")
    def plain() -> Any:
        return jsonify(plain=True)

    @app.get("/private")
    @login_required
    def private() -> Any:
        return jsonify(user=current_developer.id, note=session.get("note"))

    @app.post("/note")
    def note() -> Any:
        session["note"] = request.args.get("value", "")
        return jsonify(ok=True)

    @app.post("/logout")
    def logout() -> Any:
        portal.logout()
        return jsonify(message="Logged out")

    return app, portal


def ensure_developer(app: Flask, portal: PortalSession) -> str:
    """Create the benchmark developer unless it exists; return its id."""
    with app.app_context():
        existing = portal.developers.get_by_email(BENCH_EMAIL)
        if existing is not None:
            return str(existing.id)
        return str(portal.developers.create(BENCH_EMAIL, BENCH_PASSWORD).id)


def portal_contender(url: str) -> Contender:
    """Build this package's contender on the migrated database at ``url``."""
    app, portal = build_portal_app(url)
    ensure_developer(app, portal)
    return Contender(
        key="portal",
        label="flask-portal-session",
        app=app,
        engine=portal.engine,
        login_request=("POST", "/auth", basic_auth_header(BENCH_EMAIL, BENCH_PASSWORD)),
        revocable=True,
        close=portal.engine.dispose,
    )


def flask_session_contender(url: str, refresh_each_request: bool = True) -> Contender:
    """Build a Flask-Session contender on the database at ``url``."""
    app, engine, close = build_flask_session_app(url, refresh_each_request)
    if refresh_each_request:
        key, label = "flask_session", "Flask-Session"
    else:
        key, label = "flask_session_norefresh", "Flask-Session*"
    return Contender(key=key, label=label, app=app, engine=engine, revocable=True, close=close)


def bare_contender() -> Contender:
    """Build the bare Flask contender."""
    return Contender(key="bare", label="bare Flask", app=build_bare_app(), cookie_name=None)


def cookie_contender() -> Contender:
    """Build the Flask cookie-session contender."""
    return Contender(key="cookie", label="Flask cookie", app=build_cookie_app())
