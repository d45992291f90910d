"""``login_required`` and ``current_developer`` for the app's own views."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import current_app, redirect, request, session, url_for
from werkzeug.local import LocalProxy

from .errors import json_error

__all__ = ["login_required", "current_developer", "safe_next_path"]

_View = TypeVar("_View", bound=Callable[..., Any])


def login_required(view: _View) -> _View:
    """Run ``view`` only for a valid session of an approved developer.

    Otherwise return 401 ``{"message": "Unauthorized"}``, or, when
    ``PORTAL_LOGIN_VIEW`` names an endpoint, the client prefers HTML and the
    method is GET or HEAD, redirect there with a ``next`` parameter holding
    this request's path. Other methods get the 401, because the page would
    reopen ``next`` with GET after login.
    """

    is_async = inspect.iscoroutinefunction(view)

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if getattr(session, "is_authenticated", False):
            if is_async:
                return current_app.ensure_sync(view)(*args, **kwargs)
            return view(*args, **kwargs)
        state = current_app.extensions["portal_session"]
        login_view = state.config.login_view
        if login_view and request.method in ("GET", "HEAD") and _prefers_html():
            return redirect(url_for(login_view, next=_request_path()))
        return json_error(401, "Unauthorized")

    return wrapped  # type: ignore[return-value]


def _get_current_developer() -> Any:
    return getattr(session, "developer", None)


#: The logged-in developer of this request, or ``None`` when anonymous.
current_developer: Any = LocalProxy(_get_current_developer)


def safe_next_path(value: str | None, default: str = "/") -> str:
    """Return ``value`` when it is a path on this site, else ``default``.

    Absolute URLs, scheme-relative ``//host`` forms, backslashes and control
    characters are rejected, so a ``next`` parameter cannot send a user to
    another site after login.
    """
    if not value or not isinstance(value, str):
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _prefers_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]


def _request_path() -> str:
    path = request.full_path
    return safe_next_path(path[:-1] if path.endswith("?") else path)
