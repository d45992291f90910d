"""PortalSession set-up: init_app patterns, shared engines and start-up errors."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from conftest import FAST_HASH, TEST_SECRET, basic_header
from flask_portal_session import ConfigError, PortalSession
from flask_portal_session.interface import PortalSessionInterface
from flask_portal_session.store import create_store_engine


def portal_config(url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "PORTAL_AUTH": "basic-auth",
        "PORTAL_SESSION_CONF": {"secret": TEST_SECRET, "cookie_secure": False},
        "PORTAL_SESSION_DATABASE_URI": url,
        "PORTAL_PASSWORD_HASH_CONF": FAST_HASH,
    }


def test_init_app_later_installs_interface(db_url: str, tmp_path: Any) -> None:
    portal = PortalSession()
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(portal_config(db_url))
    portal.init_app(app)
    assert isinstance(app.session_interface, PortalSessionInterface)
    assert "portal_session.auth" in app.view_functions
    portal.engine.dispose()


def test_shared_engine_is_used(db_url: str, tmp_path: Any) -> None:
    engine = create_store_engine(db_url)
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(portal_config("sqlite:///unused-if-engine-given.sqlite3"))
    portal = PortalSession(app, engine=engine)
    with app.app_context():
        assert portal.engine is engine
        portal.developers.create("dev@example.com", "pw-123456")
    response = app.test_client().get("/auth", headers=basic_header("dev@example.com", "pw-123456"))
    assert response.status_code == 200
    engine.dispose()


def test_one_portal_serves_two_apps(db_url: str, tmp_path: Any) -> None:
    portal = PortalSession()
    apps = []
    for name in ("first", "second"):
        app = Flask(name, instance_path=str(tmp_path / name))
        app.config.update(portal_config(db_url))
        app.config["PORTAL_SESSION_CONF"] = {"secret": TEST_SECRET + name, "cookie_secure": False}
        portal.init_app(app)
        apps.append(app)
    with apps[0].app_context():
        portal.developers.create("dev@example.com", "pw-123456")
    first, second = apps[0].test_client(), apps[1].test_client()
    response = first.get("/auth", headers=basic_header("dev@example.com", "pw-123456"))
    assert response.status_code == 200
    cookie = first.get_cookie("session").value
    second.set_cookie("session", cookie)
    assert second.get("/session").status_code == 401
    for app in apps:
        app.extensions["portal_session"].engine.dispose()


def test_unwritable_sqlite_folder_is_config_error(tmp_path: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(portal_config(f"sqlite:///{blocker}/sub/portal.sqlite3"))
    with pytest.raises(ConfigError, match="PORTAL_SESSION_DATABASE_URI") as caught:
        PortalSession(app)
    assert "writable folder" in str(caught.value)


def test_embedded_default_is_instance_sqlite(tmp_path: Any) -> None:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    config = portal_config("unused")
    del config["PORTAL_SESSION_DATABASE_URI"]
    app.config.update(config)
    portal = PortalSession(app)
    with app.app_context():
        url = portal.engine.url
        assert url.get_backend_name() == "sqlite"
        assert url.database.startswith(str(tmp_path / "instance"))
    portal.engine.dispose()


def test_login_pending_developer_raises(db_url: str, tmp_path: Any) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(portal_config(db_url))
    portal = PortalSession(app)
    with app.app_context():
        developer = portal.developers.create("dev@example.com", "pw-123456", status="pending")
    with app.test_request_context("/"):
        with pytest.raises(ValueError, match="approved"):
            portal.login(developer)
    portal.engine.dispose()


def test_unknown_driver_is_config_error(tmp_path: Any) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(portal_config("postgresql+nosuchdriver://user:pw@127.0.0.1/db"))
    with pytest.raises(ConfigError, match="flask-portal-session\\[postgres\\]") as caught:
        PortalSession(app)
    assert "pw@" not in str(caught.value)
