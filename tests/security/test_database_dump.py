"""A full dump of the database gives an attacker nothing they can log in or read with.

The fixture creates every kind of stored state: logins by password and by
key, anonymous data, a renewed session inside its discard window and a
logged-out session. The tests dump every column of every table and search the
dump for each secret, in every encoding a careless implementation might use.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask, session
from sqlalchemy import MetaData, select

from conftest import TEST_SECRET, FakeClock
from flask_portal_session.crypto import KeyRing

from .conftest import (
    EMAIL,
    OTHER_EMAIL,
    OTHER_PASSWORD,
    PASSWORD,
    add_api_key,
    add_developer,
    cookie_header,
    cookie_value,
    log_in,
)

#: Session data a view stores; none of it may appear in the dump.
CANARY_TEXT = "canary-text-7f3a9c"
CANARY_BYTES = b"canary-bytes-\x00\x01\xfe"


def encodings(secret: bytes) -> Iterator[bytes]:
    """Yield the forms in which a secret could leak into a column."""
    yield secret
    yield secret.hex().encode()
    yield secret.hex().upper().encode()
    yield base64.b64encode(secret)
    yield base64.b64encode(secret).rstrip(b"=")
    yield base64.urlsafe_b64encode(secret).rstrip(b"=")


def dump(app: Flask) -> list[tuple[str, str, bytes]]:
    """Return ``(table, column, value as bytes)`` for every value in every table."""
    engine = app.portal.engine  # type: ignore[attr-defined]
    metadata = MetaData()
    metadata.reflect(engine)
    values = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    data = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else str(value).encode()
                    values.append((table.name, column, data))
    return values


@pytest.fixture
def stored(make_app: Any, clock: FakeClock) -> dict[str, Any]:
    """Create every kind of stored state; return the app, its dump and the secrets used."""
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100, "cookie_discard": 10})

    @app.get("/canary")
    def canary() -> Any:
        session["text"] = CANARY_TEXT
        session["bytes"] = CANARY_BYTES
        session["when"] = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        return {}

    add_developer(app)
    add_developer(app, OTHER_EMAIL, OTHER_PASSWORD)
    key = add_api_key(app)
    revoked_key = add_api_key(app, OTHER_EMAIL)
    developers = app.portal.developers  # type: ignore[attr-defined]
    developers.revoke_api_key(developers.list_api_keys(developers.require(OTHER_EMAIL).id)[0].id)
    client = app.test_client(use_cookies=False)

    by_password = log_in(app)
    client.get("/canary", headers=cookie_header(by_password))
    by_key = cookie_value(client.get("/auth", headers={"apikey": key}))
    client.get("/canary", headers=cookie_header(by_key))
    anonymous = cookie_value(client.get("/canary"))
    logged_out = log_in(app, OTHER_EMAIL, OTHER_PASSWORD)
    client.delete("/auth", headers=cookie_header(logged_out))
    clock.advance(950)
    renewed = cookie_value(client.get("/session", headers=cookie_header(by_password)))

    tokens = [by_password, by_key, anonymous, logged_out, renewed]
    ring = KeyRing(TEST_SECRET)
    return {
        "app": app,
        "dump": dump(app),
        "tokens": tokens,
        "session_ids": [ring.decode_token(token)[0] for token in tokens],
        "passwords": [PASSWORD, OTHER_PASSWORD],
        "keys": [key, revoked_key],
    }


def found_in(values: list[tuple[str, str, bytes]], secret: bytes) -> list[tuple[str, str]]:
    return [(table, column) for table, column, data in values for form in encodings(secret) if form in data]


def test_dump_has_every_table(stored: dict[str, Any]) -> None:
    tables = {table for table, _, _ in stored["dump"]}

    assert {"portal_sessions", "portal_developers", "portal_api_keys"} <= tables


def test_dump_has_no_cookie(stored: dict[str, Any]) -> None:
    for token in stored["tokens"]:
        assert found_in(stored["dump"], token.encode()) == []


def test_dump_has_no_session_id(stored: dict[str, Any]) -> None:
    for session_id in stored["session_ids"]:
        assert found_in(stored["dump"], session_id) == []


def test_dump_has_no_session_id_half(stored: dict[str, Any]) -> None:
    # A prefix of the id would shrink what an attacker has to guess.
    for session_id in stored["session_ids"]:
        assert found_in(stored["dump"], session_id[:16]) == []


def test_dump_has_no_password(stored: dict[str, Any]) -> None:
    for password in stored["passwords"]:
        assert found_in(stored["dump"], password.encode()) == []


def test_dump_has_no_api_key(stored: dict[str, Any]) -> None:
    for key in stored["keys"]:
        assert found_in(stored["dump"], key.encode()) == []


def test_dump_keeps_only_short_key_prefix(stored: dict[str, Any]) -> None:
    # The display prefix is 8 of the key's 43 characters: 48 of its 256 bits.
    for key in stored["keys"]:
        assert found_in(stored["dump"], key[:9].encode()) == []


def test_dump_has_no_session_data(stored: dict[str, Any]) -> None:
    for plaintext in (CANARY_TEXT.encode(), CANARY_BYTES, b"2030", b"Wed, 02 Jan 2030"):
        assert found_in(stored["dump"], plaintext) == []


def test_dump_has_no_secret(stored: dict[str, Any]) -> None:
    assert found_in(stored["dump"], TEST_SECRET.encode()) == []


def test_password_hashes_are_argon2id(stored: dict[str, Any]) -> None:
    hashes = [data for table, column, data in stored["dump"] if column == "password_hash"]

    assert len(hashes) == 2
    assert all(value.startswith(b"$argon2id$") for value in hashes)


def test_session_rows_have_no_plain_developer_data(stored: dict[str, Any]) -> None:
    # Rows carry the developer id for revocation, never the email.
    session_values = [data for table, _, data in stored["dump"] if table == "portal_sessions"]

    assert all(EMAIL.encode() not in value for value in session_values)


def test_sealed_blobs_differ_per_write(stored: dict[str, Any]) -> None:
    blobs = [data for table, column, data in stored["dump"] if table == "portal_sessions" and column == "data"]

    assert len(set(blobs)) == len(blobs)
