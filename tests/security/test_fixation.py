"""Session fixation: a cookie held before login never authenticates after it.

The attacker plants a cookie of their own session in the victim's browser,
from a sibling subdomain, through an injected header or on a shared machine,
and waits for the victim to log in. Or the attacker invents a cookie value
and hopes the server adopts it.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from conftest import TEST_SECRET, FakeClock, basic_header
from flask_portal_session.crypto import KeyRing, new_session_id, row_key
from flask_portal_session.store import sessions_table

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
    row_count,
)


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100, "cookie_discard": 10})
    add_developer(app)
    return app


def planted_session(app: Flask) -> str:
    """Return the cookie of an anonymous session the attacker started for themselves."""
    return cookie_value(app.test_client(use_cookies=False).get("/put?planted=1"))


def assert_worthless(app: Flask, token: str) -> None:
    """Check that ``token`` opens no session: not logged in, no data."""
    client = app.test_client(use_cookies=False)

    assert client.get("/private", headers=cookie_header(token)).status_code == 401
    assert client.get("/session", headers=cookie_header(token)).status_code == 401
    assert client.get("/get", headers=cookie_header(token)).get_json() == {}


def stored_keys(app: Flask) -> set[str]:
    with app.portal.engine.connect() as connection:  # type: ignore[attr-defined]
        return set(connection.execute(select(sessions_table.c.id)).scalars())


def test_planted_cookie_dead_after_login(app: Flask) -> None:
    planted = planted_session(app)

    victim = log_in(app, **cookie_header(planted))

    assert victim != planted
    assert_worthless(app, planted)


def test_planted_cookie_dead_after_key_login(app: Flask) -> None:
    key = add_api_key(app)
    planted = planted_session(app)

    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": key, **cookie_header(planted)})

    assert cookie_value(response) != planted
    assert_worthless(app, planted)


def test_planted_cookie_sees_no_victim_data(app: Flask) -> None:
    planted = planted_session(app)
    victim = log_in(app, **cookie_header(planted))

    app.test_client(use_cookies=False).get("/put?card=4111", headers=cookie_header(victim))

    assert app.test_client(use_cookies=False).get("/get", headers=cookie_header(planted)).get_json() == {}


def test_planted_login_of_attacker_dead(app: Flask) -> None:
    # The attacker plants the cookie of their own logged-in session.
    add_developer(app, OTHER_EMAIL, OTHER_PASSWORD)
    planted = log_in(app, OTHER_EMAIL, OTHER_PASSWORD)

    victim = log_in(app, **cookie_header(planted))

    assert victim != planted
    assert_worthless(app, planted)


def test_planted_renewed_cookie_dead(app: Flask, clock: FakeClock) -> None:
    # The attacker renews their session and keeps the successor, while the
    # victim keeps the old cookie, still inside its discard window.
    planted = planted_session(app)
    clock.advance(950)
    successor = cookie_value(app.test_client(use_cookies=False).get("/get", headers=cookie_header(planted)))
    clock.advance(5)

    victim = log_in(app, **cookie_header(planted))

    assert victim not in (planted, successor)
    assert_worthless(app, successor)
    assert_worthless(app, planted)


def test_planted_successor_dead(app: Flask, clock: FakeClock) -> None:
    # The victim has the successor and the attacker kept the old cookie.
    planted = planted_session(app)
    clock.advance(950)
    successor = cookie_value(app.test_client(use_cookies=False).get("/get", headers=cookie_header(planted)))

    log_in(app, **cookie_header(successor))

    assert_worthless(app, planted)


def test_login_leaves_one_row(app: Flask) -> None:
    planted = planted_session(app)

    log_in(app, **cookie_header(planted))

    assert row_count(app.portal.engine) == 1  # type: ignore[attr-defined]


def test_invented_value_not_adopted(app: Flask) -> None:
    invented = "A" * 66

    response = app.test_client(use_cookies=False).get("/put?a=1", headers=cookie_header(invented))

    assert cookie_value(response) != invented


def test_invented_valid_token_not_adopted(app: Flask) -> None:
    # Even a well-formed token with a valid tag (a leaked secret) names no row
    # and must not become a session under the id the attacker chose.
    session_id = new_session_id()
    chosen = KeyRing(TEST_SECRET).encode_token(session_id)

    put = app.test_client(use_cookies=False).get("/put?a=1", headers=cookie_header(chosen))
    login = app.test_client(use_cookies=False).get(
        "/auth", headers={**basic_header(EMAIL, PASSWORD), **cookie_header(chosen)}
    )

    assert cookie_value(put) != chosen
    assert cookie_value(login) != chosen
    assert row_key(session_id) not in stored_keys(app)
    assert_worthless(app, chosen)


def test_each_login_fresh_id(app: Flask) -> None:
    ring = KeyRing(TEST_SECRET)
    token = planted_session(app)
    session_ids = set()

    for _ in range(20):
        token = log_in(app, **cookie_header(token))
        session_ids.add(ring.decode_token(token)[0])

    assert len(session_ids) == 20


def test_logins_without_cookie_fresh_ids(app: Flask) -> None:
    tokens = {log_in(app) for _ in range(20)}

    assert len(tokens) == 20


def test_relogin_kills_previous_login(app: Flask) -> None:
    first = log_in(app)

    second = log_in(app, **cookie_header(first))

    assert second != first
    assert_worthless(app, first)


def test_failed_login_keeps_planted_anonymous(app: Flask) -> None:
    # A failed login changes nothing: in particular it does not turn the
    # planted cookie into a logged-in session.
    planted = planted_session(app)

    response = app.test_client(use_cookies=False).get(
        "/auth", headers={**basic_header(EMAIL, "wrong password"), **cookie_header(planted)}
    )

    assert response.status_code == 401
    assert app.test_client(use_cookies=False).get("/private", headers=cookie_header(planted)).status_code == 401
