"""Logout is not a GET by default, so a link or an image on any site cannot log a user out.

Browsers send GET for links, images, prefetches and top-level navigations from
other sites. With the default ``logout_methods`` (POST and DELETE) none of
them ends the session, whatever the query string contains.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from conftest import TEST_SECRET
from flask_portal_session.config import SESSION_DEFAULTS, parse_session_conf

from .conftest import add_developer, cookie_header, log_in, row_count


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app()
    add_developer(app)
    return app


def test_default_methods_exclude_get() -> None:
    assert "GET" not in SESSION_DEFAULTS["logout_methods"]


@pytest.mark.parametrize("path", ["/private", "/auth", "/session", "/get", "/plain"])
def test_get_with_query_arg_keeps_session(app: Flask, path: str) -> None:
    token = log_in(app)

    app.test_client(use_cookies=False).get(f"{path}?session_logout=true", headers=cookie_header(token))

    assert row_count(app.portal.engine) == 1  # type: ignore[attr-defined]
    assert app.test_client(use_cookies=False).get("/private", headers=cookie_header(token)).status_code == 200


def test_get_runs_view(app: Flask) -> None:
    token = log_in(app)

    response = app.test_client(use_cookies=False).get("/private?session_logout=1", headers=cookie_header(token))

    assert response.status_code == 200
    assert "email" in response.get_json()


def test_get_sets_no_expiring_cookie(app: Flask) -> None:
    token = log_in(app)

    response = app.test_client(use_cookies=False).get("/private?session_logout=1", headers=cookie_header(token))

    assert response.headers.getlist("Set-Cookie") == []


@pytest.mark.parametrize("method", ["head", "options"])
def test_other_safe_methods_keep_session(app: Flask, method: str) -> None:
    token = log_in(app)

    getattr(app.test_client(use_cookies=False), method)("/private?session_logout=1", headers=cookie_header(token))

    assert row_count(app.portal.engine) == 1  # type: ignore[attr-defined]


def test_get_with_body_field_keeps_session(app: Flask) -> None:
    token = log_in(app)

    app.test_client(use_cookies=False).get(
        "/private",
        data="session_logout=1",
        content_type="application/x-www-form-urlencoded",
        headers=cookie_header(token),
    )

    assert row_count(app.portal.engine) == 1  # type: ignore[attr-defined]


def test_post_logs_out(app: Flask) -> None:
    token = log_in(app)

    response = app.test_client(use_cookies=False).post("/private?session_logout=1", headers=cookie_header(token))

    assert response.get_json() == {"message": "Logged out"}
    assert row_count(app.portal.engine) == 0  # type: ignore[attr-defined]


def test_get_logout_opt_in_warns() -> None:
    _, warnings = parse_session_conf({"secret": TEST_SECRET, "logout_methods": ["GET", "POST"]})

    assert any("GET" in warning and "link" in warning for warning in warnings)


def test_delete_off_when_not_listed(make_app: Any) -> None:
    app = make_app({"logout_methods": ["POST"]})
    add_developer(app)
    token = log_in(app)

    response = app.test_client(use_cookies=False).delete("/auth", headers=cookie_header(token))

    assert response.status_code == 405
    assert row_count(app.portal.engine) == 1  # type: ignore[attr-defined]


def test_default_samesite_blocks_cross_site_post(app: Flask) -> None:
    # A cross-site form can still POST; SameSite=Strict keeps the browser from
    # sending the cookie with it, so the logout finds no session to end.
    header = app.test_client(use_cookies=False).get("/put?a=1").headers["Set-Cookie"]

    assert "SameSite=Strict" in header
