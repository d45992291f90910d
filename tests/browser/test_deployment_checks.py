"""Cookie settings that would make logins fail silently in a browser are reported before a user meets them.

No browser runs here: these are the startup errors, the per-request warning
and the ``check-config`` output that the browser tests show the need for.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_portal_session import ConfigError, PortalSession, interface
from flask_portal_session.cli import portal_session_cli
from flask_portal_session.config import parse_session_conf

from .portal_browser import EMAIL, EXAMPLE_DIR, FAST_HASH, PASSWORD, REPO_ROOT, SECRET, migrated_database

DEPLOYMENT_DOC = REPO_ROOT / "docs" / "deployment.md"

#: The message fragment of the Secure-over-HTTP warning that interface.py logs.
INSECURE_WARNING = "Browsers drop Secure cookies over HTTP"


def build_app(tmp_path: Path, session_conf: dict[str, Any], **config: Any) -> Flask:
    """Build a small Flask app with PortalSession; raises ConfigError like any app would."""
    app = Flask("deployment_checks", instance_path=str(tmp_path / "instance"))
    app.config.update(
        TESTING=True,
        PORTAL_AUTH="basic-auth",
        PORTAL_SESSION_CONF={"secret": SECRET, **session_conf},
        PORTAL_SESSION_DATABASE_URI=f"sqlite:///{tmp_path / 'checks.sqlite3'}",
        PORTAL_PASSWORD_HASH_CONF=FAST_HASH,
    )
    app.config.update(config)
    PortalSession(app)
    return app


def basic_auth(email: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{email}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


# -- errors at init_app ------------------------------------------------------------------


def test_secure_cookie_with_http_api_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        build_app(tmp_path, {"cookie_secure": True}, PORTAL_API_URL="http://portalapi.xyz.test")

    message = str(raised.value)
    assert raised.value.setting == "PORTAL_SESSION_CONF"
    assert raised.value.key == "cookie_secure"
    assert "PORTAL_API_URL (http://portalapi.xyz.test) uses plain HTTP" in message
    assert "browsers will not send a Secure cookie over plain HTTP" in message
    assert "Set cookie_secure to false for plain-HTTP testing, or serve the portal over HTTPS." in message


def test_secure_cookie_with_default_gui_protocol(tmp_path: Path) -> None:
    # Kong's portal_gui_protocol defaults to http, and so does PORTAL_GUI_PROTOCOL.
    with pytest.raises(ConfigError) as raised:
        build_app(
            tmp_path,
            {"cookie_secure": True},
            PORTAL_GUI_HOST="portal.xyz.test",
            PORTAL_API_URL="https://portal.xyz.test",
        )

    message = str(raised.value)
    assert raised.value.key == "cookie_secure"
    assert "PORTAL_GUI_HOST (http://portal.xyz.test) uses plain HTTP" in message
    assert "PORTAL_GUI_PROTOCOL defaults to http" in message


def test_hosts_without_common_parent(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        build_app(
            tmp_path,
            {"cookie_secure": True},
            PORTAL_GUI_HOST="portal.xyz.test",
            PORTAL_GUI_PROTOCOL="https",
            PORTAL_API_URL="https://api.other.example",
        )

    message = str(raised.value)
    assert raised.value.key == "cookie_domain"
    assert "share no parent domain, so no cookie can reach both" in message
    assert "set cookie_domain to it" in message


def test_sibling_hosts_without_cookie_domain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        build_app(
            tmp_path,
            {"cookie_secure": False},
            PORTAL_GUI_HOST="portal.xyz.test",
            PORTAL_API_URL="http://portalapi.xyz.test",
        )

    message = str(raised.value)
    assert raised.value.key == "cookie_domain"
    assert '["cookie_domain"] is not set' in message
    assert 'Set "cookie_domain": ".xyz.test".' in message


def test_cookie_domain_missing_a_host(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        build_app(
            tmp_path,
            {"cookie_secure": False, "cookie_domain": ".abc.test"},
            PORTAL_GUI_HOST="portal.xyz.test",
            PORTAL_API_URL="http://portalapi.xyz.test",
        )

    assert raised.value.key == "cookie_domain"
    assert "does not cover both" in str(raised.value)
    assert 'Set "cookie_domain": ".xyz.test".' in str(raised.value)


def test_samesite_none_needs_secure(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        build_app(tmp_path, {"cookie_secure": False, "cookie_samesite": "None"})

    assert raised.value.key == "cookie_samesite"
    assert "Set cookie_secure to true" in str(raised.value)


def test_host_prefix_with_domain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        build_app(tmp_path, {"cookie_name": "__Host-portal_session", "cookie_domain": ".xyz.test"})

    assert raised.value.key == "cookie_name"
    assert "Remove cookie_domain" in str(raised.value)


def test_sibling_config_loads(tmp_path: Path) -> None:
    app = build_app(
        tmp_path,
        {"cookie_secure": False, "cookie_domain": ".xyz.test", "cookie_samesite": "off"},
        PORTAL_GUI_HOST="portal.xyz.test",
        PORTAL_API_URL="http://portalapi.xyz.test",
    )

    config = app.extensions["portal_session"].config
    assert config.gui_origin == "http://portal.xyz.test"
    assert config.session_conf.cookie_domain == ".xyz.test"
    assert config.session_conf.cookie_samesite is None


@pytest.fixture
def sibling_api(tmp_path: Path) -> Iterator[Flask]:
    """The API app of the sibling-subdomain deployment, configured as on portalapi.xyz.test."""
    app = build_app(
        tmp_path,
        {"cookie_secure": False, "cookie_domain": ".xyz.test", "cookie_samesite": "off"},
        PORTAL_GUI_HOST="portal.xyz.test",
        PORTAL_API_URL="http://portalapi.xyz.test",
    )
    yield app
    app.extensions["portal_session"].engine.dispose()


def test_cors_allows_gui_origin(sibling_api: Flask) -> None:
    client = sibling_api.test_client()

    preflight = client.options(
        "/auth",
        headers={
            "Origin": "http://portal.xyz.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, x-requested-with",
        },
    )
    answer = client.get("/session", headers={"Origin": "http://portal.xyz.test"})

    assert preflight.headers["Access-Control-Allow-Origin"] == "http://portal.xyz.test"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert answer.status_code == 401
    assert answer.headers["Access-Control-Allow-Origin"] == "http://portal.xyz.test"
    assert answer.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert "Origin" in answer.headers["Vary"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://elsewhere.test",
        "http://portal.xyz.test:8080",
        "https://portal.xyz.test",
        "http://portalapi.xyz.test",
        "null",
    ],
)
def test_cors_rejects_other_origins(sibling_api: Flask, origin: str) -> None:
    client = sibling_api.test_client()

    preflight = client.options(
        "/auth",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    answer = client.get("/session", headers={"Origin": origin})

    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Access-Control-Allow-Credentials" not in answer.headers


# -- the deployment guide's own examples ------------------------------------------------------


def deployment_doc_configs() -> list[str]:
    """Return the JSON blocks of docs/deployment.md that hold a PORTAL_SESSION_CONF."""
    text = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    return [block for block in blocks if '"secret"' in block]


def test_deployment_doc_configs_parse() -> None:
    blocks = deployment_doc_configs()

    assert len(blocks) >= 3
    for block in blocks:
        conf, _warnings = parse_session_conf(block)
        assert conf.storage == "kong"


# -- the warning when a Secure cookie is set over plain HTTP ----------------------------------


@pytest.fixture
def fresh_insecure_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the rate-limited Secure-over-HTTP warning a fresh limit for this test."""
    monkeypatch.setattr(interface, "_insecure_request_log", interface._RateLimitedWarning())


@pytest.fixture
def secure_app(tmp_path: Path) -> Iterator[Flask]:
    """An app with cookie_secure true (the default) and one developer, on a migrated database."""
    url = migrated_database(tmp_path, "secure")
    app = build_app(tmp_path, {"cookie_name": "portal_session"}, PORTAL_SESSION_DATABASE_URI=url)
    with app.app_context():
        app.extensions["portal_session"].developers.create(EMAIL, PASSWORD)
    yield app
    app.extensions["portal_session"].engine.dispose()


def insecure_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "flask_portal_session.interface"
        and record.levelno == logging.WARNING
        and INSECURE_WARNING in record.getMessage()
    ]


@pytest.mark.usefixtures("fresh_insecure_log")
def test_secure_over_http_warns_once(secure_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="flask_portal_session.interface")
    client = secure_app.test_client()

    first = client.post("/auth", headers=basic_auth(EMAIL, PASSWORD))
    second = client.post("/auth", headers=basic_auth(EMAIL, PASSWORD))

    assert first.status_code == 200
    assert second.status_code == 200
    assert "Secure" in first.headers["Set-Cookie"]
    warnings = insecure_warnings(caplog)
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "apply ProxyFix behind a TLS-terminating proxy" in message
    assert "set cookie_secure to false for plain-HTTP testing" in message


@pytest.mark.usefixtures("fresh_insecure_log")
def test_secure_over_https_no_warning(secure_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="flask_portal_session.interface")
    client = secure_app.test_client()

    response = client.post("/auth", headers=basic_auth(EMAIL, PASSWORD), base_url="https://portal.xyz.test")

    assert response.status_code == 200
    assert insecure_warnings(caplog) == []


@pytest.mark.usefixtures("fresh_insecure_log")
def test_proxy_fix_forwarded_https_no_warning(secure_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="flask_portal_session.interface")
    secure_app.wsgi_app = ProxyFix(secure_app.wsgi_app, x_proto=1)  # type: ignore[method-assign]
    client = secure_app.test_client()

    response = client.post(
        "/auth",
        headers={**basic_auth(EMAIL, PASSWORD), "X-Forwarded-Proto": "https"},
    )

    assert response.status_code == 200
    assert "Secure" in response.headers["Set-Cookie"]
    assert insecure_warnings(caplog) == []


@pytest.mark.usefixtures("fresh_insecure_log")
def test_proxy_fix_forwarded_http_warns(secure_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="flask_portal_session.interface")
    secure_app.wsgi_app = ProxyFix(secure_app.wsgi_app, x_proto=1)  # type: ignore[method-assign]
    client = secure_app.test_client()

    response = client.post(
        "/auth",
        headers={**basic_auth(EMAIL, PASSWORD), "X-Forwarded-Proto": "http"},
        base_url="https://portal.xyz.test",
    )

    # The proxy reports that the browser used plain HTTP, whatever scheme the hop to the app used.
    assert response.status_code == 200
    assert len(insecure_warnings(caplog)) == 1


@pytest.mark.usefixtures("fresh_insecure_log")
def test_without_proxy_fix_header_ignored(secure_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="flask_portal_session.interface")
    client = secure_app.test_client()

    # Without ProxyFix the app must not trust the header, so the request still counts as HTTP.
    response = client.post(
        "/auth",
        headers={**basic_auth(EMAIL, PASSWORD), "X-Forwarded-Proto": "https"},
    )

    assert response.status_code == 200
    assert len(insecure_warnings(caplog)) == 1


# -- flask portal-session check-config -----------------------------------------------------------


def run_check_config(tmp_path: Path, session_conf: dict[str, Any], **config: Any) -> Any:
    """Run ``check-config`` through click, loading the app the way ``flask --app`` does."""

    def create_app() -> Flask:
        return build_app(tmp_path, session_conf, **config)

    return CliRunner().invoke(portal_session_cli, ["check-config"], obj=ScriptInfo(create_app=create_app))


def test_check_config_http_api_url(tmp_path: Path) -> None:
    result = run_check_config(tmp_path, {"cookie_secure": True}, PORTAL_API_URL="http://portalapi.xyz.test")

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: PORTAL_API_URL (http://portalapi.xyz.test) uses plain HTTP")
    assert "browsers will not send a Secure cookie over plain HTTP" in lines[0]


def test_check_config_sibling_hosts(tmp_path: Path) -> None:
    result = run_check_config(
        tmp_path,
        {"cookie_secure": False, "cookie_domain": ".xyz.test", "cookie_samesite": "off"},
        PORTAL_GUI_HOST="portal.xyz.test",
        PORTAL_API_URL="http://portalapi.xyz.test",
    )

    assert result.exit_code == 0, result.output
    set_cookie = next(line for line in result.output.splitlines() if "Set-Cookie:" in line)
    assert "Domain=xyz.test" in set_cookie
    assert "SameSite" not in set_cookie
    assert "Secure" not in set_cookie
    assert 'Set PORTAL_SESSION_CONF["cookie_secure"] to true outside plain-HTTP testing' in result.output


def test_check_config_no_domain_fails(tmp_path: Path) -> None:
    result = run_check_config(
        tmp_path,
        {"cookie_secure": False},
        PORTAL_GUI_HOST="portal.xyz.test",
        PORTAL_API_URL="http://portalapi.xyz.test",
    )

    assert result.exit_code == 1
    assert 'Set "cookie_domain": ".xyz.test".' in result.output


@pytest.mark.usefixtures("fresh_insecure_log")
def test_check_config_https_no_false_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="flask_portal_session.interface")

    result = run_check_config(
        tmp_path,
        {"cookie_name": "__Host-portal_session"},
        PORTAL_GUI_HOST="portal.xyz.test",
        PORTAL_GUI_PROTOCOL="https",
        PORTAL_API_URL="https://portal.xyz.test",
    )

    assert result.exit_code == 0, result.output
    assert "Warnings (0)" in result.output
    assert insecure_warnings(caplog) == []


def test_check_config_example_app(tmp_path: Path) -> None:
    """The real ``flask`` command on the example portal, configured from the environment."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    environ.update(
        PORTAL_SESSION_CONF=json.dumps({"secret": SECRET, "cookie_secure": True}),
        PORTAL_API_URL="http://portalapi.xyz.test",
        PORTAL_SESSION_DATABASE_URI=f"sqlite:///{tmp_path / 'example.sqlite3'}",
    )

    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", str(EXAMPLE_DIR / "app.py"), "portal-session", "check-config"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "Error: PORTAL_API_URL (http://portalapi.xyz.test) uses plain HTTP" in result.stderr
    assert "Set cookie_secure to false for plain-HTTP testing, or serve the portal over HTTPS." in result.stderr
