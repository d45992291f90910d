"""The /auth and /session routes: status codes, bodies, cookies, CORS, hooks and signals."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from blinker import Signal
from flask import Flask
from werkzeug.test import TestResponse

from conftest import TEST_SECRET, FakeClock, basic_header
from flask_portal_session import developer_logged_in, developer_logged_out, login_failed
from flask_portal_session.crypto import KeyRing, row_key

EMAIL = "dev@example.test"
PASSWORD = "correct horse battery staple"
INVALID = {"message": "Invalid authentication credentials"}
NO_API_KEY = {"message": "No API key found in request"}
LOGGED_OUT = {"message": "Logged out"}

GUI_ORIGIN = "http://portal.xyz.test"
API_URL = "http://portalapi.xyz.test"

MakeApp = Callable[..., Flask]


# -- helpers ------------------------------------------------------------------


def add_developer(app: Flask, email: str = EMAIL, password: str = PASSWORD, status: str = "approved") -> Any:
    """Create a developer in the app's built-in store."""
    return app.portal.developers.create(email, password, status=status)  # type: ignore[attr-defined]


def add_api_key(app: Flask, email: str = EMAIL) -> str:
    """Create an API key for ``email`` and return the key."""
    key, _ = app.portal.developers.create_api_key(email)  # type: ignore[attr-defined]
    return key


def raw_basic_header(credentials: bytes) -> dict[str, str]:
    """Return an ``Authorization: Basic`` header for raw credential bytes."""
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}


def session_set_cookies(response: TestResponse, name: str = "session") -> list[str]:
    """Return the response's Set-Cookie headers for the session cookie."""
    return [header for header in response.headers.getlist("Set-Cookie") if header.startswith(f"{name}=")]


def cookie_value(response: TestResponse, name: str = "session") -> str:
    """Return the value of the one session cookie the response sets."""
    headers = session_set_cookies(response, name)
    assert len(headers) == 1, headers
    return headers[0].split(";", 1)[0].split("=", 1)[1]


def cookie_header(token: str, name: str = "session") -> dict[str, str]:
    return {"Cookie": f"{name}={token}"}


def log_in(app: Flask) -> str:
    """Log in as the default developer with basic-auth and return the session cookie."""
    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))
    assert response.status_code == 200, response.get_data(as_text=True)
    return cookie_value(response)


@contextmanager
def recorded(signal: Signal, app: Flask) -> Iterator[list[tuple[Any, dict[str, Any]]]]:
    """Record ``(sender, keyword arguments)`` of every send of ``signal`` for ``app``."""
    events: list[tuple[Any, dict[str, Any]]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        events.append((sender, kwargs))

    with signal.connected_to(receiver, sender=app):
        yield events


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    """The default portal app (basic-auth and key-auth) with one approved developer."""
    app = make_app()
    add_developer(app)
    return app


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client(use_cookies=False)


# -- login: success -------------------------------------------------------------


def test_auth_basic_returns_developer(app: Flask, client: Any) -> None:
    developer = app.portal.developers.require(EMAIL)  # type: ignore[attr-defined]

    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 200
    assert response.get_json() == {"developer": {"id": developer.id, "email": EMAIL, "status": "approved"}}


def test_auth_basic_sets_cookie(client: Any) -> None:
    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert len(session_set_cookies(response)) == 1
    assert cookie_value(response)


def test_auth_post_logs_in(client: Any) -> None:
    response = client.post("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 200
    assert len(session_set_cookies(response)) == 1


def test_auth_cookie_not_cacheable(client: Any) -> None:
    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.headers.get("Cache-Control") == "no-store"


def test_auth_email_any_case(client: Any) -> None:
    response = client.get("/auth", headers=basic_header("DEV@Example.Test", PASSWORD))

    assert response.status_code == 200


def test_auth_lowercase_basic_scheme(client: Any) -> None:
    token = base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()

    response = client.get("/auth", headers={"Authorization": f"basic {token}"})

    assert response.status_code == 200


def test_auth_password_with_colons(make_app: MakeApp) -> None:
    app = make_app()
    add_developer(app, password="pa:ss:word")

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, "pa:ss:word"))

    assert response.status_code == 200


def test_auth_non_ascii_password(make_app: MakeApp) -> None:
    app = make_app()
    add_developer(app, password="pässwörd-€-密码")

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, "pässwörd-€-密码"))

    assert response.status_code == 200


def test_auth_new_id_over_anonymous_cookie(client: Any) -> None:
    anonymous = cookie_value(client.get("/put?cart=1"))

    response = client.get("/auth", headers={**basic_header(EMAIL, PASSWORD), **cookie_header(anonymous)})

    assert response.status_code == 200
    assert cookie_value(response) != anonymous


def test_auth_new_id_over_logged_in_cookie(app: Flask, client: Any) -> None:
    first = log_in(app)

    response = client.get("/auth", headers={**basic_header(EMAIL, PASSWORD), **cookie_header(first)})

    assert response.status_code == 200
    assert cookie_value(response) != first


def test_auth_old_cookie_dead_after_relogin(app: Flask, client: Any) -> None:
    first = log_in(app)
    second = cookie_value(client.get("/auth", headers={**basic_header(EMAIL, PASSWORD), **cookie_header(first)}))

    assert client.get("/session", headers=cookie_header(first)).status_code == 401
    assert client.get("/session", headers=cookie_header(second)).status_code == 200


def test_auth_cookie_opens_session(app: Flask, client: Any) -> None:
    token = log_in(app)

    response = client.get("/session", headers=cookie_header(token))

    assert response.status_code == 200


@pytest.mark.parametrize(("method", "path"), [("put", "/auth"), ("patch", "/auth"), ("post", "/session")])
def test_route_wrong_method_json_405(client: Any, method: str, path: str) -> None:
    # The auth routes send every error body as JSON, including 405 for a wrong method.
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response.is_json
    assert isinstance(response.get_json()["message"], str)


# -- login: missing credentials -------------------------------------------------


def test_auth_missing_basic_challenge(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="basic-auth")

    response = app.test_client(use_cookies=False).get("/auth")

    assert response.status_code == 401
    assert response.headers.get("WWW-Authenticate") == 'Basic realm="portal"'
    assert response.is_json
    assert isinstance(response.get_json()["message"], str)
    assert session_set_cookies(response) == []


def test_auth_missing_both_methods_challenge(client: Any) -> None:
    response = client.get("/auth")

    assert response.status_code == 401
    assert response.headers.get("WWW-Authenticate") == 'Basic realm="portal"'
    assert session_set_cookies(response) == []


def test_auth_missing_xhr_no_challenge(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="basic-auth")

    response = app.test_client(use_cookies=False).get("/auth", headers={"X-Requested-With": "XMLHttpRequest"})

    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers


def test_auth_wrong_password_xhr_no_challenge(client: Any) -> None:
    headers = {**basic_header(EMAIL, "wrong password"), "X-Requested-With": "XMLHttpRequest"}

    response = client.get("/auth", headers=headers)

    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers


def test_auth_custom_realm(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="basic-auth", PORTAL_AUTH_CONF={"realm": "developers"})

    response = app.test_client(use_cookies=False).get("/auth")

    assert response.headers.get("WWW-Authenticate") == 'Basic realm="developers"'


def test_auth_missing_key_message(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth")

    response = app.test_client(use_cookies=False).get("/auth")

    assert response.status_code == 401
    assert response.get_json() == NO_API_KEY
    assert session_set_cookies(response) == []


def test_auth_missing_key_no_basic_challenge(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth")

    response = app.test_client(use_cookies=False).get("/auth")

    assert "Basic" not in response.headers.get("WWW-Authenticate", "")


def test_auth_key_only_ignores_basic(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth")
    add_developer(app)

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 401
    assert response.get_json() == NO_API_KEY
    assert session_set_cookies(response) == []


def test_auth_basic_only_ignores_key(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="basic-auth")
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": key})

    assert response.status_code == 401
    assert session_set_cookies(response) == []


# -- login: malformed and wrong credentials -------------------------------------


MALFORMED_BASIC = {
    "bad base64": "Basic !!!not-base64!!!",
    "bad padding": "Basic ZGV2QGV4YW1wbGUudGVzdDpw=",
    "missing colon": "Basic " + base64.b64encode(f"{EMAIL}{PASSWORD}".encode()).decode(),
    "empty user": "Basic " + base64.b64encode(f":{PASSWORD}".encode()).decode(),
    "scheme only": "Basic",
    "scheme and space": "Basic ",
}


@pytest.mark.parametrize("header", MALFORMED_BASIC.values(), ids=MALFORMED_BASIC.keys())
def test_auth_malformed_basic_401(client: Any, header: str) -> None:
    response = client.get("/auth", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert session_set_cookies(response) == []


UNKNOWN_SCHEMES = {
    "bearer": "Bearer abc.def.ghi",
    "bearer with basic payload": "Bearer " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode(),
    "token with basic payload": "Token " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode(),
    "digest": 'Digest username="dev@example.test", realm="portal"',
    "no scheme": base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode(),
}


@pytest.mark.parametrize("header", UNKNOWN_SCHEMES.values(), ids=UNKNOWN_SCHEMES.keys())
def test_auth_unknown_scheme_401(client: Any, header: str) -> None:
    response = client.get("/auth", headers={"Authorization": header})

    assert response.status_code == 401
    assert isinstance(response.get_json()["message"], str)
    assert session_set_cookies(response) == []


def test_auth_wrong_password_401(client: Any) -> None:
    response = client.get("/auth", headers=basic_header(EMAIL, "wrong password"))

    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert session_set_cookies(response) == []


def test_auth_empty_password_401(client: Any) -> None:
    response = client.get("/auth", headers=basic_header(EMAIL, ""))

    assert response.status_code == 401
    assert response.get_json() == INVALID


def test_auth_unknown_email_401(client: Any) -> None:
    response = client.get("/auth", headers=basic_header("nobody@example.test", PASSWORD))

    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert session_set_cookies(response) == []


def test_auth_nul_in_email_401(client: Any) -> None:
    response = client.get("/auth", headers=raw_basic_header(b"dev\x00@example.test:" + PASSWORD.encode()))

    assert response.status_code == 401
    assert response.get_json() == INVALID


def test_auth_unknown_email_like_wrong_password(client: Any) -> None:
    wrong = client.get("/auth", headers=basic_header(EMAIL, "wrong password"))
    unknown = client.get("/auth", headers=basic_header("nobody@example.test", "wrong password"))

    assert unknown.status_code == wrong.status_code
    assert unknown.get_data() == wrong.get_data()
    assert unknown.headers.get("WWW-Authenticate") == wrong.headers.get("WWW-Authenticate")


def test_auth_failure_with_cookie_sets_none(client: Any) -> None:
    anonymous = cookie_value(client.get("/put?cart=1"))

    response = client.get("/auth", headers={**basic_header(EMAIL, "wrong password"), **cookie_header(anonymous)})

    assert response.status_code == 401
    assert session_set_cookies(response) == []


# -- login: developer status ------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "rejected", "revoked"])
def test_auth_unapproved_status_401(make_app: MakeApp, status: str) -> None:
    app = make_app()
    add_developer(app, status=status)

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 401
    assert response.get_json() == {"message": f"Unauthorized: Developer status: {status.upper()}"}
    assert session_set_cookies(response) == []


@pytest.mark.parametrize("status", ["pending", "rejected", "revoked"])
def test_auth_unapproved_key_401(make_app: MakeApp, status: str) -> None:
    app = make_app()
    add_developer(app)
    key = add_api_key(app)
    app.portal.developers.set_status(EMAIL, status)  # type: ignore[attr-defined]

    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": key})

    assert response.status_code == 401
    assert response.get_json() == {"message": f"Unauthorized: Developer status: {status.upper()}"}
    assert session_set_cookies(response) == []


def test_auth_unapproved_wrong_password_hides_status(make_app: MakeApp) -> None:
    app = make_app()
    add_developer(app, status="pending")

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, "wrong password"))

    assert response.status_code == 401
    assert response.get_json() == INVALID


# -- login: lockout ---------------------------------------------------------------


@pytest.fixture
def locking_app(make_app: MakeApp) -> Flask:
    """An app that locks an account after 3 consecutive failed logins."""
    app = make_app(PORTAL_AUTH_LOGIN_ATTEMPTS=3)
    add_developer(app)
    return app


def fail_logins(client: Any, count: int) -> list[int]:
    """Send ``count`` logins with a wrong password; return their status codes."""
    return [client.get("/auth", headers=basic_header(EMAIL, "wrong password")).status_code for _ in range(count)]


def test_lockout_failures_before_limit_401(locking_app: Flask) -> None:
    client = locking_app.test_client(use_cookies=False)

    assert fail_logins(client, 3) == [401, 401, 401]


def test_lockout_right_password_429(locking_app: Flask) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)

    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 429
    assert response.headers.get("Retry-After") == "60"
    assert isinstance(response.get_json()["message"], str)
    assert session_set_cookies(response) == []


def test_lockout_wrong_password_429(locking_app: Flask) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)

    response = client.get("/auth", headers=basic_header(EMAIL, "another wrong password"))

    assert response.status_code == 429
    assert response.headers.get("Retry-After") == "60"


def test_lockout_retry_after_counts_down(locking_app: Flask, clock: FakeClock) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)
    clock.advance(59)

    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 429
    assert response.headers.get("Retry-After") == "1"


def test_lockout_expires_after_60s(locking_app: Flask, clock: FakeClock) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)
    clock.advance(60)

    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 200
    assert len(session_set_cookies(response)) == 1


def test_lockout_doubles_to_120s(locking_app: Flask, clock: FakeClock) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)
    clock.advance(60)

    failure = client.get("/auth", headers=basic_header(EMAIL, "wrong password"))
    locked = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert failure.status_code == 401
    assert locked.status_code == 429
    assert locked.headers.get("Retry-After") == "120"


def test_lockout_doubles_again_to_240(locking_app: Flask, clock: FakeClock) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)
    clock.advance(60)
    fail_logins(client, 1)
    clock.advance(120)

    failure = client.get("/auth", headers=basic_header(EMAIL, "wrong password"))
    locked = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert failure.status_code == 401
    assert locked.status_code == 429
    assert locked.headers.get("Retry-After") == "240"


def test_lockout_success_resets(locking_app: Flask, clock: FakeClock) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)
    clock.advance(60)
    client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    failures = fail_logins(client, 2)
    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert failures == [401, 401]
    assert response.status_code == 200


def test_lockout_after_reset_is_60s(locking_app: Flask, clock: FakeClock) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)
    clock.advance(60)
    client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    fail_logins(client, 3)
    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 429
    assert response.headers.get("Retry-After") == "60"


def test_lockout_unknown_email_stays_401(locking_app: Flask) -> None:
    client = locking_app.test_client(use_cookies=False)
    headers = basic_header("nobody@example.test", "wrong password")

    statuses = [client.get("/auth", headers=headers).status_code for _ in range(5)]

    assert statuses == [401] * 5


# -- login: API keys --------------------------------------------------------------


def test_key_in_header_logs_in(app: Flask, client: Any) -> None:
    key = add_api_key(app)

    response = client.get("/auth", headers={"apikey": key})

    assert response.status_code == 200
    assert response.get_json()["developer"]["email"] == EMAIL
    assert len(session_set_cookies(response)) == 1


def test_key_header_name_any_case(app: Flask, client: Any) -> None:
    key = add_api_key(app)

    response = client.get("/auth", headers={"APIKey": key})

    assert response.status_code == 200


def test_key_custom_name(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_names": ["x-api-key"]})
    add_developer(app)
    key = add_api_key(app)
    client = app.test_client(use_cookies=False)

    assert client.get("/auth", headers={"X-Api-Key": key}).status_code == 200
    assert client.get("/auth", headers={"apikey": key}).status_code == 401


def test_key_in_query_off_by_default(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth")
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).get("/auth", query_string={"apikey": key})

    assert response.status_code == 401
    assert response.get_json() == NO_API_KEY
    assert session_set_cookies(response) == []


def test_key_in_query_when_enabled(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_query": True})
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).get("/auth", query_string={"apikey": key})

    assert response.status_code == 200
    assert len(session_set_cookies(response)) == 1


def test_key_in_form_off_by_default(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth")
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).post("/auth", data={"apikey": key})

    assert response.status_code == 401
    assert response.get_json() == NO_API_KEY


def test_key_in_form_when_enabled(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_body": True})
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).post("/auth", data={"apikey": key})

    assert response.status_code == 200


def test_key_in_multipart_when_enabled(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_body": True})
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).post("/auth", data={"apikey": key}, content_type="multipart/form-data")

    assert response.status_code == 200


def test_key_in_json_off_by_default(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth")
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).post("/auth", json={"apikey": key})

    assert response.status_code == 401
    assert response.get_json() == NO_API_KEY


def test_key_in_json_when_enabled(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_body": True})
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).post("/auth", json={"apikey": key})

    assert response.status_code == 200


def test_key_in_header_off(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_header": False, "key_in_query": True})
    add_developer(app)
    key = add_api_key(app)
    client = app.test_client(use_cookies=False)

    assert client.get("/auth", headers={"apikey": key}).status_code == 401
    assert client.get("/auth", query_string={"apikey": key}).status_code == 200


def test_key_body_does_not_enable_query(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_body": True})
    add_developer(app)
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).get("/auth", query_string={"apikey": key})

    assert response.status_code == 401


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"headers": [("apikey", "{key}"), ("apikey", "{key}")]}, id="header twice"),
        pytest.param({"query_string": [("apikey", "{key}"), ("apikey", "{key}")]}, id="query twice"),
        pytest.param({"headers": [("apikey", "{key}")], "query_string": {"apikey": "{key}"}}, id="header and query"),
        pytest.param({"headers": [("apikey", "{key}")], "data": {"apikey": "{key}"}}, id="header and form"),
        pytest.param({"query_string": {"apikey": "{key}"}, "json": {"apikey": "{key}"}}, id="query and json"),
    ],
)
def test_key_sent_twice_401(make_app: MakeApp, request_kwargs: dict[str, Any]) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_query": True, "key_in_body": True})
    add_developer(app)
    key = add_api_key(app)
    kwargs = fill_key(request_kwargs, key)

    response = app.test_client(use_cookies=False).post("/auth", **kwargs)

    assert response.status_code == 401
    assert session_set_cookies(response) == []


def fill_key(value: Any, key: str) -> Any:
    """Replace ``"{key}"`` with ``key`` inside nested request arguments."""
    if isinstance(value, str):
        return value.replace("{key}", key)
    if isinstance(value, dict):
        return {name: fill_key(item, key) for name, item in value.items()}
    if isinstance(value, list):
        return [fill_key(item, key) for item in value]
    if isinstance(value, tuple):
        return tuple(fill_key(item, key) for item in value)
    return value


def test_key_two_different_keys_401(app: Flask, client: Any) -> None:
    first = add_api_key(app)
    second = add_api_key(app)

    response = client.get("/auth", headers=[("apikey", first), ("apikey", second)])

    assert response.status_code == 401
    assert session_set_cookies(response) == []


def test_key_revoked_401(app: Flask, client: Any) -> None:
    key, record = app.portal.developers.create_api_key(EMAIL)  # type: ignore[attr-defined]
    app.portal.developers.revoke_api_key(record.id)  # type: ignore[attr-defined]

    response = client.get("/auth", headers={"apikey": key})

    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert session_set_cookies(response) == []


def test_key_unknown_401(client: Any) -> None:
    response = client.get("/auth", headers={"apikey": "no-such-key-0123456789-abcdefghijklmnopq"})

    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert session_set_cookies(response) == []


def test_key_empty_header_401(client: Any) -> None:
    response = client.get("/auth", headers={"apikey": ""})

    assert response.status_code == 401
    assert session_set_cookies(response) == []


# -- logout -----------------------------------------------------------------------


def test_logout_without_session_200(client: Any) -> None:
    response = client.delete("/auth?session_logout=true")

    assert response.status_code == 200
    assert response.get_json() == LOGGED_OUT


def test_logout_twice_200(app: Flask, client: Any) -> None:
    token = log_in(app)

    first = client.delete("/auth?session_logout=true", headers=cookie_header(token))
    second = client.delete("/auth?session_logout=true", headers=cookie_header(token))

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.get_json() == LOGGED_OUT


def test_logout_with_garbage_cookie_200(client: Any) -> None:
    response = client.delete("/auth?session_logout=true", headers=cookie_header("garbage"))

    assert response.status_code == 200
    assert response.get_json() == LOGGED_OUT


def test_logout_expires_cookie(app: Flask, client: Any) -> None:
    token = log_in(app)

    response = client.delete("/auth?session_logout=true", headers=cookie_header(token))
    headers = session_set_cookies(response)

    assert response.get_json() == LOGGED_OUT
    assert len(headers) == 1
    assert headers[0].startswith("session=;")
    assert "Max-Age=0" in headers[0] or "1970" in headers[0]


def test_logout_ends_session(app: Flask, client: Any) -> None:
    token = log_in(app)

    client.delete("/auth?session_logout=true", headers=cookie_header(token))

    assert client.get("/session", headers=cookie_header(token)).status_code == 401


# -- /session ---------------------------------------------------------------------


SESSION_FIELDS = {"expires", "expires_in", "lifetime", "renew", "idletime", "discard", "absolute_expires"}


def test_session_without_cookie_401(client: Any) -> None:
    response = client.get("/session")

    assert response.status_code == 401
    assert isinstance(response.get_json()["message"], str)


def test_session_anonymous_cookie_401(client: Any) -> None:
    anonymous = cookie_value(client.get("/put?cart=1"))

    response = client.get("/session", headers=cookie_header(anonymous))

    assert response.status_code == 401


def test_session_forged_cookie_401(client: Any) -> None:
    forged = KeyRing("some-other-secret-0123456789-abcdef").encode_token(b"\x01" * 32)

    response = client.get("/session", headers=cookie_header(forged))

    assert response.status_code == 401


def test_session_returns_developer(app: Flask, client: Any) -> None:
    developer = app.portal.developers.require(EMAIL)  # type: ignore[attr-defined]
    token = log_in(app)

    body = client.get("/session", headers=cookie_header(token)).get_json()

    assert body["developer"] == {"id": developer.id, "email": EMAIL, "status": "approved"}


def test_session_has_all_fields(app: Flask, client: Any) -> None:
    token = log_in(app)

    response = client.get("/session", headers=cookie_header(token))

    assert response.status_code == 200
    assert set(response.get_json()) == {"developer", "session"}
    assert set(response.get_json()["session"]) == SESSION_FIELDS


def test_session_default_values(app: Flask, client: Any, clock: FakeClock) -> None:
    login_time = int(clock.now)
    token = log_in(app)

    session = client.get("/session", headers=cookie_header(token)).get_json()["session"]

    assert session["expires"] == login_time + 3600
    assert session["expires_in"] == 3600
    assert session["lifetime"] == 3600
    assert session["renew"] == 600
    assert session["idletime"] == 0
    assert session["discard"] == 10
    assert session["absolute_expires"] == login_time + 86400


def test_session_expires_in_counts_down(app: Flask, client: Any, clock: FakeClock) -> None:
    login_time = int(clock.now)
    token = log_in(app)
    clock.advance(100)

    session = client.get("/session", headers=cookie_header(token)).get_json()["session"]

    assert session["expires"] == login_time + 3600
    assert session["expires_in"] == 3500


def test_session_configured_values(make_app: MakeApp, clock: FakeClock) -> None:
    conf = {
        "cookie_lifetime": 7200,
        "cookie_renew": 120,
        "cookie_idletime": 900,
        "cookie_discard": 5,
        "absolute_timeout": 0,
    }
    app = make_app(conf)
    add_developer(app)
    login_time = int(clock.now)
    token = log_in(app)

    session = app.test_client(use_cookies=False).get("/session", headers=cookie_header(token)).get_json()["session"]

    assert session["expires"] == login_time + 7200
    assert session["lifetime"] == 7200
    assert session["renew"] == 120
    assert session["idletime"] == 900
    assert session["discard"] == 5
    assert session["absolute_expires"] is None


def test_session_hides_session_id(app: Flask, client: Any) -> None:
    token = log_in(app)
    decoded = KeyRing(TEST_SECRET).decode_token(token)
    assert decoded is not None
    session_id = decoded[0]

    text = client.get("/session", headers=cookie_header(token)).get_data(as_text=True)

    assert token not in text
    assert session_id.hex() not in text
    assert base64.urlsafe_b64encode(session_id).decode().rstrip("=") not in text
    assert row_key(session_id) not in text


def test_session_revoked_developer_401(app: Flask, client: Any) -> None:
    token = log_in(app)
    app.portal.set_developer_status(EMAIL, "revoked")  # type: ignore[attr-defined]

    response = client.get("/session", headers=cookie_header(token))

    assert response.status_code == 401


# -- CORS -------------------------------------------------------------------------


@pytest.fixture
def cors_app(make_app: MakeApp) -> Flask:
    """An app whose GUI and API run on two hosts under xyz.test."""
    app = make_app(
        {"cookie_domain": ".xyz.test", "cookie_secure": False},
        PORTAL_GUI_HOST=GUI_ORIGIN,
        PORTAL_API_URL=API_URL,
    )
    add_developer(app)
    return app


def test_cors_gui_origin_allowed(cors_app: Flask) -> None:
    headers = {"Origin": GUI_ORIGIN, **basic_header(EMAIL, PASSWORD)}

    response = cors_app.test_client(use_cookies=False).get("/auth", base_url=API_URL, headers=headers)

    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == GUI_ORIGIN
    assert response.headers.get("Access-Control-Allow-Credentials") == "true"


def test_cors_cookie_domain(cors_app: Flask) -> None:
    headers = {"Origin": GUI_ORIGIN, **basic_header(EMAIL, PASSWORD)}

    response = cors_app.test_client(use_cookies=False).get("/auth", base_url=API_URL, headers=headers)

    assert "Domain=xyz.test" in session_set_cookies(response)[0]


def test_cors_failed_login_readable(cors_app: Flask) -> None:
    headers = {"Origin": GUI_ORIGIN, **basic_header(EMAIL, "wrong password")}

    response = cors_app.test_client(use_cookies=False).get("/auth", base_url=API_URL, headers=headers)

    assert response.status_code == 401
    assert response.headers.get("Access-Control-Allow-Origin") == GUI_ORIGIN


def test_cors_session_route(cors_app: Flask) -> None:
    token = log_in(cors_app)

    response = cors_app.test_client(use_cookies=False).get(
        "/session", base_url=API_URL, headers={"Origin": GUI_ORIGIN, **cookie_header(token)}
    )

    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == GUI_ORIGIN
    assert response.headers.get("Access-Control-Allow-Credentials") == "true"


def test_cors_logout(cors_app: Flask) -> None:
    token = log_in(cors_app)
    headers = {"Origin": GUI_ORIGIN, **cookie_header(token)}

    response = cors_app.test_client(use_cookies=False).delete(
        "/auth?session_logout=true", base_url=API_URL, headers=headers
    )

    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == GUI_ORIGIN
    assert response.headers.get("Access-Control-Allow-Credentials") == "true"


def test_cors_preflight(cors_app: Flask) -> None:
    headers = {
        "Origin": GUI_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, apikey",
    }

    response = cors_app.test_client(use_cookies=False).options("/auth", base_url=API_URL, headers=headers)
    methods = {name.strip() for name in response.headers.get("Access-Control-Allow-Methods", "").split(",")}
    allowed = {name.strip().lower() for name in response.headers.get("Access-Control-Allow-Headers", "").split(",")}

    assert response.status_code < 300
    assert response.headers.get("Access-Control-Allow-Origin") == GUI_ORIGIN
    assert response.headers.get("Access-Control-Allow-Credentials") == "true"
    assert {"GET", "POST", "DELETE"} <= methods
    assert {"authorization", "apikey"} <= allowed


def test_cors_preflight_sets_no_cookie(cors_app: Flask) -> None:
    headers = {"Origin": GUI_ORIGIN, "Access-Control-Request-Method": "POST"}

    response = cors_app.test_client(use_cookies=False).options("/auth", base_url=API_URL, headers=headers)

    assert session_set_cookies(response) == []


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.test",
        "https://portal.xyz.test",
        "http://portal.xyz.test.evil.test",
        "http://evilportal.xyz.test",
        "http://portal.xyz.test:8080",
        "null",
    ],
)
def test_cors_other_origin_not_allowed(cors_app: Flask, origin: str) -> None:
    headers = {"Origin": origin, **basic_header(EMAIL, PASSWORD)}

    response = cors_app.test_client(use_cookies=False).get("/auth", base_url=API_URL, headers=headers)

    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_cors_other_origin_preflight(cors_app: Flask) -> None:
    headers = {"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"}

    response = cors_app.test_client(use_cookies=False).options("/auth", base_url=API_URL, headers=headers)

    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_cors_varies_on_origin(cors_app: Flask) -> None:
    headers = {"Origin": GUI_ORIGIN, **basic_header(EMAIL, PASSWORD)}

    response = cors_app.test_client(use_cookies=False).get("/auth", base_url=API_URL, headers=headers)

    assert "Origin" in response.vary


def test_cors_off_without_gui_host(client: Any) -> None:
    response = client.get("/auth", headers={"Origin": GUI_ORIGIN, **basic_header(EMAIL, PASSWORD)})

    assert "Access-Control-Allow-Origin" not in response.headers


# -- URL prefix -------------------------------------------------------------------


@pytest.fixture
def prefixed_app(make_app: MakeApp) -> Flask:
    app = make_app(PORTAL_URL_PREFIX="/portal")
    add_developer(app)
    return app


def test_prefix_moves_auth(prefixed_app: Flask) -> None:
    client = prefixed_app.test_client(use_cookies=False)

    assert client.get("/portal/auth", headers=basic_header(EMAIL, PASSWORD)).status_code == 200
    assert client.get("/auth", headers=basic_header(EMAIL, PASSWORD)).status_code == 404


def test_prefix_moves_session(prefixed_app: Flask) -> None:
    client = prefixed_app.test_client(use_cookies=False)
    token = cookie_value(client.get("/portal/auth", headers=basic_header(EMAIL, PASSWORD)))

    assert client.get("/portal/session", headers=cookie_header(token)).status_code == 200
    assert client.get("/session", headers=cookie_header(token)).status_code == 404


def test_prefix_moves_logout(prefixed_app: Flask) -> None:
    client = prefixed_app.test_client(use_cookies=False)

    response = client.delete("/portal/auth?session_logout=true")

    assert response.status_code == 200
    assert response.get_json() == LOGGED_OUT


# -- hooks ------------------------------------------------------------------------


@dataclass
class PartnerDeveloper:
    """A developer object of the app's own, not of the built-in store."""

    id: int
    email: str
    status: str = "approved"


PARTNER_PASSWORD = "partner password"
PARTNER_KEY = "partner-key-0123456789"


def hooked_app(make_app: MakeApp, status: str = "approved") -> tuple[Flask, PartnerDeveloper]:
    """Build an app whose logins and developer lookups go through the three hooks."""
    app = make_app()
    partner = PartnerDeveloper(id=7, email="partner@example.test", status=status)
    portal = app.portal  # type: ignore[attr-defined]

    @portal.basic_auth_checker
    def check_password(email: str, password: str) -> PartnerDeveloper | None:
        if email == partner.email and password == PARTNER_PASSWORD:
            return partner
        return None

    @portal.key_auth_checker
    def check_key(key: str) -> PartnerDeveloper | None:
        return partner if key == PARTNER_KEY else None

    @portal.developer_loader
    def load_developer(developer_id: Any) -> PartnerDeveloper | None:
        return partner if str(developer_id) == str(partner.id) else None

    return app, partner


def test_hook_basic_login(make_app: MakeApp) -> None:
    app, partner = hooked_app(make_app)

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(partner.email, PARTNER_PASSWORD))

    assert response.status_code == 200
    assert response.get_json() == {"developer": {"id": 7, "email": partner.email, "status": "approved"}}
    assert len(session_set_cookies(response)) == 1


def test_hook_basic_wrong_password(make_app: MakeApp) -> None:
    app, partner = hooked_app(make_app)

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(partner.email, "wrong password"))

    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert session_set_cookies(response) == []


def test_hook_replaces_builtin_store(make_app: MakeApp) -> None:
    app, _ = hooked_app(make_app)
    add_developer(app)

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 401


def test_hook_key_login(make_app: MakeApp) -> None:
    app, partner = hooked_app(make_app)

    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": PARTNER_KEY})

    assert response.status_code == 200
    assert response.get_json()["developer"]["email"] == partner.email


def test_hook_key_unknown(make_app: MakeApp) -> None:
    app, _ = hooked_app(make_app)

    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": "other-key"})

    assert response.status_code == 401
    assert response.get_json() == INVALID


def test_hook_pending_developer(make_app: MakeApp) -> None:
    app, partner = hooked_app(make_app, status="pending")

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(partner.email, PARTNER_PASSWORD))

    assert response.status_code == 401
    assert response.get_json() == {"message": "Unauthorized: Developer status: PENDING"}
    assert session_set_cookies(response) == []


def test_hook_loader_serves_session(make_app: MakeApp) -> None:
    app, partner = hooked_app(make_app)
    client = app.test_client(use_cookies=False)
    token = cookie_value(client.get("/auth", headers=basic_header(partner.email, PARTNER_PASSWORD)))

    response = client.get("/session", headers=cookie_header(token))

    assert response.status_code == 200
    assert response.get_json()["developer"] == {"id": 7, "email": partner.email, "status": "approved"}


def test_hook_loader_serves_login_required(make_app: MakeApp) -> None:
    app, partner = hooked_app(make_app)
    client = app.test_client(use_cookies=False)
    token = cookie_value(client.get("/auth", headers=basic_header(partner.email, PARTNER_PASSWORD)))

    response = client.get("/private", headers=cookie_header(token))

    assert response.status_code == 200
    assert response.get_json()["email"] == partner.email


def test_hook_loader_status_change_ends_session(make_app: MakeApp) -> None:
    app, partner = hooked_app(make_app)
    client = app.test_client(use_cookies=False)
    token = cookie_value(client.get("/auth", headers=basic_header(partner.email, PARTNER_PASSWORD)))
    partner.status = "revoked"

    response = client.get("/session", headers=cookie_header(token))

    assert response.status_code == 401


# -- signals ----------------------------------------------------------------------


def test_signal_logged_in_basic(app: Flask, client: Any) -> None:
    with recorded(developer_logged_in, app) as events:
        client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert len(events) == 1
    assert events[0][0] is app
    assert events[0][1]["developer"].email == EMAIL
    assert events[0][1]["method"] == "basic-auth"


def test_signal_logged_in_key(app: Flask, client: Any) -> None:
    key = add_api_key(app)

    with recorded(developer_logged_in, app) as events:
        client.get("/auth", headers={"apikey": key})

    assert len(events) == 1
    assert events[0][1]["developer"].email == EMAIL
    assert events[0][1]["method"] == "key-auth"


def test_signal_logged_in_not_on_failure(app: Flask, client: Any) -> None:
    with recorded(developer_logged_in, app) as events:
        client.get("/auth", headers=basic_header(EMAIL, "wrong password"))

    assert events == []


@pytest.mark.parametrize(
    ("headers", "method", "reason"),
    [
        pytest.param(basic_header(EMAIL, "wrong password"), "basic-auth", "invalid", id="wrong password"),
        pytest.param(basic_header("nobody@example.test", PASSWORD), "basic-auth", "invalid", id="unknown email"),
        pytest.param({"Authorization": "Basic !!!"}, "basic-auth", "invalid", id="malformed"),
        pytest.param({"apikey": "no-such-key"}, "key-auth", "invalid", id="unknown key"),
    ],
)
def test_signal_login_failed(
    app: Flask, client: Any, headers: dict[str, str], method: str, reason: str
) -> None:
    with recorded(login_failed, app) as events:
        client.get("/auth", headers=headers)

    assert len(events) == 1
    assert events[0][0] is app
    assert events[0][1]["method"] == method
    assert events[0][1]["reason"] == reason


def test_signal_login_failed_missing(app: Flask, client: Any) -> None:
    with recorded(login_failed, app) as events:
        client.get("/auth")

    assert len(events) == 1
    assert events[0][1]["reason"] == "missing"


def test_signal_login_failed_status(make_app: MakeApp) -> None:
    app = make_app()
    add_developer(app, status="pending")

    with recorded(login_failed, app) as events:
        app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert len(events) == 1
    assert events[0][1]["method"] == "basic-auth"
    assert events[0][1]["reason"] == "status"


def test_signal_login_failed_locked(locking_app: Flask) -> None:
    client = locking_app.test_client(use_cookies=False)
    fail_logins(client, 3)

    with recorded(login_failed, locking_app) as events:
        client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert len(events) == 1
    assert events[0][1]["method"] == "basic-auth"
    assert events[0][1]["reason"] == "locked"


def test_signal_login_failed_not_on_success(app: Flask, client: Any) -> None:
    with recorded(login_failed, app) as events:
        client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert events == []


def test_signal_logged_out(app: Flask, client: Any) -> None:
    developer = app.portal.developers.require(EMAIL)  # type: ignore[attr-defined]
    token = log_in(app)

    with recorded(developer_logged_out, app) as events:
        client.delete("/auth?session_logout=true", headers=cookie_header(token))

    assert len(events) == 1
    assert events[0][0] is app
    assert events[0][1]["developer_id"] == developer.id


def test_signal_logged_out_anonymous(client: Any) -> None:
    anonymous = cookie_value(client.get("/put?cart=1"))

    with recorded(developer_logged_out, client.application) as events:
        client.delete("/auth?session_logout=true", headers=cookie_header(anonymous))

    assert len(events) == 1
    assert events[0][1]["developer_id"] is None


# -- bad input never returns 500 --------------------------------------------------


BAD_HEADERS = {
    "megabyte authorization": {"Authorization": "Basic " + "A" * 1_000_000},
    "megabyte bearer": {"Authorization": "Bearer " + "A" * 1_000_000},
    "invalid utf-8 credentials": raw_basic_header(b"\xff\xfe:\xff\xfe"),
    "invalid utf-8 email": raw_basic_header(b"dev@example.test\xc3\x28:password"),
    "invalid utf-8 password": raw_basic_header(b"dev@example.test:\x80\x81\x82"),
    "latin-1 header bytes": {"Authorization": "Basic \xff\xfe\xfd"},
    "nul in credentials": raw_basic_header(b"dev@example.test\x00:pass\x00word"),
    "long email": raw_basic_header(b"a" * 3000 + b"@example.test:password"),
    "long password": raw_basic_header(b"dev@example.test:" + b"p" * 2500),
    "10 KB apikey": {"apikey": "k" * 10_240},
    "latin-1 apikey": {"apikey": "\xe9\xff\xfe"},
    "10 KB cookie": {"Cookie": "session=" + "A" * 10_240},
    "cookie with bad characters": {"Cookie": 'session="\\x00\xff;;=="'},
}

BAD_INPUT_ROUTES = {"/auth": 401, "/session": 401, "/private": 401, "/get": 200}


@pytest.mark.parametrize("path", BAD_INPUT_ROUTES)
@pytest.mark.parametrize("headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_bad_input_no_500(client: Any, path: str, headers: dict[str, str]) -> None:
    response = client.get(path, headers=headers)

    assert response.status_code == BAD_INPUT_ROUTES[path]


BAD_CREDENTIALS = {name: headers for name, headers in BAD_HEADERS.items() if "Cookie" not in headers}


@pytest.mark.parametrize("headers", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_bad_input_auth_sets_no_cookie(client: Any, headers: dict[str, str]) -> None:
    response = client.get("/auth", headers=headers)

    assert session_set_cookies(response) == []


def test_bad_input_key_query_invalid_utf8(make_app: MakeApp) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_query": True})

    response = app.test_client(use_cookies=False).get("/auth?apikey=%ff%fe%fd")

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param(b"{", "application/json", id="truncated json"),
        pytest.param(b'["apikey"]', "application/json", id="json list"),
        pytest.param(b'{"apikey": 5}', "application/json", id="json number"),
        pytest.param(b'{"apikey": ["a", "b"]}', "application/json", id="json list value"),
        pytest.param(b"\xff\xfe\xfd", "application/json", id="json invalid utf-8"),
        pytest.param(b"apikey=%ff%fe", "application/x-www-form-urlencoded", id="form invalid utf-8"),
        pytest.param(b"--x\r\nbroken", "multipart/form-data; boundary=x", id="broken multipart"),
    ],
)
def test_bad_input_key_body(make_app: MakeApp, data: bytes, content_type: str) -> None:
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_body": True})

    response = app.test_client(use_cookies=False).post("/auth", data=data, content_type=content_type)

    assert response.status_code == 401


def test_bad_input_long_password_unhashed(app: Flask, client: Any) -> None:
    developers = app.portal.developers  # type: ignore[attr-defined]
    calls = []
    original = developers.hasher

    class CountingHasher:
        def __getattr__(self, name: str) -> Any:
            return getattr(original, name)

        def verify(self, *args: Any) -> Any:
            calls.append(args)
            return original.verify(*args)

    developers.hasher = CountingHasher()

    response = client.get("/auth", headers=basic_header(EMAIL, "p" * 2000))

    assert response.status_code == 401
    assert calls == []
