"""Exceptions raised to the app and the JSON error responses built from them."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.exceptions import ServiceUnavailable

__all__ = [
    "SessionStoreUnavailable",
    "SessionTooLarge",
    "json_error",
]


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    """Return a Flask response with the body ``{"message": message}``."""
    from flask import current_app

    response = current_app.response_class(
        json.dumps({"message": message}) + "\n", status=status, mimetype="application/json"
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class SessionStoreUnavailable(ServiceUnavailable):
    """The session database could not be reached; returned as a 503 JSON response."""

    description = "Session store unavailable"

    def get_body(self, environ: Any = None, scope: Any = None) -> str:
        return json.dumps({"message": self.description}) + "\n"

    def get_headers(self, environ: Any = None, scope: Any = None) -> list[tuple[str, str]]:
        return [("Content-Type", "application/json"), ("Retry-After", "5")]


class SessionTooLarge(ValueError):
    """The session data serializes to more bytes than ``max_session_bytes`` allows."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The session data is {size} bytes once serialized, more than max_session_bytes ({limit}). "
            "Nothing was stored. Keep large values in your own tables and store only their ids in the "
            "session, or raise max_session_bytes in PORTAL_SESSION_CONF."
        )
        self.size = size
        self.limit = limit
