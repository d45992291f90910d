"""The ``/auth`` and ``/session`` routes, and CORS for the portal GUI's origin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, session

from .auth import BASIC_AUTH, build_login_auth
from .credentials import developer_to_dict
from .errors import json_error

if TYPE_CHECKING:
    from .extension import PortalState

__all__ = ["register_routes", "BLUEPRINT_NAME"]

#: Name of the blueprint; its endpoints are ``portal_session.auth`` and ``portal_session.session``.
BLUEPRINT_NAME = "portal_session"

#: Request headers the portal GUI may send to the auth routes across origins.
_CORS_BASE_HEADERS = ("Authorization", "Content-Type", "X-Requested-With")

#: Methods the auth routes accept only to return a JSON 405 response.
_OTHER_METHODS = ("PUT", "PATCH")

#: How long a browser may cache a CORS preflight response, in seconds.
_CORS_MAX_AGE = 600


def register_routes(app: Flask, state: PortalState) -> None:
    """Mount ``/auth`` and ``/session`` under ``PORTAL_URL_PREFIX``."""
    blueprint = Blueprint(BLUEPRINT_NAME, __name__)
    login_auth, methods = build_login_auth(state)

    @login_auth.login_required
    def _login() -> Any:
        developer = login_auth.current_user()
        state.portal.login(developer, method=g.get("_portal_auth_method", "login"))
        return jsonify(developer=developer_to_dict(developer))

    @blueprint.route("/auth", methods=["GET", "POST", "DELETE", *_OTHER_METHODS])
    def auth() -> Any:
        """Log in with the configured method(s); ``DELETE`` logs out."""
        if request.method in _OTHER_METHODS:
            return _method_not_allowed("GET, POST, DELETE, OPTIONS")
        if request.method == "DELETE":
            if "DELETE" not in state.session_conf.logout_methods:
                return json_error(
                    405,
                    "Logging out with DELETE is disabled. Use one of the methods in logout_methods: "
                    + ", ".join(state.session_conf.logout_methods),
                )
            state.portal.logout()
            return json_error(200, "Logged out")
        response = current_app.make_response(_login())
        _set_authenticate_header(response, state, methods)
        return response

    @blueprint.route("/session", methods=["GET", "POST", "DELETE", *_OTHER_METHODS])
    def session_info() -> Any:
        """Describe the current session; 401 without a valid, logged-in session."""
        if request.method != "GET":
            return _method_not_allowed("GET, HEAD, OPTIONS")
        server_session = session
        if not getattr(server_session, "is_authenticated", False):
            return json_error(401, "Unauthorized")
        developer = server_session.developer
        row = server_session.row
        conf = state.session_conf
        now = state.now()
        absolute_expires = row.created_at + conf.absolute_timeout if conf.absolute_timeout else None
        response = jsonify(
            developer=developer_to_dict(developer),
            session={
                "expires": row.expires_at,
                "expires_in": max(0, row.expires_at - now),
                "lifetime": conf.cookie_lifetime,
                "renew": conf.cookie_renew,
                "idletime": conf.cookie_idletime,
                "discard": conf.cookie_discard,
                "absolute_expires": absolute_expires,
            },
        )
        # The response is private to this developer: keep it out of shared and browser caches.
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.after_request
    def _cors(response: Response) -> Response:
        _add_cors_headers(response, state)
        return response

    app.register_blueprint(blueprint, url_prefix=state.config.url_prefix or None)


def _method_not_allowed(allowed: str) -> Any:
    # Routed here instead of left to Werkzeug, whose 405 page is HTML.
    response = json_error(405, f"Method {request.method} is not allowed here. Use one of: {allowed}.")
    response.headers["Allow"] = allowed
    return response


def _set_authenticate_header(response: Response, state: PortalState, methods: list[str]) -> None:
    """Keep ``WWW-Authenticate: Basic`` only on 401 answers where a browser dialog is wanted.

    Scripts that send ``X-Requested-With: XMLHttpRequest`` (as the example
    portal does) get no challenge, so the browser shows no password dialog of
    its own over the page's login form.
    """
    wants_challenge = (
        response.status_code == 401
        and BASIC_AUTH in methods
        and request.headers.get("X-Requested-With", "").lower() != "xmlhttprequest"
    )
    if wants_challenge:
        realm = state.config.auth_conf.realm
        response.headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
    else:
        response.headers.pop("WWW-Authenticate", None)


def _add_cors_headers(response: Response, state: PortalState) -> None:
    origin = request.headers.get("Origin")
    allowed = state.config.gui_origin
    if not allowed or not origin:
        return
    response.vary.add("Origin")
    if origin.rstrip("/").lower() != allowed.rstrip("/").lower():
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    # Lets a login page on the GUI origin read the lockout wait.
    response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    if request.method == "OPTIONS":
        key_headers = state.config.auth_conf.key_names if state.config.auth_conf.key_in_header else ()
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ", ".join((*_CORS_BASE_HEADERS, *key_headers))
        response.headers["Access-Control-Max-Age"] = str(_CORS_MAX_AGE)
