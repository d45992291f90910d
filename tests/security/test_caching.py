"""Caches: responses that depend on the session vary on Cookie, and the cookie is never stored.

A shared cache that ignores the Cookie header hands one developer's page to
the next visitor. ``Vary: Cookie`` on every response that read the session
prevents that, and ``Cache-Control: no-store`` on every response that sets or
expires the session cookie keeps the cookie itself out of any cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, session

from conftest import FakeClock, basic_header

from .conftest import (
    EMAIL,
    PASSWORD,
    add_developer,
    cookie_header,
    cookie_value,
    log_in,
    only_on,
    session_set_cookies,
)

READS: dict[str, Callable[[], Any]] = {
    "in": lambda: "cart" in session,
    "len": lambda: len(session),
    "bool": lambda: bool(session),
    "get": lambda: session.get("cart"),
    "item": lambda: session["cart"] if "cart" in session else None,
    "iteration": lambda: list(iter(session)),
    "keys": lambda: list(session.keys()),
    "values": lambda: list(session.values()),
    "items": lambda: list(session.items()),
    "dict": lambda: dict(session),
    "equality": lambda: session == {},
    "setdefault": lambda: session.setdefault("cart", None),
    "pop": lambda: session.pop("missing", None),
    "permanent": lambda: session.permanent,
    "is_authenticated": lambda: getattr(session, "is_authenticated", None),
    "developer": lambda: getattr(session, "developer", None),
}


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100})
    add_developer(app)

    @app.get("/read/<name>")
    def read(name: str) -> Any:
        READS[name]()
        return {"read": name}

    @app.get("/item-missing")
    def item_missing() -> Any:
        try:
            session["missing"]
        except KeyError:
            pass
        return {}

    @app.get("/public")
    def public() -> Any:
        session["seen"] = True
        return {}, 200, {"Cache-Control": "public, max-age=3600"}

    return app


def varies_on_cookie(response: Any) -> bool:
    return "cookie" in {value.lower() for value in response.vary}


@only_on("sqlite")
@pytest.mark.parametrize("name", READS)
def test_read_varies_anonymous(app: Flask, name: str) -> None:
    response = app.test_client(use_cookies=False).get(f"/read/{name}")

    assert varies_on_cookie(response)


@only_on("sqlite")
@pytest.mark.parametrize("name", READS)
def test_read_varies_logged_in(app: Flask, name: str) -> None:
    token = log_in(app)

    response = app.test_client(use_cookies=False).get(f"/read/{name}", headers=cookie_header(token))

    assert varies_on_cookie(response)


def test_missing_item_varies(app: Flask) -> None:
    token = log_in(app)

    response = app.test_client(use_cookies=False).get("/item-missing", headers=cookie_header(token))

    assert varies_on_cookie(response)


def test_untouched_session_no_vary(app: Flask) -> None:
    token = log_in(app)

    response = app.test_client(use_cookies=False).get("/plain", headers=cookie_header(token))

    assert not varies_on_cookie(response)


def test_login_required_varies(app: Flask) -> None:
    anonymous = app.test_client(use_cookies=False).get("/private")
    logged_in = app.test_client(use_cookies=False).get("/private", headers=cookie_header(log_in(app)))

    assert varies_on_cookie(anonymous)
    assert varies_on_cookie(logged_in)


def test_session_route_not_stored(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/session", headers=cookie_header(log_in(app)))

    assert varies_on_cookie(response)
    assert response.headers["Cache-Control"] == "no-store"


def login_response(app: Flask, clock: FakeClock) -> Any:
    return app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))


def anonymous_create_response(app: Flask, clock: FakeClock) -> Any:
    return app.test_client(use_cookies=False).get("/put?a=1")


def public_view_response(app: Flask, clock: FakeClock) -> Any:
    # The view sets a public, cacheable Cache-Control but also starts a session.
    return app.test_client(use_cookies=False).get("/public")


def forged_cookie_response(app: Flask, clock: FakeClock) -> Any:
    return app.test_client(use_cookies=False).get("/plain", headers=cookie_header("A" * 66))


def logout_response(app: Flask, clock: FakeClock) -> Any:
    return app.test_client(use_cookies=False).delete("/auth", headers=cookie_header(log_in(app)))


def renewal_response(app: Flask, clock: FakeClock) -> Any:
    token = log_in(app)
    clock.advance(950)
    return app.test_client(use_cookies=False).get("/private", headers=cookie_header(token))


SETTING_RESPONSES = {
    "login": login_response,
    "anonymous create": anonymous_create_response,
    "public view": public_view_response,
    "forged cookie expired": forged_cookie_response,
    "logout": logout_response,
    "renewal": renewal_response,
}


@pytest.mark.parametrize("send", SETTING_RESPONSES.values(), ids=SETTING_RESPONSES.keys())
def test_set_cookie_not_stored(app: Flask, clock: FakeClock, send: Callable[[Flask, FakeClock], Any]) -> None:
    response = send(app, clock)

    assert session_set_cookies(response) != []
    assert response.headers["Cache-Control"] == "no-store"
    assert varies_on_cookie(response)


def test_retagged_cookie_not_stored(make_app: Any) -> None:
    old_secret = "old-secret-for-caching-0123456789-abc"
    old = make_app({"secret": old_secret})
    add_developer(old)
    token = log_in(old)
    rotated = make_app({"secret": "new-secret-for-caching-0123456789-xyz", "secret_fallbacks": [old_secret]})

    response = rotated.test_client(use_cookies=False).get("/put?a=2", headers=cookie_header(token))

    assert cookie_value(response) != token
    assert response.headers["Cache-Control"] == "no-store"


def test_failed_login_sets_no_cookie(app: Flask) -> None:
    # A failed login sets no cookie, so there is nothing for a cache to keep.
    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, "wrong"))

    assert session_set_cookies(response) == []
