"""Blinker signals for the session and login events a host app may observe.

Each is sent with the Flask app as sender. Keyword arguments:

- ``developer_logged_in``: ``developer``, ``method`` ("basic-auth", "key-auth" or "login").
- ``developer_logged_out``: ``developer_id`` (``None`` when the session was anonymous).
- ``login_failed``: ``method`` ("basic-auth", "key-auth", or "none" when the request
  carried no credentials of any enabled kind), ``reason`` ("missing", "invalid",
  "status", "locked").
- ``session_renewed``: ``developer_id``.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = ["developer_logged_in", "developer_logged_out", "login_failed", "session_renewed"]

_signals = Namespace()

#: Sent after a developer logged in and a new session id was issued.
developer_logged_in = _signals.signal("developer-logged-in")

#: Sent when a logout destroys a session.
developer_logged_out = _signals.signal("developer-logged-out")

#: Sent when a login attempt fails, whatever the reason.
login_failed = _signals.signal("login-failed")

#: Sent when a session got a new id because less than ``cookie_renew`` was left.
session_renewed = _signals.signal("session-renewed")
