"""Replay: a cookie from before logout, revocation, a status change or a password change is dead.

Each case replays the old cookie on routes that read the session and checks
that the response is anonymous and that no row appears for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from conftest import FakeClock, basic_header
from flask_portal_session.store import developers_table

from .conftest import (
    EMAIL,
    OTHER_EMAIL,
    OTHER_PASSWORD,
    PASSWORD,
    add_developer,
    cookie_header,
    cookie_value,
    log_in,
    row_count,
    session_rows,
)


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100, "cookie_discard": 10})
    add_developer(app)
    return app


def post_logout(app: Flask, token: str) -> None:
    response = app.test_client(use_cookies=False).post("/auth?session_logout=true", headers=cookie_header(token))
    assert response.status_code == 200


def delete_logout(app: Flask, token: str) -> None:
    response = app.test_client(use_cookies=False).delete("/auth", headers=cookie_header(token))
    assert response.status_code == 200


def route_logout(app: Flask, token: str) -> None:
    response = app.test_client(use_cookies=False).post("/put?session_logout=1", headers=cookie_header(token))
    assert response.get_json() == {"message": "Logged out"}


def form_logout(app: Flask, token: str) -> None:
    response = app.test_client(use_cookies=False).post(
        "/put", data={"session_logout": "yes"}, headers=cookie_header(token)
    )
    assert response.get_json() == {"message": "Logged out"}


def revoke(app: Flask, token: str) -> None:
    with app.app_context():
        developer = app.portal.developers.require(EMAIL)  # type: ignore[attr-defined]
        assert app.portal.revoke_sessions(developer.id) >= 1  # type: ignore[attr-defined]


def set_status_pending(app: Flask, token: str) -> None:
    with app.app_context():
        app.portal.set_developer_status(EMAIL, "pending")  # type: ignore[attr-defined]


def set_status_in_database(app: Flask, token: str) -> None:
    # Another process (an admin tool, a second app) changes the status directly.
    with app.portal.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(update(developers_table).where(developers_table.c.email == EMAIL).values(status="revoked"))


def change_password(app: Flask, token: str) -> None:
    with app.app_context():
        app.portal.set_developer_password(EMAIL, "a brand new passphrase")  # type: ignore[attr-defined]


ENDINGS: dict[str, Callable[[Flask, str], None]] = {
    "post logout": post_logout,
    "delete logout": delete_logout,
    "logout on any route": route_logout,
    "logout by form": form_logout,
    "revoke_sessions": revoke,
    "set_developer_status": set_status_pending,
    "status changed in the database": set_status_in_database,
    "set_developer_password": change_password,
}


def assert_replay_anonymous(app: Flask, token: str) -> None:
    client = app.test_client(use_cookies=False)

    assert client.get("/private", headers=cookie_header(token)).status_code == 401
    assert client.get("/session", headers=cookie_header(token)).status_code == 401
    assert client.get("/get", headers=cookie_header(token)).get_json() == {}


@pytest.mark.parametrize("end", ENDINGS.values(), ids=ENDINGS.keys())
def test_replay_after_end_401(app: Flask, end: Callable[[Flask, str], None]) -> None:
    token = log_in(app)
    app.test_client(use_cookies=False).get("/put?cart=3", headers=cookie_header(token))

    end(app, token)

    assert_replay_anonymous(app, token)


@pytest.mark.parametrize("end", ENDINGS.values(), ids=ENDINGS.keys())
def test_replay_after_end_no_row(app: Flask, end: Callable[[Flask, str], None]) -> None:
    token = log_in(app)
    end(app, token)

    assert_replay_anonymous(app, token)

    assert row_count(app.portal.engine) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("end", ENDINGS.values(), ids=ENDINGS.keys())
def test_replay_after_end_other_developer_kept(app: Flask, end: Callable[[Flask, str], None]) -> None:
    add_developer(app, OTHER_EMAIL, OTHER_PASSWORD)
    other = log_in(app, OTHER_EMAIL, OTHER_PASSWORD)
    token = log_in(app)

    end(app, token)

    assert app.test_client(use_cookies=False).get("/private", headers=cookie_header(other)).status_code == 200


@pytest.mark.parametrize("end", [post_logout, revoke, change_password], ids=["logout", "revoke", "password"])
def test_replay_write_gets_new_anonymous_row(app: Flask, end: Callable[[Flask, str], None]) -> None:
    # A write through the dead cookie starts a new anonymous session under a
    # new id; it never brings the old session back.
    token = log_in(app)
    end(app, token)

    response = app.test_client(use_cookies=False).get("/put?a=1", headers=cookie_header(token))
    rows = session_rows(app.portal.engine)  # type: ignore[attr-defined]

    assert cookie_value(response) != token
    assert [row.developer_id for row in rows] == [None]


@pytest.mark.parametrize("end", [post_logout, revoke, change_password], ids=["logout", "revoke", "password"])
def test_replay_of_renewed_cookies(app: Flask, clock: FakeClock, end: Callable[[Flask, str], None]) -> None:
    # Both the old cookie (inside its discard window) and its successor die.
    old = log_in(app)
    clock.advance(950)
    new = cookie_value(app.test_client(use_cookies=False).get("/private", headers=cookie_header(old)))

    end(app, new)

    assert_replay_anonymous(app, old)
    assert_replay_anonymous(app, new)


def test_replay_after_logout_with_old_cookie(app: Flask, clock: FakeClock) -> None:
    # Logging out with the pre-renewal cookie also kills the successor.
    old = log_in(app)
    clock.advance(950)
    new = cookie_value(app.test_client(use_cookies=False).get("/private", headers=cookie_header(old)))

    post_logout(app, old)

    assert_replay_anonymous(app, new)
    assert row_count(app.portal.engine) == 0  # type: ignore[attr-defined]


def test_old_password_rejected_after_change(app: Flask) -> None:
    change_password(app, "")

    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 401
