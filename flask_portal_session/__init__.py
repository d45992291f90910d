"""Kong-Dev-Portal-style server-side sessions, logins and logout for Flask.

Quick use::

    from flask_portal_session import PortalSession, login_required, current_developer

    portal = PortalSession(app)

    @app.get("/dashboard")
    @login_required
    def dashboard():
        return {"email": current_developer.email}
"""

from __future__ import annotations

from .config import ConfigError
from .credentials import ApiKey, CredentialError, Developer, DeveloperStore
from .decorators import current_developer, login_required, safe_next_path
from .errors import SessionStoreUnavailable, SessionTooLarge
from .extension import PortalSession
from .interface import ServerSession
from .signals import developer_logged_in, developer_logged_out, login_failed, session_renewed

__all__ = [
    "ApiKey",
    "ConfigError",
    "CredentialError",
    "Developer",
    "DeveloperStore",
    "PortalSession",
    "ServerSession",
    "SessionStoreUnavailable",
    "SessionTooLarge",
    "current_developer",
    "developer_logged_in",
    "developer_logged_out",
    "login_failed",
    "login_required",
    "safe_next_path",
    "session_renewed",
]

__version__ = "0.1.0"
