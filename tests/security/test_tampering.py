"""Tampered cookies and tampered rows: anonymous, no 500, and cookies rejected without a query.

A cookie is ``base64url(version || session id || tag)``. Any change to it must
fail the tag check before the database is asked. A row whose sealed data was
changed, copied from another row or overwritten must not open: the request is
anonymous and a WARNING names the row by a short key prefix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from conftest import TEST_SECRET, StatementCounter
from flask_portal_session import crypto
from flask_portal_session.crypto import KeyRing, row_key
from flask_portal_session.store import sessions_table

from .conftest import (
    OTHER_EMAIL,
    OTHER_PASSWORD,
    add_developer,
    cookie_header,
    cookie_value,
    is_expiry,
    log_in,
    only_on,
    session_rows,
    session_set_cookies,
)

INTERFACE_LOGGER = "flask_portal_session.interface"


def raw_bytes(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def retag(body: bytes, secret: str = TEST_SECRET) -> str:
    """Return a token for ``body`` (version byte and session id) with a valid tag under ``secret``."""
    tag_key = crypto._derive(secret).tag_key
    tag = hmac.new(tag_key, body, hashlib.sha256).digest()[: crypto.TAG_BYTES]
    return encode(body + tag)


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app()
    add_developer(app)
    return app


def assert_anonymous_without_query(app: Flask, value: str) -> None:
    """Send ``value`` as the session cookie to /private and /get and check nothing was looked up."""
    client = app.test_client(use_cookies=False)
    headers = {"Cookie": f"session={value}"}
    with StatementCounter(app.portal.engine) as counter:  # type: ignore[attr-defined]
        private = client.get("/private", headers=headers)
        data = client.get("/get", headers=headers)

    assert private.status_code == 401, value
    assert data.status_code == 200, value
    assert data.get_json() == {}, value
    assert counter.count == 0, value


def sendable(value: str) -> bool:
    """Tell whether a header can carry the value: line breaks end a header."""
    return "\r" not in value and "\n" not in value


# -- tampered cookies -----------------------------------------------------------------------------


@only_on("sqlite")
def test_every_text_bit_flip_rejected(app: Flask) -> None:
    token = log_in(app)
    flipped = {
        token[:index] + chr(ord(token[index]) ^ (1 << bit)) + token[index + 1 :]
        for index in range(len(token))
        for bit in range(8)
    }

    for value in sorted(value for value in flipped if sendable(value)):
        assert_anonymous_without_query(app, value)


@only_on("sqlite")
def test_every_byte_bit_flip_rejected(app: Flask) -> None:
    raw = raw_bytes(log_in(app))

    for index in range(len(raw)):
        for bit in range(8):
            changed = bytearray(raw)
            changed[index] ^= 1 << bit
            assert_anonymous_without_query(app, encode(bytes(changed)))


@only_on("sqlite")
def test_truncated_tokens_rejected(app: Flask) -> None:
    token = log_in(app)

    for length in range(len(token)):
        assert_anonymous_without_query(app, token[:length])


@only_on("sqlite")
def test_extended_tokens_rejected(app: Flask) -> None:
    token = log_in(app)

    # Werkzeug strips spaces around a cookie value and the quotes of a quoted
    # one, as RFC 6265 parsers do, so those spellings are the same token.
    for suffix in ("A", "AA", "AAA", "AAAA", "=", "==", "%3D", ".", "\\"):
        assert_anonymous_without_query(app, token + suffix)


@only_on("sqlite")
def test_wrong_version_byte_rejected(app: Flask) -> None:
    body = raw_bytes(log_in(app))[: 1 + crypto.SESSION_ID_BYTES]

    for version in (0, 2, 0x7F, 0x80, 0xFF):
        assert_anonymous_without_query(app, retag(bytes([version]) + body[1:]))


@only_on("sqlite")
def test_longer_tag_rejected(app: Flask) -> None:
    raw = raw_bytes(log_in(app))
    body = raw[: 1 + crypto.SESSION_ID_BYTES]
    full_tag = hmac.new(crypto._derive(TEST_SECRET).tag_key, body, hashlib.sha256).digest()

    assert_anonymous_without_query(app, encode(body + full_tag))


@only_on("sqlite")
def test_other_encodings_rejected(app: Flask) -> None:
    token = log_in(app)
    raw = raw_bytes(token)
    variants = {
        "standard base64": base64.b64encode(raw).decode("ascii"),
        "padded": token + "=" * (-len(token) % 4),
        "hex": raw.hex(),
        "percent-encoded": "".join(f"%{ord(character):02X}" for character in token),
        "upper case": token.upper(),
        "reversed": token[::-1],
    }

    for value in variants.values():
        if value != token:
            assert_anonymous_without_query(app, value)


@only_on("sqlite")
def test_garbage_values_rejected(app: Flask) -> None:
    values = [
        "",
        "=",
        "!" * crypto.TOKEN_LENGTH,
        "A" * crypto.TOKEN_LENGTH,
        "\x00" * crypto.TOKEN_LENGTH,
        "\xff" * crypto.TOKEN_LENGTH,
        "é" * crypto.TOKEN_LENGTH,
        "A" * 8192,
        base64.urlsafe_b64encode(os.urandom(6144)).decode("ascii"),
        "null",
        "undefined",
        "deleted",
    ]

    for value in values:
        assert_anonymous_without_query(app, value)


@only_on("sqlite")
def test_token_of_other_secret_rejected(app: Flask) -> None:
    session_id, _ = KeyRing(TEST_SECRET).decode_token(log_in(app))

    assert_anonymous_without_query(app, KeyRing("another-secret-" + "x" * 32).encode_token(session_id))


@only_on("sqlite")
def test_tampered_cookie_is_expired(app: Flask) -> None:
    token = log_in(app)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BA")

    response = app.test_client(use_cookies=False).get("/get", headers=cookie_header(forged))

    assert is_expiry(session_set_cookies(response)[0])


@only_on("sqlite")
def test_tampered_cookie_keeps_real_session(app: Flask) -> None:
    token = log_in(app)
    forged = token[:10] + ("B" if token[10] != "B" else "C") + token[11:]
    client = app.test_client(use_cookies=False)

    client.get("/get", headers=cookie_header(forged))

    assert client.get("/private", headers=cookie_header(token)).status_code == 200


# -- tampered rows --------------------------------------------------------------------------------


def set_row(app: Flask, key: str, **values: Any) -> None:
    with app.portal.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(update(sessions_table).where(sessions_table.c.id == key).values(**values))


def row_of(app: Flask, token: str) -> Any:
    session_id, _ = KeyRing(TEST_SECRET).decode_token(token)
    key = row_key(session_id)
    return next(row for row in session_rows(app.portal.engine) if row.id == key)  # type: ignore[attr-defined]


def flip_byte(blob: bytes, index: int) -> bytes:
    changed = bytearray(blob)
    changed[index] ^= 0x01
    return bytes(changed)


def assert_row_treated_as_absent(app: Flask, token: str, caplog: pytest.LogCaptureFixture) -> None:
    client = app.test_client(use_cookies=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=INTERFACE_LOGGER):
        private = client.get("/private", headers=cookie_header(token))
        data = client.get("/get", headers=cookie_header(token))
    warnings = [record for record in caplog.records if record.name == INTERFACE_LOGGER]
    key = row_of(app, token).id

    assert private.status_code == 401
    assert data.status_code == 200
    assert data.get_json() == {}
    assert is_expiry(session_set_cookies(data)[0])
    assert len(warnings) == 2
    assert all(record.levelno == logging.WARNING for record in warnings)
    assert all(key[:8] in record.getMessage() for record in warnings)
    assert all(token not in record.getMessage() for record in warnings)
    assert all(key not in record.getMessage() for record in warnings)


@pytest.mark.parametrize("part", ["version", "nonce", "ciphertext", "gcm tag"])
def test_altered_sealed_data(app: Flask, part: str, caplog: pytest.LogCaptureFixture) -> None:
    token = log_in(app)
    blob = bytes(row_of(app, token).data)
    index = {"version": 0, "nonce": 5, "ciphertext": 20, "gcm tag": len(blob) - 1}[part]

    set_row(app, row_of(app, token).id, data=flip_byte(blob, index))

    assert_row_treated_as_absent(app, token, caplog)


def test_data_copied_from_other_row(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    add_developer(app, OTHER_EMAIL, OTHER_PASSWORD)
    token = log_in(app)
    other = row_of(app, log_in(app, OTHER_EMAIL, OTHER_PASSWORD))

    set_row(app, row_of(app, token).id, data=bytes(other.data), key_id=other.key_id)

    assert_row_treated_as_absent(app, token, caplog)


def test_anonymous_data_copied_into_login(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    anonymous = cookie_value(app.test_client(use_cookies=False).get("/put?role=admin"))
    token = log_in(app)

    set_row(app, row_of(app, token).id, data=bytes(row_of(app, anonymous).data))

    assert_row_treated_as_absent(app, token, caplog)


ARBITRARY_DATA = {
    "empty": b"",
    "one byte": b"\x01",
    "version and nonce only": b"\x01" + b"\x00" * 12,
    "zeros": b"\x00" * 64,
    "random": os.urandom(200),
    "plain json": b'{"developer_id": "x"}',
    "large": os.urandom(70_000),
}


@pytest.mark.parametrize("data", ARBITRARY_DATA.values(), ids=ARBITRARY_DATA.keys())
def test_data_replaced_by_arbitrary_bytes(app: Flask, data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    token = log_in(app)

    set_row(app, row_of(app, token).id, data=data)

    assert_row_treated_as_absent(app, token, caplog)


@pytest.mark.parametrize("key_id", ["", "0" * 16, "unknown"])
def test_key_id_replaced(app: Flask, key_id: str, caplog: pytest.LogCaptureFixture) -> None:
    token = log_in(app)

    set_row(app, row_of(app, token).id, key_id=key_id)

    assert_row_treated_as_absent(app, token, caplog)


def test_tampered_row_not_written_over(app: Flask) -> None:
    token = log_in(app)
    key = row_of(app, token).id
    set_row(app, key, data=b"\x00" * 64)

    response = app.test_client(use_cookies=False).get("/put?a=1", headers=cookie_header(token))

    assert cookie_value(response) != token
    assert bytes(row_of(app, token).data) == b"\x00" * 64
