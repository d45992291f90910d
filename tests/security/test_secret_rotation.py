"""Secret rotation, and nodes whose secrets differ.

Rotation moves the old secret to ``secret_fallbacks``: sessions made under it
keep working, get re-sealed and re-tagged under the new secret on their next
write, and die once the fallback is removed. A node configured with another
secret than its peers treats their cookies as forged: anonymous requests, one
WARNING that names the likely cause, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from conftest import StatementCounter
from flask_portal_session.crypto import KeyRing, row_key

from .conftest import (
    add_developer,
    cookie_header,
    cookie_value,
    log_in,
    session_rows,
    session_set_cookies,
)

OLD_SECRET = "old-rotation-secret-0123456789-abcdef"
NEW_SECRET = "new-rotation-secret-0123456789-uvwxyz"
OTHER_SECRET = "other-node-secret-0123456789-qrstuv"
INTERFACE_LOGGER = "flask_portal_session.interface"


@pytest.fixture
def old_app(make_app: Any) -> Flask:
    app = make_app({"secret": OLD_SECRET})
    add_developer(app)
    return app


@pytest.fixture
def rotated_app(make_app: Any, old_app: Flask) -> Flask:
    """The same portal after rotation: the old secret is a fallback."""
    return make_app({"secret": NEW_SECRET, "secret_fallbacks": [OLD_SECRET]})


@pytest.fixture
def finished_app(make_app: Any, old_app: Flask) -> Flask:
    """The same portal after the fallback was removed."""
    return make_app({"secret": NEW_SECRET})


def key_id_of(app: Flask, token: str, secret: str) -> str:
    session_id, _ = KeyRing(secret).decode_token(token)
    key = row_key(session_id)
    return next(row.key_id for row in session_rows(app.portal.engine) if row.id == key)  # type: ignore[attr-defined]


def old_session(old_app: Flask) -> str:
    """Log in under the old secret and store some data; return the cookie."""
    token = log_in(old_app)
    old_app.test_client(use_cookies=False).get("/put?cart=3", headers=cookie_header(token))
    return token


def test_old_session_valid_with_fallback(old_app: Flask, rotated_app: Flask) -> None:
    token = old_session(old_app)

    response = rotated_app.test_client(use_cookies=False).get("/private", headers=cookie_header(token))

    assert response.status_code == 200
    assert response.get_json()["data"] == {"cart": "3"}


def test_old_row_sealed_with_old_key(old_app: Flask, rotated_app: Flask) -> None:
    token = old_session(old_app)

    assert key_id_of(rotated_app, token, OLD_SECRET) == KeyRing(OLD_SECRET).current_key_id


def test_write_reseals_with_new_key(old_app: Flask, rotated_app: Flask) -> None:
    token = old_session(old_app)

    rotated_app.test_client(use_cookies=False).get("/put?theme=dark", headers=cookie_header(token))

    assert key_id_of(rotated_app, token, OLD_SECRET) == KeyRing(NEW_SECRET).current_key_id


def test_write_retags_cookie(old_app: Flask, rotated_app: Flask) -> None:
    token = old_session(old_app)

    response = rotated_app.test_client(use_cookies=False).get("/put?theme=dark", headers=cookie_header(token))
    retagged = cookie_value(response)

    assert KeyRing(NEW_SECRET).decode_token(retagged) == (KeyRing(OLD_SECRET).decode_token(token)[0], 0)


def test_resealed_session_keeps_data(old_app: Flask, rotated_app: Flask) -> None:
    token = old_session(old_app)
    client = rotated_app.test_client(use_cookies=False)
    retagged = cookie_value(client.get("/put?theme=dark", headers=cookie_header(token)))

    response = rotated_app.test_client(use_cookies=False).get("/private", headers=cookie_header(retagged))

    assert response.get_json()["data"] == {"cart": "3", "theme": "dark"}


def test_resealed_session_survives_fallback_removal(
    old_app: Flask, rotated_app: Flask, finished_app: Flask
) -> None:
    token = old_session(old_app)
    client = rotated_app.test_client(use_cookies=False)
    retagged = cookie_value(client.get("/put?theme=dark", headers=cookie_header(token)))

    response = finished_app.test_client(use_cookies=False).get("/private", headers=cookie_header(retagged))

    assert response.status_code == 200


def test_old_session_dies_without_fallback(old_app: Flask, finished_app: Flask) -> None:
    token = old_session(old_app)
    client = finished_app.test_client(use_cookies=False)

    assert client.get("/private", headers=cookie_header(token)).status_code == 401
    assert client.get("/get", headers=cookie_header(token)).get_json() == {}


def test_old_cookie_new_row_dies_without_fallback(old_app: Flask, rotated_app: Flask, finished_app: Flask) -> None:
    # A read under the rotated app re-seals the row and re-tags the cookie,
    # but a client that kept the cookie tagged with the old secret cannot use
    # it once the fallback is gone.
    token = old_session(old_app)
    rotated_app.test_client(use_cookies=False).get("/private", headers=cookie_header(token))

    assert finished_app.test_client(use_cookies=False).get("/private", headers=cookie_header(token)).status_code == 401


def test_new_sessions_sealed_with_new_key(rotated_app: Flask) -> None:
    token = log_in(rotated_app)

    assert key_id_of(rotated_app, token, NEW_SECRET) == KeyRing(NEW_SECRET).current_key_id


def test_new_cookies_tagged_with_new_secret(rotated_app: Flask) -> None:
    token = log_in(rotated_app)

    assert KeyRing(NEW_SECRET).decode_token(token) is not None
    assert KeyRing(OLD_SECRET).decode_token(token) is None


def test_rolled_back_node_reads_new_rows(old_app: Flask, make_app: Any) -> None:
    # Rolling deploys: a node that already has the new secret as a fallback
    # reads sessions written by a node that already switched.
    switched = make_app({"secret": NEW_SECRET, "secret_fallbacks": [OLD_SECRET]})
    lagging = make_app({"secret": OLD_SECRET, "secret_fallbacks": [NEW_SECRET]})
    token = log_in(switched)

    assert lagging.test_client(use_cookies=False).get("/private", headers=cookie_header(token)).status_code == 200


# -- a node with a different secret ---------------------------------------------------------------


@pytest.fixture
def other_node(make_app: Any, old_app: Flask) -> Flask:
    """A node of the same portal, misconfigured with another secret."""
    return make_app({"secret": OTHER_SECRET})


def test_other_node_anonymous(old_app: Flask, other_node: Flask) -> None:
    token = old_session(old_app)
    client = other_node.test_client(use_cookies=False)

    assert client.get("/private", headers=cookie_header(token)).status_code == 401
    assert client.get("/get", headers=cookie_header(token)).get_json() == {}


def test_other_node_no_query(old_app: Flask, other_node: Flask) -> None:
    token = old_session(old_app)

    with StatementCounter(other_node.portal.engine) as counter:  # type: ignore[attr-defined]
        other_node.test_client(use_cookies=False).get("/get", headers=cookie_header(token))

    assert counter.count == 0


def test_other_node_no_500(old_app: Flask, other_node: Flask) -> None:
    token = old_session(old_app)
    client = other_node.test_client(use_cookies=False)
    statuses = [
        client.get("/private", headers=cookie_header(token)).status_code,
        client.get("/session", headers=cookie_header(token)).status_code,
        client.get("/put?a=1", headers=cookie_header(token)).status_code,
        client.post("/auth?session_logout=1", headers=cookie_header(token)).status_code,
        client.delete("/auth", headers=cookie_header(token)).status_code,
    ]

    assert statuses == [401, 401, 200, 200, 200]


def test_other_node_keeps_row(old_app: Flask, other_node: Flask) -> None:
    # The misconfigured node must not destroy sessions it cannot read.
    token = old_session(old_app)
    other_node.test_client(use_cookies=False).delete("/auth", headers=cookie_header(token))

    assert old_app.test_client(use_cookies=False).get("/private", headers=cookie_header(token)).status_code == 200


def test_other_node_logs_one_warning(
    old_app: Flask, other_node: Flask, caplog: pytest.LogCaptureFixture, tag_warning: None
) -> None:
    token = old_session(old_app)
    client = other_node.test_client(use_cookies=False)

    with caplog.at_level(logging.INFO, logger=INTERFACE_LOGGER):
        for _ in range(30):
            client.get("/private", headers=cookie_header(token))
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]

    assert len(warnings) == 1
    assert "secret" in warnings[0].getMessage()
    assert token not in warnings[0].getMessage()


def test_other_node_expires_cookie(old_app: Flask, other_node: Flask) -> None:
    token = old_session(old_app)

    response = other_node.test_client(use_cookies=False).get("/get", headers=cookie_header(token))

    assert "Max-Age=0" in session_set_cookies(response)[0]
