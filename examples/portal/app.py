"""A small HTML developer portal built on flask_portal_session.

Run it with ``make demo``, or with ``flask --app examples/portal/app.py run``
after ``python examples/portal/setup_demo.py``. Every setting comes from an
environment variable, and the defaults serve plain HTTP on 127.0.0.1:

PORTAL_AUTH
    Login methods: "basic-auth", "key-auth" or both, comma-separated.
    Default "basic-auth,key-auth".
PORTAL_AUTH_CONF
    Optional JSON object for the Basic realm and where API keys are read from,
    such as {"key_names": ["apikey"]}. Default: the package's defaults.
PORTAL_AUTH_LOGIN_ATTEMPTS
    Consecutive failed logins before an account is locked (0 = off). Default 10.
PORTAL_SESSION_CONF
    JSON object with the session settings, passed to the package unchanged, so
    it must contain "secret". Default: {"secret": <see below>,
    "cookie_secure": false, "cookie_name": "portal_session"}.
PORTAL_SESSION_SECRET
    Secret for the default PORTAL_SESSION_CONF. When it is not set, the demo
    generates a secret once and keeps it in the file ``demo-secret`` (mode
    0600) in the instance folder. Set it in any real deployment.
PORTAL_SESSION_DATABASE_URI
    SQLAlchemy URL of the session and developer store. Default: the package's
    SQLite file ``portal_session.sqlite3`` in the instance folder.
PORTAL_GUI_HOST, PORTAL_GUI_PROTOCOL, PORTAL_API_URL
    Optional host (and scheme, default http) of the portal pages and URL of the
    portal API, as in Kong. With PORTAL_API_URL set, the pages send their login
    and logout calls there.
PORTAL_URL_PREFIX
    Optional path under which /auth and /session are mounted, such as "/portal".
PORTAL_PASSWORD_HASH_CONF
    Optional JSON object with argon2id parameters (time_cost, memory_cost in
    KiB, parallelism). Tests set cheap values here.

PORTAL_LOGIN_VIEW is always "login", so browsers that open a page behind
``login_required`` without a session land on the login page.
"""

from __future__ import annotations

import datetime
import functools
import hmac
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, make_response, redirect, render_template, request, session, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from flask_portal_session import (
    ConfigError,
    CredentialError,
    PortalSession,
    current_developer,
    login_required,
    safe_next_path,
)
from flask_portal_session.credentials import developer_to_dict

logger = logging.getLogger(__name__)

#: The extension object; ``create_app`` initialises it for each app it builds.
portal = PortalSession()

#: Folder of this file: templates/ and static/ live here.
EXAMPLE_ROOT = os.path.dirname(os.path.abspath(__file__))

#: Name of the file in the instance folder that keeps the generated demo secret.
DEMO_SECRET_FILENAME = "demo-secret"

#: Key under which the CSRF token is kept in the server-side session.
CSRF_SESSION_KEY = "csrf_token"

#: Form field and request header that carry the CSRF token of a POST.
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

#: Maximum number of unrevoked API keys per developer.
MAX_ACTIVE_API_KEYS = 20

#: Maximum length of an API key name, the size of the ``name`` column of ``portal_api_keys``.
MAX_API_KEY_NAME_LENGTH = 100

#: Maximum request body in bytes, ample for the portal's small forms.
MAX_CONTENT_LENGTH = 64 * 1024

#: Characters of the session row key shown on the dashboard.
SESSION_PREFIX_LENGTH = 8

_View = TypeVar("_View", bound=Callable[..., Any])


# -- configuration ------------------------------------------------------------


def config_from_environ(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Build the app's PORTAL_* settings from environment variables.

    JSON values are passed to the package as strings, so its own validation
    reports a typo with the setting, line and column. Empty variables count as
    not set.
    """

    def value(name: str) -> str | None:
        text = environ.get(name, "").strip()
        return text or None

    session_conf = value("PORTAL_SESSION_CONF")
    if session_conf is None:
        secret = value("PORTAL_SESSION_SECRET") or load_demo_secret(instance_path)
        session_conf = {"secret": secret, "cookie_secure": False, "cookie_name": "portal_session"}

    config: dict[str, Any] = {
        "PORTAL_AUTH": value("PORTAL_AUTH") or "basic-auth,key-auth",
        "PORTAL_SESSION_CONF": session_conf,
        "PORTAL_LOGIN_VIEW": "login",
    }
    for name in (
        "PORTAL_AUTH_CONF",
        "PORTAL_SESSION_DATABASE_URI",
        "PORTAL_GUI_HOST",
        "PORTAL_GUI_PROTOCOL",
        "PORTAL_API_URL",
        "PORTAL_URL_PREFIX",
        "PORTAL_PASSWORD_HASH_CONF",
    ):
        if value(name) is not None:
            config[name] = value(name)

    attempts = value("PORTAL_AUTH_LOGIN_ATTEMPTS")
    if attempts is not None:
        # A value that is not a whole number goes through unchanged, so the
        # package's ConfigError names the setting and the fix.
        config["PORTAL_AUTH_LOGIN_ATTEMPTS"] = int(attempts) if re.fullmatch(r"-?\d+", attempts) else attempts
    return config


def load_demo_secret(instance_path: str) -> str:
    """Return the demo secret from ``<instance>/demo-secret``, creating it on first use.

    The file is created with mode 0600 and never overwritten: a process that
    loses the race to create it reads the winner's secret, so every worker of
    one demo uses the same secret.
    """
    path = os.path.join(instance_path, DEMO_SECRET_FILENAME)
    os.makedirs(instance_path, exist_ok=True)
    try:
        return _read_demo_secret(path)
    except FileNotFoundError:
        pass

    # Write a private temporary file, then link it into place, which fails
    # instead of replacing a secret that another process created meanwhile.
    secret = secrets.token_urlsafe(32)
    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secret + "\n")
        os.link(temporary, path)
    except FileExistsError:
        return _read_demo_secret(path)
    finally:
        os.unlink(temporary)
    logger.warning(
        "Generated a demo session secret in %s. Set PORTAL_SESSION_SECRET or PORTAL_SESSION_CONF "
        "in any deployment that is not a local demo.",
        path,
    )
    return secret


def _read_demo_secret(path: str) -> str:
    mode = os.stat(path).st_mode
    if mode & 0o077:
        # Readable by group or others: restrict it before using it.
        os.chmod(path, 0o600)
        logger.warning("Restricted %s to mode 0600 because other users could read it.", path)
    with open(path, encoding="ascii") as handle:
        secret = handle.read().strip()
    if not secret:
        raise ConfigError(
            f"The demo secret file {path} is empty. Delete it so that a new secret is generated, "
            "or set PORTAL_SESSION_SECRET."
        )
    return secret


# -- application ---------------------------------------------------------------


def create_app(config: Mapping[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """Build the portal app from environment variables, then ``config`` overrides.

    ``instance_path`` is the folder of the demo secret and the default SQLite
    database. It defaults to ``instance/`` beside this file. Raises
    ``ConfigError`` when a PORTAL_* setting is invalid.
    """
    app = Flask(__name__, root_path=EXAMPLE_ROOT, instance_path=instance_path)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.config.update(config_from_environ(os.environ, app.instance_path))
    app.config.update(config or {})
    portal.init_app(app)

    app.jinja_env.filters["utc"] = format_utc
    app.jinja_env.filters["isotime"] = format_iso
    app.after_request(_add_security_headers)
    app.register_error_handler(HTTPException, _render_http_error)
    app.register_error_handler(SQLAlchemyError, _render_database_error)
    _register_views(app)
    return app


def __getattr__(name: str) -> Flask:
    # The module-level ``app`` that ``flask --app`` and WSGI servers look up is
    # built on first access, so importing this module (as the tests do) neither
    # reads the environment nor writes a demo secret.
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_views(app: Flask) -> None:
    app.add_url_rule("/", "index", index)
    app.add_url_rule("/login", "login", login_page)
    app.add_url_rule("/dashboard", "dashboard", dashboard)
    app.add_url_rule("/dashboard/keys", "create_key", create_key, methods=["POST"])
    app.add_url_rule("/dashboard/keys/<int:key_id>/revoke", "revoke_key", revoke_key, methods=["POST"])
    app.add_url_rule("/dashboard/sessions/revoke", "revoke_sessions", revoke_sessions, methods=["POST"])
    app.add_url_rule("/dashboard/<path:subpath>", "dashboard_subpage", dashboard_subpage)
    app.add_url_rule("/api/me", "api_me", api_me)


# -- helpers --------------------------------------------------------------------


def format_utc(timestamp: int | None) -> str:
    """Format epoch seconds as ``YYYY-MM-DD HH:MM:SS UTC``, and ``None`` as an empty string."""
    if timestamp is None:
        return ""
    moment = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_iso(timestamp: int) -> str:
    """Format epoch seconds as an ISO 8601 UTC time for ``<time datetime>``."""
    moment = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def wants_json() -> bool:
    """Return whether the client asked for JSON rather than an HTML page."""
    if request.headers.get("X-Requested-With", "").lower() == "xmlhttprequest":
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def no_store(view: _View) -> _View:
    """Mark the view's responses ``Cache-Control: no-store``, so Back after logout shows no private data."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        response = make_response(view(*args, **kwargs))
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
        return response

    return wrapped  # type: ignore[return-value]


def csrf_token() -> str:
    """Return this session's CSRF token, storing a new one on first use."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def csrf_protected(view: _View) -> _View:
    """Reject a POST with 403 unless it carries this session's CSRF token.

    The token comes from the ``csrf_token`` form field or the ``X-CSRF-Token``
    header and is compared in constant time. The SameSite cookie attribute
    blocks most cross-site requests too, but older browsers and
    ``cookie_samesite: "off"`` setups do not have that protection.
    """

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        expected = session.get(CSRF_SESSION_KEY)
        sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FORM_FIELD)
        if (
            not isinstance(expected, str)
            or not expected
            or not sent
            or not hmac.compare_digest(expected.encode("utf-8"), sent.encode("utf-8"))
        ):
            logger.info("Rejected a dashboard POST to %s without a valid CSRF token.", request.path)
            return error_response(
                403, "The form is missing a valid CSRF token. Reload the dashboard and try again."
            )
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def error_response(status: int, message: str) -> Any:
    """Return ``{"message": ...}`` to JSON clients and a short HTML page to browsers."""
    if wants_json():
        response = jsonify(message=message)
    else:
        response = make_response(render_template("error.html", status=status, message=message))
    response.status_code = status
    return response


def api_origin() -> str | None:
    """Return the scheme and host of PORTAL_API_URL, or ``None`` when the API is this app."""
    api_url = portal.config.api_url
    if not api_url:
        return None
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}"


def auth_base_url() -> str:
    """Return the URL that ``/auth`` and ``/session`` are relative to, without a trailing slash.

    That is PORTAL_API_URL when set, else this app, with PORTAL_URL_PREFIX added.
    """
    base = (portal.config.api_url or "").rstrip("/")
    return base + portal.config.url_prefix


def key_transport() -> tuple[str, str] | None:
    """Return ``(location, name)`` where the login page sends an API key, or ``None``.

    The location is "header" or "body". The query string is never used, because
    keys in URLs end up in access logs.
    """
    conf = portal.config.auth_conf
    if conf.key_in_header:
        return "header", conf.key_names[0]
    if conf.key_in_body:
        return "body", conf.key_names[0]
    return None


def api_key_to_dict(record: Any) -> dict[str, Any]:
    """Return the fields of an API key record that its owner may see."""
    return {
        "id": record.id,
        "prefix": record.prefix,
        "name": record.name,
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
    }


def list_api_keys() -> list[dict[str, Any]]:
    """Return the current developer's API keys, oldest first."""
    return [api_key_to_dict(record) for record in portal.developers.list_api_keys(current_developer.id)]


def list_sessions() -> list[dict[str, Any]]:
    """Return the current developer's live sessions, oldest first.

    A row that was replaced by a renewal is left out: it is the predecessor of
    another listed session and expires within the discard window.
    """
    state = portal.state()
    current_key = session.row.key if session.row is not None else None
    rows = state.store.list_sessions(current_developer.id, now=state.now())
    return [
        {
            "prefix": row.key[:SESSION_PREFIX_LENGTH],
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "current": row.key == current_key,
        }
        for row in rows
        if row.replaced_by is None
    ]


def render_dashboard(status: int = 200, new_key: str | None = None, message: str | None = None) -> Any:
    """Render the dashboard page for the current developer."""
    page = render_template(
        "dashboard.html",
        developer=current_developer,
        api_keys=list_api_keys(),
        sessions=list_sessions(),
        session_row=session.row,
        csrf_token=csrf_token(),
        new_key=new_key,
        message=message,
        auth_base_url=auth_base_url(),
        logout_query_arg=portal.config.session_conf.logout_query_arg,
        logout_post_arg=portal.config.session_conf.logout_post_arg,
        logout_method="DELETE" if "DELETE" in portal.config.session_conf.logout_methods else "POST",
        max_active_keys=MAX_ACTIVE_API_KEYS,
    )
    return page, status


# -- views ------------------------------------------------------------------------


def index() -> Any:
    """Send visitors to the dashboard, which sends anonymous ones on to the login page."""
    return redirect(url_for("dashboard"))


def login_page() -> Any:
    """Render the login form, whose script calls ``/auth`` and then opens ``next``."""
    next_path = safe_next_path(request.args.get("next"), default=url_for("dashboard"))
    signed_in = current_developer.email if getattr(session, "is_authenticated", False) else None
    return render_template(
        "login.html",
        auth_methods=portal.config.auth_methods,
        auth_base_url=auth_base_url(),
        key_transport=key_transport(),
        next_path=next_path,
        expired=request.args.get("expired") == "1",
        signed_in=signed_in,
    )


@login_required
@no_store
def dashboard() -> Any:
    """List the developer's API keys and sessions, with forms to manage them."""
    return render_dashboard()


@login_required
@no_store
def dashboard_subpage(subpath: str) -> Any:
    """Send a GET to an action URL (such as a login redirect's ``next``) to the dashboard."""
    return redirect(url_for("dashboard"), code=303)


@login_required
@no_store
@csrf_protected
def create_key() -> Any:
    """Create an API key for the current developer and show it once."""
    name = request.form.get("name", "").strip() or None
    if name is not None:
        if len(name) > MAX_API_KEY_NAME_LENGTH:
            return _action_error(400, f"The key name is longer than {MAX_API_KEY_NAME_LENGTH} characters.")
        if not name.isprintable():
            return _action_error(400, "The key name contains control characters. Use plain text.")

    active = [record for record in list_api_keys() if record["revoked_at"] is None]
    if len(active) >= MAX_ACTIVE_API_KEYS:
        return _action_error(
            409,
            f"You already have {MAX_ACTIVE_API_KEYS} active API keys, the most this portal allows. "
            "Revoke one before creating another.",
        )

    try:
        key, record = portal.developers.create_api_key(current_developer.email, name=name)
    except CredentialError as error:
        return _action_error(400, str(error))
    logger.info("Developer %s created API key %s.", current_developer.id, record.id)

    if wants_json():
        return jsonify(key=key, api_key=api_key_to_dict(record), api_keys=list_api_keys()), 201
    return render_dashboard(new_key=key)


@login_required
@no_store
@csrf_protected
def revoke_key(key_id: int) -> Any:
    """Revoke one of the current developer's API keys."""
    if not portal.developers.revoke_api_key(key_id, developer_id=current_developer.id):
        return _action_error(404, "No active API key with this id belongs to you. Reload the dashboard.")
    logger.info("Developer %s revoked API key %s.", current_developer.id, key_id)
    if wants_json():
        return jsonify(message="API key revoked", api_keys=list_api_keys())
    return redirect(url_for("dashboard"), code=303)


@login_required
@no_store
@csrf_protected
def revoke_sessions() -> Any:
    """Revoke the developer's other sessions (``scope=others``) or all of them (``scope=all``)."""
    scope = request.form.get("scope", "")
    if scope not in ("others", "all"):
        return _action_error(400, 'The field "scope" must be "others" or "all".')

    developer_id = current_developer.id
    if scope == "all":
        count = portal.revoke_sessions(developer_id)
        portal.logout()
        if wants_json():
            return jsonify(message=f"Logged out {_sessions_text(count)}, including this one.", revoked=count)
        return redirect(url_for("login"), code=303)

    state = portal.state()
    current = session.row
    keep = {current.key} if current is not None else set()
    rows = state.store.list_sessions(developer_id)
    # The predecessor of this session (replaced by a renewal) stays until its
    # discard window ends, so other tabs still holding the old cookie keep working.
    doomed = [row.key for row in rows if row.key not in keep and row.replaced_by not in keep]
    count = state.store.delete(doomed)
    logger.info("Developer %s revoked %d other sessions.", developer_id, count)
    if wants_json():
        message = f"Logged out {_sessions_text(count, 'other ')}."
        return jsonify(message=message, revoked=count, sessions=list_sessions())
    return redirect(url_for("dashboard"), code=303)


@login_required
@no_store
def api_me() -> Any:
    """Return the developer and when the session expires."""
    conf = portal.config.session_conf
    row = session.row
    now = portal.state().now()
    absolute_expires = row.created_at + conf.absolute_timeout if conf.absolute_timeout else None
    return jsonify(
        developer=developer_to_dict(current_developer),
        session={
            "expires": row.expires_at,
            "expires_in": max(0, row.expires_at - now),
            "absolute_expires": absolute_expires,
        },
    )


def _sessions_text(count: int, adjective: str = "") -> str:
    return f"{count} {adjective}session" + ("" if count == 1 else "s")


def _action_error(status: int, message: str) -> Any:
    if wants_json():
        return jsonify(message=message), status
    return render_dashboard(status=status, message=message)


# -- response hooks --------------------------------------------------------------


def _add_security_headers(response: Response) -> Response:
    """Allow scripts, styles and forms from this app and the portal API only."""
    extra = api_origin()
    sources = "'self'" + (f" {extra}" if extra else "")
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; connect-src {sources}; form-action {sources}; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _render_http_error(error: HTTPException) -> Any:
    """Return HTTP errors (404, 405, 413, ...) as JSON or as a short HTML page."""
    response = error_response(error.code or 500, error.description or error.name)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _render_database_error(error: SQLAlchemyError) -> Any:
    """Return 503 when a dashboard query fails, as the package does for session reads."""
    logger.error("A portal database query for %s failed: %s", request.path, type(error).__name__)
    response = error_response(503, "The portal database is unavailable. Try again in a moment.")
    response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    return response
