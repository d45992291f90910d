"""``PortalSession``: the extension object that wires the package into a Flask app."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context, request, session
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import signals
from .config import PortalConfig, SessionConf, load_config
from .credentials import Developer, DeveloperLike, DeveloperStore, LoginResult
from .crypto import KeyRing
from .errors import SessionStoreUnavailable, json_error
from .interface import PortalSessionInterface, ServerSession, describe_store_error
from .store import SessionRow, SessionStore, create_lookup_engine, create_store_engine

__all__ = ["PortalSession", "PortalState"]

logger = logging.getLogger(__name__)

#: Key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "portal_session"

_Hook = TypeVar("_Hook", bound=Callable[..., Any])

#: Largest cleanup batch: each batch deletes its ids in one IN list and one transaction.
MAX_CLEANUP_BATCH = 100_000

#: Smallest batch the cleanup shrinks to when batches run slow.
MIN_CLEANUP_BATCH = 100

#: Duration, in seconds, that the cleanup aims each batch at.
CLEANUP_BATCH_SECONDS = 0.25

#: Rows in the first cleanup batch, which measures the delete rate before larger ones.
CLEANUP_FIRST_BATCH = 500

#: Largest factor by which one cleanup batch grows over the one before.
CLEANUP_MAX_GROWTH = 4


class PortalState:
    """Everything the extension keeps for one Flask app."""

    def __init__(
        self,
        portal: PortalSession,
        app: Flask,
        config: PortalConfig,
        engine: Engine,
        lookup_engine: Engine | None = None,
    ) -> None:
        self.portal = portal
        self.app = app
        self.config = config
        self.session_conf: SessionConf = config.session_conf
        self.engine = engine
        self.keyring = KeyRing(config.session_conf.secret, config.session_conf.secret_fallbacks)
        self.store = SessionStore(engine, lookup_engine=lookup_engine)
        hash_conf = config.password_hash
        self.developers = DeveloperStore(
            engine,
            time_cost=hash_conf.time_cost,
            memory_cost=hash_conf.memory_cost,
            parallelism=hash_conf.parallelism,
            login_attempts=config.login_attempts,
            clock=portal.clock,
            precompile=self.store.precompile,
        )
        self.interface = PortalSessionInterface(self)

    def now(self) -> int:
        """Return the current time in whole epoch seconds from the portal's clock."""
        return int(self.portal.clock())

    def is_row_valid(self, row: SessionRow, now: int) -> bool:
        """Return whether ``row`` is inside its lifetime, absolute and idle timeouts."""
        conf = self.session_conf
        if now >= row.expires_at:
            return False
        if conf.absolute_timeout and now >= row.created_at + conf.absolute_timeout:
            return False
        if conf.cookie_idletime and now >= row.last_seen_at + conf.cookie_idletime:
            return False
        if row.developer_id is not None and self.portal._developer_loader is None:
            # The built-in store: the lookup joined the developer's status.
            return row.developer_status == "approved"
        return True

    def expires_at_for(self, created_at: int, now: int) -> int:
        """Return the expiry of a row written at ``now`` for a session created at ``created_at``."""
        conf = self.session_conf
        expires_at = now + conf.cookie_lifetime
        if conf.absolute_timeout:
            expires_at = min(expires_at, created_at + conf.absolute_timeout)
        return expires_at

    def _resolve_developer(self, server_session: ServerSession) -> DeveloperLike | None:
        developer_id = server_session.developer_id
        if developer_id is None:
            return None

        loader = self.portal._developer_loader
        if loader is not None:
            developer = loader(developer_id)
        else:
            row = server_session._row
            if row is not None and row.developer_id == developer_id and row.developer_email is not None:
                developer = Developer(id=developer_id, email=row.developer_email, status=row.developer_status or "")
            else:
                developer = self.developers.get(developer_id)

        if developer is None or getattr(developer, "status", None) != "approved":
            logger.info("Session of developer %s ended: the developer is missing or not approved.", developer_id)
            server_session.mark_destroyed("destroy")
            return None
        return developer


class PortalSession:
    """Server-side, revocable sessions and developer logins for a Flask app.

    ``PortalSession(app)`` or ``PortalSession()`` then ``init_app(app)``.
    Pass ``engine`` to share an existing SQLAlchemy engine and ``clock`` (a
    function returning epoch seconds) to control time in tests.
    """

    def __init__(
        self,
        app: Flask | None = None,
        engine: Engine | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        #: Returns the current time in epoch seconds; replace it in tests.
        self.clock: Callable[[], float] = clock or time.time
        self._engine = engine
        self._app: Flask | None = None
        self._basic_auth_checker: Callable[[str, str], DeveloperLike | None] | None = None
        self._key_auth_checker: Callable[[str], DeveloperLike | None] | None = None
        self._developer_loader: Callable[[str], DeveloperLike | None] | None = None
        if app is not None:
            self.init_app(app, engine=engine)

    def init_app(self, app: Flask, engine: Engine | None = None) -> None:
        """Validate the app's PORTAL_* config and install sessions, routes and hooks.

        Raises :class:`ConfigError` naming the key, the value and the fix.
        Runs no DDL: create the tables with the shipped migrations.
        """
        config = load_config(app.config, app.instance_path)
        given = engine or self._engine
        engine = given or create_store_engine(config.database_uri)
        # An engine the app passes in keeps its own settings for the lookup too.
        lookup_engine = None if given is not None else create_lookup_engine(engine)
        state = PortalState(self, app, config, engine, lookup_engine)
        app.extensions[EXTENSION_KEY] = state
        app.session_interface = state.interface
        if self._app is None:
            self._app = app

        from .views import register_routes

        app.before_request(functools.partial(_handle_logout_request, state))
        register_routes(app, state)

    # -- hooks ------------------------------------------------------------

    def basic_auth_checker(self, function: _Hook) -> _Hook:
        """Register ``function(email, password) -> developer | None`` in place of the built-in store."""
        self._basic_auth_checker = function
        return function

    def key_auth_checker(self, function: _Hook) -> _Hook:
        """Register ``function(api_key) -> developer | None`` in place of the built-in store."""
        self._key_auth_checker = function
        return function

    def developer_loader(self, function: _Hook) -> _Hook:
        """Register ``function(developer_id) -> developer | None`` to load logged-in developers."""
        self._developer_loader = function
        return function

    # -- session operations -----------------------------------------------

    def login(self, developer: DeveloperLike, method: str = "login") -> None:
        """Start an authenticated session for ``developer`` with a new session id.

        The previous session row is deleted when the response is saved. Raises
        ``ValueError`` when the developer is not approved.
        """
        status = getattr(developer, "status", None)
        if status != "approved":
            raise ValueError(
                f"Developer {developer.id!r} has status {status!r}; only approved developers can log in. "
                "Approve the developer first."
            )
        server_session = _current_server_session()
        server_session.mark_login(str(developer.id))
        server_session._developer = developer
        server_session._developer_resolved = True
        logger.debug("Developer %s logged in with %s.", developer.id, method)
        signals.developer_logged_in.send(current_app._get_current_object(), developer=developer, method=method)

    def logout(self) -> None:
        """Destroy the current session: its row is deleted and its cookie expired."""
        server_session = _current_server_session()
        server_session.load()
        developer_id = server_session.developer_id
        server_session.mark_destroyed("logout")
        logger.debug("Developer %s logged out.", developer_id)
        signals.developer_logged_out.send(current_app._get_current_object(), developer_id=developer_id)

    def revoke_sessions(self, developer_id: Any) -> int:
        """Delete every session of one developer now; return how many were deleted."""
        count = self._state().store.delete_for_developer(str(developer_id))
        logger.info("Revoked %d sessions of developer %s.", count, developer_id)
        return count

    def cleanup(self, batch_size: int = 5000) -> int:
        """Delete expired session rows in batches of at most ``batch_size``; return the total.

        Each batch is its own transaction, so other writers wait at most one
        batch. A cold cache or a large table can make a fixed batch hold its
        locks for seconds. So the first batch is small, and each next one is
        sized from the last one's rate to take about ``CLEANUP_BATCH_SECONDS``,
        between ``MIN_CLEANUP_BATCH`` and ``batch_size`` rows. Rows past only
        their idle timeout stay until their ``expires_at`` passes, because
        they are already rejected on use.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_CLEANUP_BATCH:
            raise ValueError(
                f"Invalid batch_size {batch_size!r}: use a whole number from 1 to {MAX_CLEANUP_BATCH}."
            )
        state = self._state()
        total = 0
        size = min(batch_size, CLEANUP_FIRST_BATCH)
        while True:
            started = time.perf_counter()
            deleted = state.store.delete_expired_batch(state.now(), size)
            elapsed = time.perf_counter() - started
            total += deleted
            logger.debug("Cleanup batch deleted %d rows in %.3f s.", deleted, elapsed)
            if deleted < size:
                return total
            on_target = int(size * CLEANUP_BATCH_SECONDS / elapsed) if elapsed > 0 else size * CLEANUP_MAX_GROWTH
            size = min(batch_size, max(MIN_CLEANUP_BATCH, min(size * CLEANUP_MAX_GROWTH, on_target)))

    def set_developer_status(self, email: str, status: str) -> Developer:
        """Change a built-in developer's status; any status but approved revokes their sessions."""
        state = self._state()
        developer = state.developers.set_status(email, status)
        if status != "approved":
            self.revoke_sessions(developer.id)
        return developer

    def set_developer_password(self, email: str, password: str) -> Developer:
        """Replace a built-in developer's password and revoke their sessions."""
        state = self._state()
        developer = state.developers.set_password(email, password)
        self.revoke_sessions(developer.id)
        return developer

    # -- accessors --------------------------------------------------------

    @property
    def developers(self) -> DeveloperStore:
        """The built-in developer store of the current (or only) app."""
        return self._state().developers

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the current (or only) app."""
        return self._state().engine

    @property
    def config(self) -> PortalConfig:
        """The validated configuration of the current (or only) app."""
        return self._state().config

    def state(self, app: Flask | None = None) -> PortalState:
        """Return the per-app state of ``app``, the current app, or the only app."""
        return self._state(app)

    def check_basic(self, username: str, password: str) -> LoginResult:
        """Check HTTP Basic credentials with the registered checker or the built-in store."""
        if self._basic_auth_checker is not None:
            return _result_from_hook(self._basic_auth_checker(username, password))
        with _store_errors_as_503("checking a password"):
            return self._state().developers.check_password(username, password)

    def check_key(self, key: str) -> LoginResult:
        """Check an API key with the registered checker or the built-in store."""
        if self._key_auth_checker is not None:
            return _result_from_hook(self._key_auth_checker(key))
        with _store_errors_as_503("checking an API key"):
            return self._state().developers.check_api_key(key)

    def _state(self, app: Flask | None = None) -> PortalState:
        if app is None:
            app = current_app._get_current_object() if has_app_context() else self._app
        if app is None or EXTENSION_KEY not in app.extensions:
            raise RuntimeError(
                "PortalSession is not initialised for this app. Call PortalSession(app) or portal.init_app(app) "
                "first, and use the portal inside an app context."
            )
        return app.extensions[EXTENSION_KEY]


@contextlib.contextmanager
def _store_errors_as_503(action: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as error:
        logger.error("The session store failed while %s: %s", action, describe_store_error(error))
        raise SessionStoreUnavailable() from error


def _result_from_hook(developer: DeveloperLike | None) -> LoginResult:
    if developer is None or developer is False:
        return LoginResult("invalid")
    if getattr(developer, "status", None) != "approved":
        return LoginResult("status", developer)
    return LoginResult("ok", developer)


def _current_server_session() -> ServerSession:
    current = session._get_current_object()
    if not isinstance(current, ServerSession):
        raise RuntimeError(
            "flask.session is not a portal session. Call PortalSession.init_app(app) before handling requests, "
            "and do not replace app.session_interface afterwards."
        )
    return current


def _handle_logout_request(state: PortalState) -> Any:
    """Log out on any route, as Kong does, when the request names the logout argument.

    The method must be in ``logout_methods`` and the query string must carry
    ``logout_query_arg`` (or a form body ``logout_post_arg``). A valid session
    is destroyed and the view is not run.
    """
    conf = state.session_conf
    method = request.method
    if method not in conf.logout_methods:
        return None
    asked = conf.logout_query_arg in request.args
    if not asked and method != "GET" and request.mimetype == "application/x-www-form-urlencoded":
        # Cache the raw body first, so a view can still read it with get_data()
        # after the form was parsed here. Multipart bodies (uploads) are not read.
        request.get_data(cache=True, parse_form_data=False)
        asked = conf.logout_post_arg in request.form
    if not asked:
        return None

    server_session = _current_server_session()
    is_auth_route = request.endpoint == "portal_session.auth"
    if not server_session.is_valid and not is_auth_route:
        return None
    state.portal.logout()
    return json_error(200, "Logged out")
