"""Several cookies with the session's name in one request.

After ``cookie_domain`` changes from unset (host-only cookies) to a parent
domain, a browser keeps the old host-only cookie beside the new domain cookie
and sends both under one name, in an order the server cannot rely on.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import pytest
from flask import Flask

from conftest import FakeClock, StatementCounter
from flask_portal_session.interface import MAX_SESSION_COOKIES

from .conftest import (
    OTHER_EMAIL,
    OTHER_PASSWORD,
    add_developer,
    cookie_header,
    is_expiry,
    log_in,
    row_count,
    session_set_cookies,
)

HOST = "http://portal.example.test"
DOMAIN = "example.test"


@pytest.fixture
def old_app(make_app: Any) -> Flask:
    """The portal before the change: host-only cookies."""
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100})
    add_developer(app)
    return app


@pytest.fixture
def app(make_app: Any, old_app: Flask) -> Flask:
    """The same portal and database after cookie_domain was set."""
    return make_app({"cookie_lifetime": 1000, "cookie_renew": 100, "cookie_domain": DOMAIN})


def dead_logged_out(old_app: Flask) -> str:
    token = log_in(old_app)
    old_app.test_client(use_cookies=False).delete("/auth", headers=cookie_header(token))
    return token


def dead_expired(old_app: Flask, clock: FakeClock) -> str:
    token = log_in(old_app)
    clock.advance(2000)
    return token


def dead_other_secret(old_app: Flask) -> str:
    return "A" * 66


def cookie_attributes(header: str) -> dict[str, str]:
    cookie = SimpleCookie()
    cookie.load(header)
    morsel = cookie["session"]
    return {key: morsel[key] for key in ("domain", "path", "max-age")}


@pytest.mark.parametrize("dead_kind", ["logged out", "expired", "forged"])
@pytest.mark.parametrize("order", ["old first", "new first"])
def test_valid_cookie_used(old_app: Flask, app: Flask, clock: FakeClock, dead_kind: str, order: str) -> None:
    dead = {
        "logged out": lambda: dead_logged_out(old_app),
        "expired": lambda: dead_expired(old_app, clock),
        "forged": lambda: dead_other_secret(old_app),
    }[dead_kind]()
    current = log_in(app)
    tokens = (dead, current) if order == "old first" else (current, dead)

    response = app.test_client(use_cookies=False).get("/private", headers=cookie_header(*tokens), base_url=HOST)

    assert response.status_code == 200


@pytest.mark.parametrize("order", ["old first", "new first"])
def test_valid_cookie_data_used(old_app: Flask, app: Flask, order: str) -> None:
    dead = dead_logged_out(old_app)
    current = log_in(app)
    app.test_client(use_cookies=False).get("/put?theme=dark", headers=cookie_header(current))
    tokens = (dead, current) if order == "old first" else (current, dead)

    response = app.test_client(use_cookies=False).get("/get", headers=cookie_header(*tokens), base_url=HOST)

    assert response.get_json() == {"theme": "dark"}


@pytest.mark.parametrize("order", ["old first", "new first"])
def test_write_lands_in_valid_session(old_app: Flask, app: Flask, order: str) -> None:
    dead = dead_logged_out(old_app)
    current = log_in(app)
    tokens = (dead, current) if order == "old first" else (current, dead)

    app.test_client(use_cookies=False).get("/put?a=1", headers=cookie_header(*tokens), base_url=HOST)

    assert app.test_client(use_cookies=False).get("/get", headers=cookie_header(current)).get_json() == {"a": "1"}


@pytest.mark.parametrize("order", ["old first", "new first"])
def test_logout_expires_each_cookie(old_app: Flask, app: Flask, order: str) -> None:
    old = log_in(old_app)
    current = log_in(app)
    tokens = (old, current) if order == "old first" else (current, old)

    response = app.test_client(use_cookies=False).post(
        "/auth?session_logout=true", headers=cookie_header(*tokens), base_url=HOST
    )
    expiries = [cookie_attributes(header) for header in session_set_cookies(response) if is_expiry(header)]

    assert response.status_code == 200
    assert sorted(expiry["domain"] for expiry in expiries) == ["", DOMAIN]
    assert all(expiry["path"] == "/" for expiry in expiries)


@pytest.mark.parametrize("order", ["old first", "new first"])
def test_logout_deletes_each_row(old_app: Flask, app: Flask, order: str) -> None:
    old = log_in(old_app)
    current = log_in(app)
    tokens = (old, current) if order == "old first" else (current, old)

    app.test_client(use_cookies=False).post("/auth?session_logout=true", headers=cookie_header(*tokens), base_url=HOST)

    assert row_count(app.portal.engine) == 0  # type: ignore[attr-defined]


def test_logout_with_one_cookie_expires_one(app: Flask) -> None:
    current = log_in(app)

    response = app.test_client(use_cookies=False).delete("/auth", headers=cookie_header(current), base_url=HOST)

    assert [cookie_attributes(header)["domain"] for header in session_set_cookies(response)] == [DOMAIN]


def test_login_over_two_cookies_deletes_both(old_app: Flask, app: Flask) -> None:
    old = log_in(old_app)
    current = log_in(app)

    fresh = log_in(app, **cookie_header(old, current))

    assert row_count(app.portal.engine) == 1  # type: ignore[attr-defined]
    assert app.test_client(use_cookies=False).get("/private", headers=cookie_header(fresh)).status_code == 200


def test_two_sessions_of_two_developers(make_app: Any, app: Flask) -> None:
    # Two valid sessions under one name: the first valid one in the header is
    # used, the other is left alone, and neither developer gets the other's data.
    add_developer(app, OTHER_EMAIL, OTHER_PASSWORD)
    mine = log_in(app)
    theirs = log_in(app, OTHER_EMAIL, OTHER_PASSWORD)
    app.test_client(use_cookies=False).get("/put?owner=them", headers=cookie_header(theirs))

    response = app.test_client(use_cookies=False).get("/private", headers=cookie_header(mine, theirs))

    assert response.get_json()["data"] == {}


def test_duplicate_same_cookie(app: Flask) -> None:
    current = log_in(app)

    response = app.test_client(use_cookies=False).get("/private", headers=cookie_header(current, current))

    assert response.status_code == 200


def test_dead_cookies_then_valid(old_app: Flask, app: Flask) -> None:
    dead = [dead_logged_out(old_app) for _ in range(MAX_SESSION_COOKIES - 1)]
    current = log_in(app)

    response = app.test_client(use_cookies=False).get("/private", headers=cookie_header(*dead, current))

    assert response.status_code == 200


def test_renewal_cookie_set_once(old_app: Flask, app: Flask, clock: FakeClock) -> None:
    dead = dead_logged_out(old_app)
    current = log_in(app)
    clock.advance(950)

    response = app.test_client(use_cookies=False).get("/private", headers=cookie_header(dead, current), base_url=HOST)
    renewed = [header for header in session_set_cookies(response) if not is_expiry(header)]

    assert len(renewed) == 1
    assert not renewed[0].startswith(f"session={current};")


def test_many_cookies_bounded_queries(old_app: Flask, app: Flask) -> None:
    # Each well-tagged cookie costs a lookup. A browser sends two or three
    # cookies of one name at most, so a crafted header with dozens of stale
    # tokens must not turn one request into dozens of queries.
    dead = [dead_logged_out(old_app) for _ in range(30)]

    with StatementCounter(app.portal.engine) as counter:  # type: ignore[attr-defined]
        response = app.test_client(use_cookies=False).get("/get", headers=cookie_header(*dead))

    assert response.status_code == 200
    assert counter.count <= MAX_SESSION_COOKIES
