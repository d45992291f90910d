"""The example portal in examples/portal: pages, dashboard actions, CSRF, config and setup script."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask

from conftest import FAST_HASH, TEST_SECRET, basic_header
from flask_portal_session import ConfigError
from flask_portal_session.migrate import upgrade

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "portal"
EMAIL = "dev@example.com"
PASSWORD = "correct horse battery"
COOKIE = "portal_session"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml"}

#: Every variable the example reads; each test starts with none of them set.
ENV_NAMES = (
    "PORTAL_AUTH",
    "PORTAL_AUTH_CONF",
    "PORTAL_AUTH_LOGIN_ATTEMPTS",
    "PORTAL_SESSION_CONF",
    "PORTAL_SESSION_SECRET",
    "PORTAL_SESSION_DATABASE_URI",
    "PORTAL_GUI_HOST",
    "PORTAL_GUI_PROTOCOL",
    "PORTAL_API_URL",
    "PORTAL_URL_PREFIX",
    "PORTAL_PASSWORD_HASH_CONF",
)


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """The example's app module, imported from its file under a name no other test uses."""
    spec = importlib.util.spec_from_file_location("example_portal_app", EXAMPLE_DIR / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture
def portal_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_SESSION_SECRET", TEST_SECRET)
    monkeypatch.setenv("PORTAL_SESSION_DATABASE_URI", database_url)
    monkeypatch.setenv("PORTAL_PASSWORD_HASH_CONF", json.dumps(FAST_HASH))
    return monkeypatch


@pytest.fixture
def build_app(example: ModuleType, portal_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """Return ``build_app()``, which creates the example app from the current environment."""
    apps: list[Flask] = []

    def build() -> Flask:
        app = example.create_app(instance_path=str(tmp_path / "instance"))
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["portal_session"].engine.dispose()


@pytest.fixture
def app(build_app: Any) -> Flask:
    app = build_app()
    with app.app_context():
        app.extensions["portal_session"].developers.create(EMAIL, PASSWORD)
    return app


def log_in(client: Any) -> str:
    response = client.post("/auth", headers=basic_header(EMAIL, PASSWORD))
    assert response.status_code == 200, response.json
    return cookie_value(response)


def cookie_value(response: Any) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if COOKIE in cookie:
            return cookie[COOKIE].value
    raise AssertionError(f"no {COOKIE} cookie in {response.headers.getlist('Set-Cookie')}")


def dashboard_csrf_token(client: Any) -> str:
    response = client.get("/dashboard")
    assert response.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match is not None
    return match.group(1)


def api_keys(app: Flask) -> list[Any]:
    with app.app_context():
        state = app.extensions["portal_session"]
        developer = state.developers.get_by_email(EMAIL)
        return state.developers.list_api_keys(developer.id)


# -- pages --------------------------------------------------------------------


def test_login_page_renders_both_forms(app: Flask) -> None:
    response = app.test_client().get("/login")

    assert response.status_code == 200
    assert 'id="password-form"' in response.text
    assert 'id="key-form"' in response.text
    assert 'data-key-location="header" data-key-name="apikey"' in response.text
    assert '<label for="email">' in response.text
    assert '<label for="api-key">' in response.text
    assert 'data-next="/dashboard"' in response.text
    assert "login.js" in response.text
    assert "<script>" not in response.text
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_login_page_key_auth_only(build_app: Any, portal_env: pytest.MonkeyPatch) -> None:
    portal_env.setenv("PORTAL_AUTH", "key-auth")
    response = build_app().test_client().get("/login")

    assert 'id="key-form"' in response.text
    assert 'id="password-form"' not in response.text


def test_login_page_expired_message(app: Flask) -> None:
    client = app.test_client()

    expired = client.get("/login?expired=1")
    plain = client.get("/login")

    assert "Your session has expired. Please log in again." in expired.text
    assert "Your session has expired" not in plain.text


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [
        ("/dashboard?tab=keys", "/dashboard?tab=keys"),
        ("https://evil.example/", "/dashboard"),
        ("//evil.example/", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
    ],
)
def test_login_page_next_validated(app: Flask, next_value: str, expected: str) -> None:
    response = app.test_client().get("/login", query_string={"next": next_value})

    assert f'data-next="{expected}"' in response.text


def test_login_page_uses_api_url_and_prefix(build_app: Any, portal_env: pytest.MonkeyPatch) -> None:
    portal_env.setenv("PORTAL_API_URL", "http://api.portal.test:8004")
    portal_env.setenv("PORTAL_URL_PREFIX", "/portal")
    response = build_app().test_client().get("/login")

    assert 'data-api-url="http://api.portal.test:8004/portal"' in response.text
    assert "connect-src 'self' http://api.portal.test:8004" in response.headers["Content-Security-Policy"]


def test_dashboard_redirects_html_clients(app: Flask) -> None:
    response = app.test_client().get("/dashboard", headers=HTML)

    assert response.status_code == 302
    assert response.location == "/login?next=/dashboard"


def test_dashboard_401_for_json_clients(app: Flask) -> None:
    response = app.test_client().get("/dashboard", headers=JSON)

    assert response.status_code == 401
    assert response.json == {"message": "Unauthorized"}


def test_dashboard_after_login(app: Flask) -> None:
    client = app.test_client()
    log_in(client)

    response = client.get("/dashboard")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert EMAIL in response.text
    assert "this session" in response.text
    assert "You have no API keys yet." in response.text
    assert 'data-logout-method="DELETE"' in response.text


def test_dashboard_get_on_action_url_redirects(app: Flask) -> None:
    client = app.test_client()
    log_in(client)

    response = client.get("/dashboard/keys")

    assert response.status_code == 303
    assert response.location == "/dashboard"


# -- API keys -------------------------------------------------------------------


def test_create_key_with_csrf_token(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)

    response = client.post("/dashboard/keys", data={"name": "ci", "csrf_token": token}, headers=JSON)

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    key = response.json["key"]
    assert response.json["api_key"]["prefix"] == key[:8]
    assert response.json["api_key"]["name"] == "ci"
    assert [item["id"] for item in response.json["api_keys"]] == [response.json["api_key"]["id"]]
    assert key not in client.get("/dashboard").text
    assert app.test_client().post("/auth", headers={"apikey": key}).status_code == 200


def test_create_key_with_form_shows_it_once(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)

    response = client.post("/dashboard/keys", data={"csrf_token": token})

    assert response.status_code == 200
    assert "This key is shown only once" in response.text
    key = re.search(r'id="new-key-value" type="text" readonly spellcheck="false" value="([^"]+)"', response.text)
    assert key is not None
    assert key.group(1).startswith(api_keys(app)[0].prefix)


@pytest.mark.parametrize(
    "sent",
    [
        {},
        {"data": {"csrf_token": "wrong"}},
        {"headers": {"X-CSRF-Token": "wrong"}},
        {"data": {"csrf_token": "é"}},
    ],
    ids=["missing", "wrong field", "wrong header", "non-ascii"],
)
def test_create_key_rejected_without_csrf(app: Flask, sent: dict[str, Any]) -> None:
    client = app.test_client()
    log_in(client)
    dashboard_csrf_token(client)

    response = client.post(
        "/dashboard/keys", data=sent.get("data", {}), headers={**JSON, **sent.get("headers", {})}
    )

    assert response.status_code == 403
    assert "CSRF token" in response.json["message"]
    assert api_keys(app) == []


def test_create_key_rejected_before_dashboard_visit(app: Flask) -> None:
    client = app.test_client()
    log_in(client)

    response = client.post("/dashboard/keys", data={"csrf_token": ""}, headers=JSON)

    assert response.status_code == 403
    assert api_keys(app) == []


def test_create_key_header_token_accepted(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)

    response = client.post("/dashboard/keys", headers={**JSON, "X-CSRF-Token": token})

    assert response.status_code == 201


def test_create_key_name_too_long(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)

    response = client.post("/dashboard/keys", data={"name": "x" * 101, "csrf_token": token}, headers=JSON)

    assert response.status_code == 400
    assert "longer than 100" in response.json["message"]
    assert api_keys(app) == []


def test_create_key_limit(app: Flask, example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(example, "MAX_ACTIVE_API_KEYS", 2)
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)
    for _ in range(2):
        assert client.post("/dashboard/keys", data={"csrf_token": token}, headers=JSON).status_code == 201

    response = client.post("/dashboard/keys", data={"csrf_token": token}, headers=JSON)

    assert response.status_code == 409
    assert "Revoke one" in response.json["message"]
    assert len(api_keys(app)) == 2


def test_create_key_requires_login(app: Flask) -> None:
    response = app.test_client().post("/dashboard/keys", data={"csrf_token": "x"}, headers=JSON)

    assert response.status_code == 401


def test_revoke_key_with_csrf_token(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)
    created = client.post("/dashboard/keys", data={"csrf_token": token}, headers=JSON).json
    key_id = created["api_key"]["id"]

    response = client.post(f"/dashboard/keys/{key_id}/revoke", data={"csrf_token": token}, headers=JSON)

    assert response.status_code == 200
    assert response.json["api_keys"][0]["revoked_at"] is not None
    assert app.test_client().post("/auth", headers={"apikey": created["key"]}).status_code == 401


def test_revoke_key_with_form_redirects(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)
    key_id = client.post("/dashboard/keys", data={"csrf_token": token}, headers=JSON).json["api_key"]["id"]

    response = client.post(f"/dashboard/keys/{key_id}/revoke", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.location == "/dashboard"
    assert api_keys(app)[0].revoked_at is not None


def test_revoke_key_rejected_without_csrf(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)
    key_id = client.post("/dashboard/keys", data={"csrf_token": token}, headers=JSON).json["api_key"]["id"]

    response = client.post(f"/dashboard/keys/{key_id}/revoke", headers=JSON)

    assert response.status_code == 403
    assert api_keys(app)[0].revoked_at is None


def test_revoke_key_of_other_developer(app: Flask) -> None:
    with app.app_context():
        developers = app.extensions["portal_session"].developers
        developers.create("other@example.com", PASSWORD)
        _key, record = developers.create_api_key("other@example.com")
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)

    response = client.post(f"/dashboard/keys/{record.id}/revoke", data={"csrf_token": token}, headers=JSON)

    assert response.status_code == 404
    with app.app_context():
        assert developers.list_api_keys(record.developer_id)[0].revoked_at is None


# -- sessions ---------------------------------------------------------------------


def test_revoke_other_sessions(app: Flask) -> None:
    client = app.test_client()
    other = app.test_client()
    log_in(client)
    log_in(other)
    token = dashboard_csrf_token(client)

    response = client.post(
        "/dashboard/sessions/revoke", data={"scope": "others", "csrf_token": token}, headers=JSON
    )

    assert response.status_code == 200
    assert response.json["revoked"] == 1
    assert response.json["message"] == "Logged out 1 other session."
    assert [item["current"] for item in response.json["sessions"]] == [True]
    assert other.get("/api/me").status_code == 401
    assert client.get("/api/me").status_code == 200


def test_revoke_all_sessions(app: Flask) -> None:
    client = app.test_client()
    other = app.test_client()
    log_in(client)
    log_in(other)
    token = dashboard_csrf_token(client)

    response = client.post("/dashboard/sessions/revoke", data={"scope": "all", "csrf_token": token})

    assert response.status_code == 303
    assert response.location == "/login"
    assert any(header.startswith(f"{COOKIE}=;") for header in response.headers.getlist("Set-Cookie"))
    assert client.get("/api/me").status_code == 401
    assert other.get("/api/me").status_code == 401


def test_revoke_sessions_bad_scope(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)

    response = client.post("/dashboard/sessions/revoke", data={"scope": "some", "csrf_token": token}, headers=JSON)

    assert response.status_code == 400
    assert client.get("/api/me").status_code == 200


def test_revoke_sessions_rejected_without_csrf(app: Flask) -> None:
    client = app.test_client()
    other = app.test_client()
    log_in(client)
    log_in(other)
    dashboard_csrf_token(client)

    response = client.post("/dashboard/sessions/revoke", data={"scope": "all"}, headers=JSON)

    assert response.status_code == 403
    assert other.get("/api/me").status_code == 200


# -- JSON API and logout ---------------------------------------------------------------


def test_api_me(app: Flask) -> None:
    client = app.test_client()
    log_in(client)

    response = client.get("/api/me")

    assert response.status_code == 200
    assert response.json["developer"]["email"] == EMAIL
    assert response.json["developer"]["status"] == "approved"
    session_info = response.json["session"]
    assert 0 < session_info["expires_in"] <= 3600
    assert session_info["absolute_expires"] >= session_info["expires"]
    assert response.headers["Cache-Control"] == "no-store"


def test_api_me_anonymous(app: Flask) -> None:
    response = app.test_client().get("/api/me")

    assert response.status_code == 401
    assert response.json == {"message": "Unauthorized"}


def test_logout_then_dashboard_401(app: Flask) -> None:
    client = app.test_client()
    cookie = log_in(client)

    logout = client.delete("/auth?session_logout=true")
    client.set_cookie(COOKIE, cookie)
    replay = client.get("/dashboard", headers=JSON)

    assert logout.status_code == 200
    assert logout.json == {"message": "Logged out"}
    assert any(header.startswith(f"{COOKIE}=;") for header in logout.headers.getlist("Set-Cookie"))
    assert replay.status_code == 401
    assert replay.json == {"message": "Unauthorized"}


def test_logout_with_form_field(app: Flask) -> None:
    client = app.test_client()
    log_in(client)

    logout = client.post("/auth", data={"session_logout": "true"})

    assert logout.status_code == 200
    assert client.get("/dashboard", headers=JSON).status_code == 401


def test_errors_as_json_for_json_clients(app: Flask) -> None:
    client = app.test_client()

    missing = client.get("/no-such-page", headers=JSON)
    wrong_method = client.put("/login", headers=JSON)

    assert missing.status_code == 404
    assert "not found" in missing.json["message"]
    assert wrong_method.status_code == 405
    assert "GET" in wrong_method.headers["Allow"]


def test_database_failure_is_503(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    client = app.test_client()
    log_in(client)
    token = dashboard_csrf_token(client)
    developers = app.extensions["portal_session"].developers

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(developers, "create_api_key", fail)
    response = client.post("/dashboard/keys", data={"csrf_token": token}, headers=JSON)

    assert response.status_code == 503
    assert response.json == {"message": "The portal database is unavailable. Try again in a moment."}
    assert response.headers["Retry-After"] == "5"


# -- configuration ------------------------------------------------------------------


def test_defaults_from_environment(example: ModuleType, tmp_path: Path) -> None:
    config = example.config_from_environ({"PORTAL_SESSION_SECRET": TEST_SECRET}, str(tmp_path))

    assert config["PORTAL_AUTH"] == "basic-auth,key-auth"
    assert config["PORTAL_LOGIN_VIEW"] == "login"
    assert config["PORTAL_SESSION_CONF"] == {
        "secret": TEST_SECRET,
        "cookie_secure": False,
        "cookie_name": "portal_session",
    }
    assert "PORTAL_SESSION_DATABASE_URI" not in config
    assert not (tmp_path / "demo-secret").exists()


def test_environment_values_passed_through(example: ModuleType, tmp_path: Path) -> None:
    environ = {
        "PORTAL_SESSION_CONF": '{"secret": "s"}',
        "PORTAL_AUTH_CONF": '{"realm": "dev"}',
        "PORTAL_AUTH_LOGIN_ATTEMPTS": "5",
        "PORTAL_PASSWORD_HASH_CONF": json.dumps(FAST_HASH),
        "PORTAL_URL_PREFIX": "/portal",
        "PORTAL_GUI_HOST": "",
    }

    config = example.config_from_environ(environ, str(tmp_path))

    assert config["PORTAL_SESSION_CONF"] == '{"secret": "s"}'
    assert config["PORTAL_AUTH_CONF"] == '{"realm": "dev"}'
    assert config["PORTAL_AUTH_LOGIN_ATTEMPTS"] == 5
    assert config["PORTAL_PASSWORD_HASH_CONF"] == json.dumps(FAST_HASH)
    assert config["PORTAL_URL_PREFIX"] == "/portal"
    assert "PORTAL_GUI_HOST" not in config


def test_password_hash_conf_reaches_package(build_app: Any) -> None:
    app = build_app()

    conf = app.extensions["portal_session"].config.password_hash

    assert (conf.time_cost, conf.memory_cost, conf.parallelism) == (1, 8, 1)


def test_session_conf_from_environment(build_app: Any, portal_env: pytest.MonkeyPatch) -> None:
    portal_env.setenv("PORTAL_SESSION_CONF", json.dumps({"secret": TEST_SECRET, "cookie_name": "dev_portal"}))

    app = build_app()

    conf = app.extensions["portal_session"].config.session_conf
    assert conf.cookie_name == "dev_portal"
    assert conf.cookie_secure is True


def test_invalid_session_conf_names_line(build_app: Any, portal_env: pytest.MonkeyPatch) -> None:
    portal_env.setenv("PORTAL_SESSION_CONF", '{\n"secret": "abc"\n"cookie_secure": false\n}')

    with pytest.raises(ConfigError) as raised:
        build_app()

    assert "line 3" in str(raised.value)


def test_invalid_login_attempts_reported(build_app: Any, portal_env: pytest.MonkeyPatch) -> None:
    portal_env.setenv("PORTAL_AUTH_LOGIN_ATTEMPTS", "ten")

    with pytest.raises(ConfigError) as raised:
        build_app()

    assert "PORTAL_AUTH_LOGIN_ATTEMPTS" in str(raised.value)


def test_demo_secret_created_private(example: ModuleType, tmp_path: Path) -> None:
    instance = tmp_path / "instance"

    first = example.load_demo_secret(str(instance))
    second = example.load_demo_secret(str(instance))

    path = instance / "demo-secret"
    assert first == second
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry.name for entry in instance.iterdir()] == ["demo-secret"]


def test_demo_secret_permissions_tightened(example: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "demo-secret"
    path.write_text("existing-secret-0123456789abcdefghij\n")
    path.chmod(0o644)

    secret = example.load_demo_secret(str(tmp_path))

    assert secret == "existing-secret-0123456789abcdefghij"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_demo_secret_empty_file(example: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "demo-secret"
    path.write_text("")
    path.chmod(0o600)

    with pytest.raises(ConfigError) as raised:
        example.load_demo_secret(str(tmp_path))

    assert "Delete it" in str(raised.value)


def test_demo_secret_used_without_environment(
    build_app: Any, portal_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    portal_env.delenv("PORTAL_SESSION_SECRET")

    app = build_app()

    secret = (tmp_path / "instance" / "demo-secret").read_text().strip()
    assert app.extensions["portal_session"].config.session_conf.secret == secret


# -- setup_demo.py --------------------------------------------------------------------


def run_setup_demo(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items() if name not in ENV_NAMES}
    environ.update(
        PORTAL_SESSION_SECRET=TEST_SECRET,
        PORTAL_SESSION_DATABASE_URI=database_url,
        PORTAL_PASSWORD_HASH_CONF=json.dumps(FAST_HASH),
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLE_DIR / "setup_demo.py")],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_setup_demo_creates_developer_once(tmp_path: Path, example: ModuleType, portal_env: Any) -> None:
    # A fresh, unmigrated database: the script must run the migrations itself.
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"

    first = run_setup_demo(tmp_path, url)
    second = run_setup_demo(tmp_path, url)

    assert first.returncode == 0, first.stderr
    assert "shown only this once" in first.stdout
    password = re.search(r"password: (\S+)", first.stdout)
    key = re.search(r"API key:  (\S+)", first.stdout)
    assert password is not None and key is not None
    assert second.returncode == 0, second.stderr
    assert "already exists" in second.stdout
    assert "portal-session developers set-password demo@example.com" in second.stdout
    assert password.group(1) not in second.stdout

    app = example.create_app(
        {
            "PORTAL_SESSION_CONF": {"secret": TEST_SECRET, "cookie_secure": False, "cookie_name": COOKIE},
            "PORTAL_SESSION_DATABASE_URI": url,
            "PORTAL_PASSWORD_HASH_CONF": FAST_HASH,
        },
        instance_path=str(tmp_path / "instance"),
    )
    try:
        client = app.test_client()
        by_password = client.post("/auth", headers=basic_header("demo@example.com", password.group(1)))
        by_key = client.post("/auth", headers={"apikey": key.group(1)})
        assert by_password.status_code == 200
        assert by_key.status_code == 200
    finally:
        app.extensions["portal_session"].engine.dispose()
