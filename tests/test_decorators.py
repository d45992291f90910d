"""login_required, safe_next_path, current_developer and Vary: Cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify, request
from werkzeug.test import TestResponse

from conftest import basic_header
from flask_portal_session import current_developer, login_required, safe_next_path

EMAIL = "dev@example.test"
PASSWORD = "correct horse battery staple"
UNAUTHORIZED = {"message": "Unauthorized"}

#: The Accept header a browser sends when it navigates to a page.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

MakeApp = Callable[..., Flask]


def add_developer(app: Flask, status: str = "approved") -> Any:
    return app.portal.developers.create(EMAIL, PASSWORD, status=status)  # type: ignore[attr-defined]


def cookie_header(response: TestResponse) -> dict[str, str]:
    """Return a ``Cookie`` request header carrying the session cookie the response set."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("session="):
            return {"Cookie": header.split(";", 1)[0]}
    raise AssertionError(f"no session cookie in {response.headers.getlist('Set-Cookie')}")


def log_in(app: Flask) -> dict[str, str]:
    """Log in as the default developer and return the ``Cookie`` header to send."""
    response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))
    assert response.status_code == 200, response.get_data(as_text=True)
    return cookie_header(response)


def add_login_view(app: Flask) -> None:
    """Register the ``login`` endpoint that PORTAL_LOGIN_VIEW names."""

    @app.get("/login")
    def login() -> Any:
        return "login page"


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    app = make_app()
    add_developer(app)
    return app


@pytest.fixture
def login_app(make_app: MakeApp) -> Flask:
    """An app that redirects browsers to ``/login`` instead of returning 401."""
    app = make_app(PORTAL_LOGIN_VIEW="login")
    add_login_view(app)
    add_developer(app)
    return app


# -- login_required ---------------------------------------------------------------


def test_login_required_anonymous_401(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/private")

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_login_required_anonymous_session_401(app: Flask) -> None:
    client = app.test_client(use_cookies=False)
    anonymous = cookie_header(client.get("/put?cart=1"))

    response = client.get("/private", headers=anonymous)

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_login_required_garbage_cookie_401(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/private", headers={"Cookie": "session=garbage"})

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_login_required_runs_view(app: Flask) -> None:
    cookie = log_in(app)

    response = app.test_client(use_cookies=False).get("/private", headers=cookie)

    assert response.status_code == 200
    assert response.get_json()["email"] == EMAIL


def test_login_required_skips_view_when_anonymous(make_app: MakeApp) -> None:
    app = make_app()
    calls = []

    @app.get("/counted")
    @login_required
    def counted() -> Any:
        calls.append(1)
        return "ran"

    app.test_client(use_cookies=False).get("/counted")

    assert calls == []


def test_login_required_keeps_view_name() -> None:
    @login_required
    def dashboard() -> str:
        """Show the dashboard."""
        return "dashboard"

    assert dashboard.__name__ == "dashboard"
    assert dashboard.__doc__ == "Show the dashboard."


def test_login_required_passes_view_args(make_app: MakeApp) -> None:
    app = make_app()
    add_developer(app)

    @app.get("/items/<int:item_id>")
    @login_required
    def item(item_id: int) -> Any:
        return jsonify(item_id=item_id)

    response = app.test_client(use_cookies=False).get("/items/42", headers=log_in(app))

    assert response.get_json() == {"item_id": 42}


def test_login_required_after_logout_401(app: Flask) -> None:
    client = app.test_client(use_cookies=False)
    cookie = log_in(app)
    client.delete("/auth?session_logout=true", headers=cookie)

    response = client.get("/private", headers=cookie)

    assert response.status_code == 401


def test_login_required_unapproved_developer_401(app: Flask) -> None:
    # The status changes in the store only, so the session row is still there.
    cookie = log_in(app)
    app.portal.developers.set_status(EMAIL, "pending")  # type: ignore[attr-defined]

    response = app.test_client(use_cookies=False).get("/private", headers=cookie)

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_login_required_revoked_sessions_401(app: Flask) -> None:
    cookie = log_in(app)
    developer = app.portal.developers.require(EMAIL)  # type: ignore[attr-defined]
    app.portal.revoke_sessions(developer.id)  # type: ignore[attr-defined]

    response = app.test_client(use_cookies=False).get("/private", headers=cookie)

    assert response.status_code == 401


# -- login_required: redirect to PORTAL_LOGIN_VIEW ---------------------------------


def redirect_target(response: TestResponse) -> tuple[str, dict[str, list[str]]]:
    """Return the path and query parameters of a redirect's Location."""
    location = urlsplit(response.headers["Location"])
    return location.path, parse_qs(location.query)


def test_login_view_redirects_html(login_app: Flask) -> None:
    response = login_app.test_client(use_cookies=False).get("/private", headers={"Accept": "text/html"})
    path, _ = redirect_target(response)

    assert response.status_code in (302, 303)
    assert path == "/login"


def test_login_view_redirects_browser(login_app: Flask) -> None:
    response = login_app.test_client(use_cookies=False).get("/private", headers={"Accept": BROWSER_ACCEPT})

    assert response.status_code in (302, 303)


def test_login_view_next_has_path(login_app: Flask) -> None:
    response = login_app.test_client(use_cookies=False).get("/private", headers={"Accept": "text/html"})
    _, query = redirect_target(response)

    assert query["next"] == ["/private"]


def test_login_view_next_has_query(login_app: Flask) -> None:
    response = login_app.test_client(use_cookies=False).get(
        "/private?tab=keys&page=2", headers={"Accept": "text/html"}
    )
    _, query = redirect_target(response)

    assert query["next"] == ["/private?tab=keys&page=2"]


def test_login_view_next_is_same_site(login_app: Flask) -> None:
    response = login_app.test_client(use_cookies=False).get(
        "/private?return=https://evil.test/", headers={"Accept": "text/html"}
    )
    _, query = redirect_target(response)
    next_value = query["next"][0]

    assert next_value.startswith("/")
    assert not next_value.startswith("//")
    assert safe_next_path(next_value) == next_value


@pytest.mark.parametrize(
    "path_info",
    [
        pytest.param("//evil.test/x", id="double slash"),
        pytest.param("/\\evil.test/x", id="backslash"),
        pytest.param("/\\/evil.test/x", id="backslash slash"),
    ],
)
def test_login_view_next_safe_for_odd_paths(login_app: Flask, path_info: str) -> None:
    # Browsers read "//host" and a backslash after the first slash as another
    # site, so login_required must not copy such a request path into next.
    # Slash merging is off so that the view receives the path unchanged.
    login_app.url_map.merge_slashes = False

    @login_app.get("/<path:anything>")
    @login_required
    def catch_all(anything: str) -> str:
        return anything

    response = login_app.test_client(use_cookies=False).get(
        "/", headers={"Accept": "text/html"}, environ_overrides={"PATH_INFO": path_info}
    )
    _, query = redirect_target(response)
    next_value = query.get("next", ["/"])[0]

    assert response.status_code in (302, 303)
    assert safe_next_path(next_value) == next_value


def test_login_view_json_client_401(login_app: Flask) -> None:
    response = login_app.test_client(use_cookies=False).get("/private", headers={"Accept": "application/json"})

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_login_view_json_preferred_401(login_app: Flask) -> None:
    headers = {"Accept": "application/json, text/html;q=0.5"}

    response = login_app.test_client(use_cookies=False).get("/private", headers=headers)

    assert response.status_code == 401


def test_login_view_no_accept_401(login_app: Flask) -> None:
    response = login_app.test_client(use_cookies=False).get("/private")

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


def test_login_view_logged_in_runs_view(login_app: Flask) -> None:
    headers = {**log_in(login_app), "Accept": "text/html"}

    response = login_app.test_client(use_cookies=False).get("/private", headers=headers)

    assert response.status_code == 200


def test_no_login_view_html_client_401(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/private", headers={"Accept": "text/html"})

    assert response.status_code == 401
    assert response.get_json() == UNAUTHORIZED


# -- safe_next_path ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["/", "/a/b?x=1", "/dashboard", "/a/b?x=1&y=%2F%2Fevil.test", "/keys#list"])
def test_safe_next_path_accepts_path(value: str) -> None:
    assert safe_next_path(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.test/",
        "http://evil.test",
        "//evil.test",
        "///evil.test",
        "/\\evil.test",
        "\\\\evil.test",
        "/\\/evil.test",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,hi",
        "evil.test/path",
        "a/b",
        "",
        " /a",
        "/a\nb",
        "/a\rb",
        "/a\tb",
        "/\t/evil.test",
        "/a\x00b",
        "/a\x1bb",
        "/a\x7fb",
    ],
)
def test_safe_next_path_rejects(value: str) -> None:
    assert safe_next_path(value) == "/"


def test_safe_next_path_none_gives_default() -> None:
    assert safe_next_path(None) == "/"


def test_safe_next_path_custom_default() -> None:
    assert safe_next_path("https://evil.test/", default="/home") == "/home"


# -- current_developer ------------------------------------------------------------


def add_probe(app: Flask, seen: list[Any]) -> None:
    """Register ``/probe``, which records the object behind current_developer."""

    @app.get("/probe")
    def probe() -> Any:
        seen.append(current_developer._get_current_object())
        return jsonify(anonymous=not current_developer)


def test_current_developer_anonymous_none(app: Flask) -> None:
    seen: list[Any] = []
    add_probe(app, seen)

    app.test_client(use_cookies=False).get("/probe")

    assert seen == [None]


def test_current_developer_anonymous_session_none(app: Flask) -> None:
    seen: list[Any] = []
    add_probe(app, seen)
    client = app.test_client(use_cookies=False)
    anonymous = cookie_header(client.get("/put?cart=1"))

    client.get("/probe", headers=anonymous)

    assert seen == [None]


def test_current_developer_logged_in(app: Flask) -> None:
    seen: list[Any] = []
    add_probe(app, seen)
    developer = app.portal.developers.require(EMAIL)  # type: ignore[attr-defined]

    app.test_client(use_cookies=False).get("/probe", headers=log_in(app))

    assert len(seen) == 1
    assert seen[0].id == developer.id
    assert seen[0].email == EMAIL
    assert seen[0].status == "approved"


def test_current_developer_falsy_when_anonymous(app: Flask) -> None:
    seen: list[Any] = []
    add_probe(app, seen)

    response = app.test_client(use_cookies=False).get("/probe")

    assert response.get_json() == {"anonymous": True}


def test_current_developer_unapproved_none(app: Flask) -> None:
    seen: list[Any] = []
    add_probe(app, seen)
    cookie = log_in(app)
    app.portal.developers.set_status(EMAIL, "revoked")  # type: ignore[attr-defined]

    app.test_client(use_cookies=False).get("/probe", headers=cookie)

    assert seen == [None]


# -- Vary: Cookie -----------------------------------------------------------------


def test_vary_cookie_on_session_read(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/get")

    assert "Cookie" in response.vary


def test_vary_cookie_on_session_read_with_cookie(app: Flask) -> None:
    client = app.test_client(use_cookies=False)
    anonymous = cookie_header(client.get("/put?cart=1"))

    response = client.get("/get", headers=anonymous)

    assert response.get_json() == {"cart": "1"}
    assert "Cookie" in response.vary


def test_vary_cookie_on_session_write(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/put?cart=1")

    assert "Cookie" in response.vary


def test_vary_cookie_on_login_required(app: Flask) -> None:
    client = app.test_client(use_cookies=False)

    anonymous = client.get("/private")
    logged_in = client.get("/private", headers=log_in(app))

    assert "Cookie" in anonymous.vary
    assert "Cookie" in logged_in.vary


def test_vary_cookie_on_redirect(login_app: Flask) -> None:
    response = login_app.test_client(use_cookies=False).get("/private", headers={"Accept": "text/html"})

    assert "Cookie" in response.vary


def test_vary_cookie_on_current_developer(app: Flask) -> None:
    seen: list[Any] = []
    add_probe(app, seen)

    response = app.test_client(use_cookies=False).get("/probe")

    assert "Cookie" in response.vary


def test_vary_cookie_on_session_route(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/session", headers=log_in(app))

    assert "Cookie" in response.vary


def test_vary_cookie_kept_with_own_vary(make_app: MakeApp) -> None:
    app = make_app()

    @app.get("/localized")
    def localized() -> Any:
        from flask import session

        response = jsonify(theme=session.get("theme"))
        response.vary.add("Accept-Language")
        return response

    response = app.test_client(use_cookies=False).get("/localized")

    assert "Cookie" in response.vary
    assert "Accept-Language" in response.vary


def test_no_vary_cookie_without_session(app: Flask) -> None:
    response = app.test_client(use_cookies=False).get("/plain")

    assert "Cookie" not in response.vary
