"""Malformed credentials on /auth: always a 401 JSON response, never a 500, never a cookie.

The tables of cases run one test per case on SQLite, and once per table on
PostgreSQL and MariaDB, where the credentials that reach a lookup meet the
server's own rules for text (PostgreSQL rejects NUL, for one).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask

from conftest import basic_header

from .conftest import EMAIL, PASSWORD, add_api_key, add_developer, only_on, session_set_cookies

SERVER_BACKENDS = only_on("postgresql", "mariadb")


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode("ascii")


MALFORMED_AUTHORIZATION = {
    "bad base64": "Basic !!!!",
    "base64 with a stray character": "Basic ZGV2QGV4YW1w*bGUudGVzdDp4",
    "truncated base64": "Basic ZGV2QGV4YW1wbGUudGVzdDp",
    "missing colon": basic(EMAIL.encode() + PASSWORD.encode()),
    "only a colon": basic(b":"),
    "empty user": basic(b":" + PASSWORD.encode()),
    "empty password": basic(EMAIL.encode() + b":"),
    "invalid utf-8 user": basic(b"\xff\xfe@example.test:" + PASSWORD.encode()),
    "invalid utf-8 password": basic(EMAIL.encode() + b":\xc3\x28\xa0\xa1"),
    "overlong utf-8": basic(b"\xc0\xaf:\xe0\x80\xaf"),
    "nul in user": basic(b"dev\x00@example.test:" + PASSWORD.encode()),
    "nul in password": basic(EMAIL.encode() + b":" + PASSWORD.encode() + b"\x00"),
    "control characters": basic(b"\x1b[31m" + EMAIL.encode() + b":\x07"),
    "megabyte basic": "Basic " + "QUFB" * 262_144,
    "megabyte bearer": "Bearer " + "x" * 1_048_576,
    "long user": basic(b"a" * 10_000 + b"@example.test:" + PASSWORD.encode()),
    "long password": basic(EMAIL.encode() + b":" + b"p" * 100_000),
    "bearer": "Bearer abc.def.ghi",
    "digest": 'Digest username="dev@example.test", realm="portal", nonce="x", response="y"',
    "negotiate": "Negotiate YIIBhwYGKwYBBQUC",
    "unknown scheme with basic payload": "Portal " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode(),
    "no scheme": base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode(),
    "scheme only": "Basic",
    "scheme and spaces": "Basic    ",
    "empty header": "",
    "spaces only": "   ",
    "latin-1 characters": "Basic \xe9\xff\xfe",
    "two credentials": basic(f"{EMAIL}:x".encode()) + ", " + basic(f"{EMAIL}:{PASSWORD}".encode()),
}


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app()
    add_developer(app)
    return app


def assert_json_401(response: Any, case: str = "") -> None:
    assert response.status_code == 401, case
    assert response.mimetype == "application/json", case
    assert isinstance(response.get_json()["message"], str), case
    assert session_set_cookies(response) == [], case


@only_on("sqlite")
@pytest.mark.parametrize("header", MALFORMED_AUTHORIZATION.values(), ids=MALFORMED_AUTHORIZATION.keys())
def test_malformed_authorization_401(make_app: Any, header: str) -> None:
    both = make_app()
    basic_only = make_app(PORTAL_AUTH="basic-auth")
    add_developer(both)

    assert_json_401(both.test_client(use_cookies=False).get("/auth", headers={"Authorization": header}))
    assert_json_401(basic_only.test_client(use_cookies=False).post("/auth", headers={"Authorization": header}))


@SERVER_BACKENDS
def test_malformed_authorization_table_401(app: Flask) -> None:
    client = app.test_client(use_cookies=False)

    for case, header in MALFORMED_AUTHORIZATION.items():
        assert_json_401(client.get("/auth", headers={"Authorization": header}), case)


MALFORMED_KEYS = {
    "empty": "",
    "space": " ",
    "whitespace": " \t  ",
    "nul": "\x00",
    "control characters": "\x1b\x07\x08",
    "latin-1": "\xe9\xff\xfe",
    "megabyte": "k" * 1_048_576,
    "just over the length limit": "k" * 257,
}


@only_on("sqlite")
@pytest.mark.parametrize("key", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
def test_malformed_apikey_401(app: Flask, key: str) -> None:
    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": key})

    assert_json_401(response)


@SERVER_BACKENDS
def test_malformed_apikey_table_401(app: Flask) -> None:
    client = app.test_client(use_cookies=False)

    for case, key in MALFORMED_KEYS.items():
        assert_json_401(client.get("/auth", headers={"apikey": key}), case)


def test_key_prefix_only_401(app: Flask) -> None:
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": key[:8]})

    assert_json_401(response)


def test_key_with_padding_401(app: Flask) -> None:
    key = add_api_key(app)

    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": f" {key}x "})

    assert_json_401(response)


@pytest.fixture
def body_app(make_app: Any) -> Flask:
    """An app that reads API keys from headers, query strings and bodies."""
    app = make_app(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_body": True, "key_in_query": True})
    add_developer(app)
    return app


def test_key_in_header_and_form_401(body_app: Flask) -> None:
    key = add_api_key(body_app)

    response = body_app.test_client(use_cookies=False).post("/auth", headers={"apikey": key}, data={"apikey": key})

    assert_json_401(response)


def test_key_in_header_and_json_401(body_app: Flask) -> None:
    key = add_api_key(body_app)

    response = body_app.test_client(use_cookies=False).post("/auth", headers={"apikey": key}, json={"apikey": key})

    assert_json_401(response)


def test_key_in_header_and_query_401(body_app: Flask) -> None:
    key = add_api_key(body_app)

    response = body_app.test_client(use_cookies=False).post(f"/auth?apikey={key}", headers={"apikey": key})

    assert_json_401(response)


def test_key_in_form_twice_401(body_app: Flask) -> None:
    key = add_api_key(body_app)

    response = body_app.test_client(use_cookies=False).post("/auth", data={"apikey": [key, key]})

    assert_json_401(response)


def test_key_header_twice_401(body_app: Flask) -> None:
    key = add_api_key(body_app)

    response = body_app.test_client(use_cookies=False).post("/auth", headers=[("apikey", key), ("apikey", key)])

    assert_json_401(response)


def test_key_given_twice_message(body_app: Flask) -> None:
    key = add_api_key(body_app)

    response = body_app.test_client(use_cookies=False).post("/auth", headers={"apikey": key}, data={"apikey": key})

    assert "once" in response.get_json()["message"]


JSON_BODIES = {
    "lone surrogate": '{"apikey": "\\ud800"}',
    "surrogate pair halves": '{"apikey": "\\udfff\\ud800"}',
    "nul": '{"apikey": "\\u0000"}',
    "whitespace": '{"apikey": " \\t "}',
    "empty": '{"apikey": ""}',
    "number": '{"apikey": 1e999}',
    "nested": '{"apikey": {"apikey": "x"}}',
    "deep nesting": '{"apikey": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "huge integer": '{"apikey": 1' + "0" * 5000 + "}",
    "not an object": '"apikey"',
    "truncated": '{"apikey": "',
}


@only_on("sqlite")
@pytest.mark.parametrize("body", JSON_BODIES.values(), ids=JSON_BODIES.keys())
def test_malformed_json_body_401(body_app: Flask, body: str) -> None:
    response = body_app.test_client(use_cookies=False).post("/auth", data=body, content_type="application/json")

    assert_json_401(response)


@SERVER_BACKENDS
def test_malformed_json_body_table_401(body_app: Flask) -> None:
    client = body_app.test_client(use_cookies=False)

    for case, body in JSON_BODIES.items():
        assert_json_401(client.post("/auth", data=body, content_type="application/json"), case)


FORM_BODIES = {
    "invalid utf-8": b"apikey=%ff%fe%fd",
    "percent nul": b"apikey=%00",
    "no value": b"apikey",
    "many fields": b"&".join(b"f%d=1" % number for number in range(5000)),
}


@only_on("sqlite")
@pytest.mark.parametrize("body", FORM_BODIES.values(), ids=FORM_BODIES.keys())
def test_malformed_form_body_401(body_app: Flask, body: bytes) -> None:
    response = body_app.test_client(use_cookies=False).post(
        "/auth", data=body, content_type="application/x-www-form-urlencoded"
    )

    assert_json_401(response)


def test_malformed_query_key_401(body_app: Flask) -> None:
    response = body_app.test_client(use_cookies=False).get("/auth?apikey=%ff%00%fe")

    assert_json_401(response)


def test_basic_and_bad_key_together_401(app: Flask) -> None:
    # A wrong key must not fall back to the right password or the other way round.
    headers = {**basic_header(EMAIL, "wrong password"), "apikey": "wrong key"}

    response = app.test_client(use_cookies=False).get("/auth", headers=headers)

    assert_json_401(response)


def test_options_auth_sets_no_cookie(app: Flask) -> None:
    response = app.test_client(use_cookies=False).options("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code < 500
    assert session_set_cookies(response) == []


def test_surrogate_password_rejected_at_creation(app: Flask) -> None:
    from flask_portal_session import CredentialError

    with pytest.raises(CredentialError):
        app.portal.developers.create("surrogate@example.test", "pass\udc80word")  # type: ignore[attr-defined]


def test_surrogate_password_login_invalid(app: Flask) -> None:
    result = app.portal.developers.check_password(EMAIL, "pass\udc80word")  # type: ignore[attr-defined]

    assert result.outcome == "invalid"


def test_surrogate_email_login_invalid(app: Flask) -> None:
    result = app.portal.developers.check_password("dev\udc80@example.test", PASSWORD)  # type: ignore[attr-defined]

    assert result.outcome == "invalid"


def test_surrogate_key_invalid(app: Flask) -> None:
    result = app.portal.developers.check_api_key("key\udc80")  # type: ignore[attr-defined]

    assert result.outcome == "invalid"


def test_json_error_bodies_parse(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/auth", headers={"Authorization": "Basic !!!!"})

    assert json.loads(response.get_data(as_text=True)) == {"message": "Invalid authentication credentials"}
