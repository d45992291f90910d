"""Logs never carry a cookie, a session id, a password, an API key or a secret.

Log files are read by more people than the database is, and kept longer. The
test runs every logged event (logins and failures, lockout, tampered cookies
and rows, renewal, logout, revocation, store failure) with all loggers at
DEBUG and searches every record for each secret.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from conftest import TEST_SECRET, FakeClock, basic_header
from flask_portal_session.crypto import KeyRing
from flask_portal_session.store import sessions_table

from .conftest import EMAIL, PASSWORD, add_api_key, add_developer, cookie_header, cookie_value, log_in, only_on

DATABASE_PASSWORD = "database-password-5e1d"


def forms(secret: str | bytes) -> Iterator[str]:
    raw = secret.encode() if isinstance(secret, str) else secret
    yield raw.decode("latin-1")
    yield raw.hex()
    yield base64.b64encode(raw).decode()
    yield base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Return every record's message and exception text, joined."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


@pytest.fixture
def scenario(make_app: Any, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100}, PORTAL_AUTH_LOGIN_ATTEMPTS=2)
    add_developer(app)
    add_developer(app, "locked@example.test", PASSWORD)
    key = add_api_key(app)
    client = app.test_client(use_cookies=False)
    secrets: list[str | bytes] = [PASSWORD, key, TEST_SECRET, "wrong password 1234"]

    with caplog.at_level(logging.DEBUG):
        token = log_in(app)
        by_key = cookie_value(client.get("/auth", headers={"apikey": key}))
        client.get("/auth", headers=basic_header(EMAIL, "wrong password 1234"))
        client.get("/auth", headers={"apikey": key[:-1] + "x"})
        for _ in range(3):
            client.get("/auth", headers=basic_header("locked@example.test", "wrong password 1234"))
        client.get("/get", headers=cookie_header(token[:-3] + "abc"))
        client.get("/get", headers=cookie_header(KeyRing("other-secret-" + "y" * 30).encode_token(b"\x01" * 32)))
        with app.portal.engine.begin() as connection:  # type: ignore[attr-defined]
            connection.execute(update(sessions_table).values(data=b"\x00" * 40))
        client.get("/private", headers=cookie_header(by_key))
        token = log_in(app)
        clock.advance(950)
        renewed = cookie_value(client.get("/private", headers=cookie_header(token)))
        client.delete("/auth", headers=cookie_header(renewed))
        with app.app_context():
            app.portal.revoke_sessions(app.portal.developers.require(EMAIL).id)  # type: ignore[attr-defined]

    ring = KeyRing(TEST_SECRET)
    tokens = [token, by_key, renewed]
    secrets.extend(tokens)
    secrets.extend(ring.decode_token(value)[0] for value in tokens)
    return {"text": logged_text(caplog), "secrets": secrets, "records": len(caplog.records)}


def test_scenario_logged_something(scenario: dict[str, Any]) -> None:
    assert scenario["records"] >= 8


def test_logs_have_no_secret(scenario: dict[str, Any]) -> None:
    for secret in scenario["secrets"]:
        for form in forms(secret):
            assert form not in scenario["text"]


@only_on("sqlite")
def test_store_failure_log_has_no_database_password(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql+psycopg://portal:{DATABASE_PASSWORD}@127.0.0.1:9/none?connect_timeout=2"
    app: Flask = make_app(PORTAL_SESSION_DATABASE_URI=url)
    client = app.test_client(use_cookies=False)

    with caplog.at_level(logging.DEBUG):
        put = client.get("/put?a=1")
        login = client.get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert put.status_code == 503
    assert login.status_code == 503
    assert any(record.levelno == logging.ERROR for record in caplog.records)
    assert DATABASE_PASSWORD not in logged_text(caplog)
