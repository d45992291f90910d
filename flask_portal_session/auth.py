"""HTTP Basic and API-key authentication for the login route, on Flask-HTTPAuth.

Each scheme is a small subclass of a Flask-HTTPAuth class; ``build_login_auth``
combines the configured ones with ``MultiAuth`` in the order of
``PORTAL_AUTH``. The verify callbacks record why a login failed in
``flask.g`` so the error handler can return 401, 401 with the developer's
status, or 429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request
from flask_httpauth import HTTPBasicAuth, HTTPTokenAuth, MultiAuth
from werkzeug.datastructures import Authorization

from . import signals
from .credentials import MAX_API_KEY_LENGTH, LoginResult
from .errors import json_error

if TYPE_CHECKING:
    from .extension import PortalState

__all__ = ["AuthFailure", "build_login_auth", "BASIC_AUTH", "KEY_AUTH"]

logger = logging.getLogger(__name__)

BASIC_AUTH = "basic-auth"
KEY_AUTH = "key-auth"

#: Message for wrong credentials and unknown developers alike.
INVALID_CREDENTIALS = "Invalid authentication credentials"

#: Message when key-auth finds no key in the request.
NO_API_KEY = "No API key found in request"

#: Message when basic-auth finds no credentials in the request.
NO_CREDENTIALS = "Unauthorized"

#: Longest ``Authorization`` header read, in characters; longer ones are rejected unread.
MAX_AUTHORIZATION_LENGTH = 4096


@dataclass(frozen=True)
class AuthFailure:
    """Why a login failed: the status code, the message and extra headers."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


class PortalBasicAuth(HTTPBasicAuth):
    """HTTP Basic with the email as username; other schemes count as no credentials."""

    def get_auth(self) -> Authorization | None:
        header = request.headers.get("Authorization", "")
        if len(header) > MAX_AUTHORIZATION_LENGTH:
            _fail(AuthFailure(401, INVALID_CREDENTIALS), method=BASIC_AUTH, reason="invalid")
            return None
        auth = super().get_auth()
        if auth is None:
            if header:
                _fail(AuthFailure(401, INVALID_CREDENTIALS), method=BASIC_AUTH, reason="invalid")
            return None
        scheme = auth.type.decode("latin-1") if isinstance(auth.type, bytes) else (auth.type or "")
        if scheme.lower() != "basic":
            return None
        return auth


class PortalKeyAuth(HTTPTokenAuth):
    """API keys from the configured header, query and body field names."""

    def __init__(self, state: PortalState) -> None:
        super().__init__(scheme="ApiKey", realm=state.config.auth_conf.realm)
        self._conf = state.config.auth_conf

    def is_compatible_auth(self, headers: Any) -> bool:
        return bool(self._find_keys())

    def get_auth(self) -> Authorization | None:
        keys = self._find_keys()
        if not keys:
            return None
        if len(keys) > 1:
            _fail(
                AuthFailure(401, "Send the API key once: more than one key was found in the request."),
                method=KEY_AUTH,
                reason="invalid",
            )
            return None
        auth = Authorization("apikey")
        auth.token = keys[0]
        return auth

    def _find_keys(self) -> list[str]:
        found: list[str] = []
        conf = self._conf
        for name in conf.key_names:
            if conf.key_in_header:
                found.extend(request.headers.getlist(name))
            if conf.key_in_query:
                found.extend(request.args.getlist(name))
            if conf.key_in_body:
                found.extend(_body_values(name))
        return found


def build_login_auth(state: PortalState) -> tuple[Any, list[str]]:
    """Return ``(auth object, enabled methods)`` for the login route."""
    schemes: list[Any] = []
    realm = state.config.auth_conf.realm
    for method in state.config.auth_methods:
        if method == BASIC_AUTH:
            basic = PortalBasicAuth(realm=realm)
            basic.verify_password(_verify_basic)
            basic.error_handler(_auth_error)
            schemes.append(basic)
        elif method == KEY_AUTH:
            key = PortalKeyAuth(state)
            key.verify_token(_verify_key)
            key.error_handler(_auth_error)
            schemes.append(key)
    if len(schemes) == 1:
        return schemes[0], list(state.config.auth_methods)
    return MultiAuth(*schemes), list(state.config.auth_methods)


def login_failure() -> AuthFailure | None:
    """Return the failure recorded for this request, if any."""
    return g.get("_portal_auth_failure")


def _verify_basic(username: str, password: str) -> Any:
    if login_failure() is not None:
        return None
    if not username and not password:
        _fail(AuthFailure(401, NO_CREDENTIALS), method=BASIC_AUTH, reason="missing")
        return None
    if not username:
        _fail(AuthFailure(401, INVALID_CREDENTIALS), method=BASIC_AUTH, reason="invalid")
        return None
    portal = current_app.extensions["portal_session"].portal
    return _accept(portal.check_basic(username, password), BASIC_AUTH)


def _verify_key(token: str) -> Any:
    if login_failure() is not None:
        return None
    if not token.strip() or len(token) > MAX_API_KEY_LENGTH:
        _fail(AuthFailure(401, INVALID_CREDENTIALS), method=KEY_AUTH, reason="invalid")
        return None
    portal = current_app.extensions["portal_session"].portal
    return _accept(portal.check_key(token.strip()), KEY_AUTH)


def _accept(result: LoginResult, method: str) -> Any:
    if result.outcome == "ok":
        g._portal_auth_method = method
        return result.developer
    if result.outcome == "locked":
        _fail(
            AuthFailure(
                429,
                f"Too many failed logins. The account is locked; try again in {result.retry_after} seconds.",
                (("Retry-After", str(max(1, result.retry_after))),),
            ),
            method=method,
            reason="locked",
        )
    elif result.outcome == "status":
        status = str(getattr(result.developer, "status", "")).upper()
        _fail(AuthFailure(401, f"Unauthorized: Developer status: {status}"), method=method, reason="status")
    else:
        _fail(AuthFailure(401, INVALID_CREDENTIALS), method=method, reason="invalid")
    return None


def _fail(failure: AuthFailure, method: str, reason: str) -> None:
    if login_failure() is not None:
        return
    g._portal_auth_failure = failure
    logger.info("Login failed (%s, %s) from %s.", method, reason, request.remote_addr)
    signals.login_failed.send(current_app._get_current_object(), method=method, reason=reason)


def _auth_error(status: int) -> Any:
    failure = login_failure()
    if failure is None:
        state = current_app.extensions["portal_session"]
        message = NO_API_KEY if KEY_AUTH in state.config.auth_methods else NO_CREDENTIALS
        if BASIC_AUTH in state.config.auth_methods and "Authorization" in request.headers:
            message = NO_CREDENTIALS
        failure = AuthFailure(401, message)
        signals.login_failed.send(current_app._get_current_object(), method="none", reason="missing")
    return json_error(failure.status, failure.message, dict(failure.headers))


def _body_values(name: str) -> list[str]:
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.getlist(name)
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            # silent=True covers invalid JSON but not nesting deeper than the decoder's recursion limit.
            return []
        if isinstance(body, dict) and isinstance(body.get(name), str):
            return [body[name]]
    return []
