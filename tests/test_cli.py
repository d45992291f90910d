"""The ``flask portal-session`` commands, through Flask's CLI runner and the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import inspect

from conftest import FAST_HASH, TEST_SECRET, FakeClock, basic_header, fresh_database_url
from flask_portal_session import PortalSession
from flask_portal_session.cli import portal_session_cli
from flask_portal_session.migrate import current_revision, head_revision

PASSWORD = "correct horse battery staple"

#: The FakeClock's default time, 1_800_000_000, in ISO 8601 UTC.
CLOCK_ISO = "2027-01-15T08:00:00Z"


def run(app: Flask, *args: str, input: str | None = None) -> Result:
    """Invoke ``flask portal-session ARGS`` for ``app`` and return click's result."""
    return app.test_cli_runner().invoke(portal_session_cli, list(args), input=input)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """Check that a command failed with exit code 1 and exactly one 'Error: ...' line."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]


def add_developer(app: Flask, email: str, *extra: str, password: str = PASSWORD) -> Result:
    result = run(app, "developers", "add", email, "--password-stdin", *extra, input=password + "\n")
    assert result.exit_code == 0, result.output
    return result


def log_in(app: Flask, email: str, password: str = PASSWORD) -> Any:
    """Log in through ``GET /auth`` with Basic credentials and return the logged-in test client."""
    client = app.test_client()
    response = client.get("/auth", headers=basic_header(email, password))
    assert response.status_code == 200, response.get_data(as_text=True)
    return client


def build_app(url: str, tmp_path: Path, **config: Any) -> Flask:
    """Build a portal app on ``url`` without the shared fixtures (for fresh or broken databases)."""
    app = Flask("cli_app", instance_path=str(tmp_path / "instance"))
    app.config.update(
        TESTING=True,
        PORTAL_AUTH=["basic-auth", "key-auth"],
        PORTAL_SESSION_CONF={"secret": TEST_SECRET, "cookie_secure": False},
        PORTAL_SESSION_DATABASE_URI=url,
        PORTAL_PASSWORD_HASH_CONF=FAST_HASH,
    )
    app.config.update(config)
    PortalSession(app, clock=FakeClock())
    return app


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def empty_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty SQLite database that no migration has touched."""
    url, drop = fresh_database_url("sqlite", tmp_path, "empty")
    app = build_app(url, tmp_path)
    yield app
    app.extensions["portal_session"].engine.dispose()
    drop()


@pytest.fixture
def unreachable_app(tmp_path: Path) -> Iterator[Flask]:
    """An app whose database URL points at a closed port on the loopback interface."""
    pytest.importorskip("psycopg")
    app = build_app("postgresql+psycopg://portal:hunter2@127.0.0.1:1/portal", tmp_path)
    yield app
    app.extensions["portal_session"].engine.dispose()


# -- db ------------------------------------------------------------------------


def test_db_current_at_head(app: Flask) -> None:
    result = run(app, "db", "current")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{head_revision()} (head)"


def test_db_current_before_upgrade(empty_app: Flask) -> None:
    result = run(empty_app, "db", "current")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("none:")
    assert "flask portal-session db upgrade" in result.output


def test_db_upgrade_creates_tables(empty_app: Flask) -> None:
    result = run(empty_app, "db", "upgrade")
    engine = empty_app.extensions["portal_session"].engine
    assert result.exit_code == 0, result.output
    assert f"to {head_revision()} (head)" in result.output
    assert inspect(engine).has_table("portal_sessions")
    assert current_revision(engine) == head_revision()


def test_db_upgrade_twice(empty_app: Flask) -> None:
    run(empty_app, "db", "upgrade")
    result = run(empty_app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "already at revision" in result.output


def test_db_upgrade_unknown_revision(empty_app: Flask) -> None:
    result = run(empty_app, "db", "upgrade", "nosuchrev")
    assert_one_line_error(result, "nosuchrev")


def test_db_downgrade_to_base(empty_app: Flask) -> None:
    run(empty_app, "db", "upgrade")
    result = run(empty_app, "db", "downgrade", "base")
    engine = empty_app.extensions["portal_session"].engine
    assert result.exit_code == 0, result.output
    assert "to none" in result.output
    assert not inspect(engine).has_table("portal_sessions")
    assert current_revision(engine) is None


def test_db_downgrade_unknown_revision(app: Flask) -> None:
    result = run(app, "db", "downgrade", "nosuchrev")
    assert_one_line_error(result, "nosuchrev")


def test_db_downgrade_needs_revision(app: Flask) -> None:
    result = run(app, "db", "downgrade")
    assert result.exit_code == 2
    assert "Missing argument 'REVISION'" in result.output


def test_db_unreachable(unreachable_app: Flask) -> None:
    result = run(unreachable_app, "db", "upgrade")
    assert_one_line_error(result, "Cannot connect", "127.0.0.1:1", "PORTAL_SESSION_DATABASE_URI")
    assert "hunter2" not in result.output


# -- tables missing or database down ------------------------------------------------


def test_missing_tables_say_upgrade(empty_app: Flask) -> None:
    result = run(empty_app, "developers", "list")
    assert_one_line_error(result, "portal_developers", "flask portal-session db upgrade")


def test_unreachable_database(unreachable_app: Flask) -> None:
    result = run(unreachable_app, "sessions", "list")
    assert_one_line_error(result, "Cannot connect")
    assert "hunter2" not in result.output


def test_app_without_extension() -> None:
    app = Flask("plain_app")
    result = run(app, "developers", "list")
    assert_one_line_error(result, "PortalSession(app)")


# -- developers ----------------------------------------------------------------------


def test_developers_add_prompt(app: Flask) -> None:
    result = run(app, "developers", "add", "dev@example.com", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Created developer dev@example.com" in result.output
    assert PASSWORD not in result.output
    log_in(app, "dev@example.com")


def test_developers_add_prompt_mismatch(app: Flask) -> None:
    result = run(app, "developers", "add", "dev@example.com", input="one\ntwo\n")
    assert result.exit_code == 1
    assert "do not match" in result.output
    assert app.extensions["portal_session"].developers.get_by_email("dev@example.com") is None


def test_developers_add_stdin(app: Flask) -> None:
    result = add_developer(app, "Dev@Example.com")
    assert "dev@example.com" in result.output
    log_in(app, "dev@example.com")


def test_developers_add_stdin_empty(app: Flask) -> None:
    result = run(app, "developers", "add", "dev@example.com", "--password-stdin", input="")
    assert_one_line_error(result, "--password-stdin")


def test_developers_add_status(app: Flask) -> None:
    add_developer(app, "dev@example.com", "--status", "pending")
    developer = app.extensions["portal_session"].developers.require("dev@example.com")
    assert developer.status == "pending"


def test_developers_add_bad_status(app: Flask) -> None:
    result = run(app, "developers", "add", "dev@example.com", "--status", "active", input=f"{PASSWORD}\n")
    assert_one_line_error(result, "'active'", "approved, pending, rejected, revoked")


def test_developers_add_bad_email(app: Flask) -> None:
    result = run(app, "developers", "add", "not-an-email", "--password-stdin", input=f"{PASSWORD}\n")
    assert_one_line_error(result, "'not-an-email'")


def test_developers_add_duplicate(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    result = run(app, "developers", "add", "DEV@example.com", "--password-stdin", input=f"{PASSWORD}\n")
    assert_one_line_error(result, "already exists")


def test_developers_add_no_password(app: Flask) -> None:
    result = run(app, "developers", "add", "bot@example.com", "--no-password")
    response = app.test_client().get("/auth", headers=basic_header("bot@example.com", ""))
    assert result.exit_code == 0, result.output
    assert response.status_code == 401


def test_developers_add_both_password_flags(app: Flask) -> None:
    result = run(app, "developers", "add", "dev@example.com", "--no-password", "--password-stdin", input="x\n")
    assert_one_line_error(result, "--no-password")


def test_developers_list(app: Flask) -> None:
    add_developer(app, "first@example.com")
    add_developer(app, "second@example.com", "--status", "rejected")
    result = run(app, "developers", "list")
    lines = result.output.splitlines()
    assert result.exit_code == 0, result.output
    assert lines[0].split()[:3] == ["ID", "EMAIL", "STATUS"]
    assert "first@example.com" in lines[1]
    assert "approved" in lines[1]
    assert "second@example.com" in lines[2]
    assert "rejected" in lines[2]
    assert CLOCK_ISO in lines[1]


def test_developers_list_empty(app: Flask) -> None:
    result = run(app, "developers", "list")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("No developers.")


def test_set_status_pending_revokes(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    client = log_in(app, "dev@example.com")
    assert client.get("/private").status_code == 200

    result = run(app, "developers", "set-status", "dev@example.com", "pending")
    assert result.exit_code == 0, result.output
    assert "now pending" in result.output
    assert client.get("/private").status_code == 401
    assert app.extensions["portal_session"].store.list_sessions() == []


def test_set_status_pending_blocks_login(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    run(app, "developers", "set-status", "dev@example.com", "pending")
    response = app.test_client().get("/auth", headers=basic_header("dev@example.com", PASSWORD))
    assert response.status_code == 401
    assert response.get_json()["message"] == "Unauthorized: Developer status: PENDING"


def test_set_status_approved(app: Flask) -> None:
    add_developer(app, "dev@example.com", "--status", "pending")
    result = run(app, "developers", "set-status", "dev@example.com", "approved")
    assert result.exit_code == 0, result.output
    log_in(app, "dev@example.com")


def test_set_status_bad_status(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    result = run(app, "developers", "set-status", "dev@example.com", "banned")
    assert_one_line_error(result, "'banned'")


def test_set_status_unknown_email(app: Flask) -> None:
    result = run(app, "developers", "set-status", "ghost@example.com", "pending")
    assert_one_line_error(result, "ghost@example.com", "developers list")


def test_set_password(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    client = log_in(app, "dev@example.com")
    result = run(app, "developers", "set-password", "dev@example.com", "--password-stdin", input="new password\n")
    old = app.test_client().get("/auth", headers=basic_header("dev@example.com", PASSWORD))
    assert result.exit_code == 0, result.output
    assert client.get("/private").status_code == 401
    assert old.status_code == 401
    log_in(app, "dev@example.com", "new password")


def test_set_password_prompt(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    result = run(app, "developers", "set-password", "dev@example.com", input="new password\nnew password\n")
    assert result.exit_code == 0, result.output
    log_in(app, "dev@example.com", "new password")


def test_set_password_unknown_email(app: Flask) -> None:
    result = run(app, "developers", "set-password", "ghost@example.com", "--password-stdin", input="x\n")
    assert_one_line_error(result, "ghost@example.com")


def test_unlock(make_app: Callable[..., Flask]) -> None:
    app = make_app(PORTAL_AUTH_LOGIN_ATTEMPTS=2)
    add_developer(app, "dev@example.com")
    client = app.test_client()
    for _ in range(2):
        client.get("/auth", headers=basic_header("dev@example.com", "wrong"))
    assert client.get("/auth", headers=basic_header("dev@example.com", PASSWORD)).status_code == 429

    result = run(app, "developers", "unlock", "dev@example.com")
    assert result.exit_code == 0, result.output
    assert "Unlocked dev@example.com" in result.output
    log_in(app, "dev@example.com")


def test_unlock_unknown_email(app: Flask) -> None:
    result = run(app, "developers", "unlock", "ghost@example.com")
    assert_one_line_error(result, "ghost@example.com")


# -- keys ------------------------------------------------------------------------------


def test_keys_create_prints_once(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    result = run(app, "keys", "create", "dev@example.com", "--name", "ci")
    key = result.stdout.strip()
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
    assert "shown only once" in result.stderr
    assert key not in result.stderr

    listing = run(app, "keys", "list", "dev@example.com")
    assert key not in listing.output
    assert key[:8] in listing.output


def test_keys_create_logs_in(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    key = run(app, "keys", "create", "dev@example.com").stdout.strip()
    client = app.test_client()
    response = client.get("/auth", headers={"apikey": key})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["developer"]["email"] == "dev@example.com"
    assert client.get("/private").status_code == 200


def test_keys_create_unknown_email(app: Flask) -> None:
    result = run(app, "keys", "create", "ghost@example.com")
    assert_one_line_error(result, "ghost@example.com")


def test_keys_create_long_name(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    result = run(app, "keys", "create", "dev@example.com", "--name", "n" * 101)
    assert_one_line_error(result, "100 characters")


def test_keys_list(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    run(app, "keys", "create", "dev@example.com", "--name", "ci")
    result = run(app, "keys", "list", "dev@example.com")
    lines = result.output.splitlines()
    assert result.exit_code == 0, result.output
    assert lines[0].split() == ["ID", "PREFIX", "NAME", "CREATED", "LAST", "USED", "REVOKED"]
    assert lines[1].split()[2:] == ["ci", CLOCK_ISO, "-", "-"]


def test_keys_list_last_used(app: Flask, clock: FakeClock) -> None:
    add_developer(app, "dev@example.com")
    key = run(app, "keys", "create", "dev@example.com").stdout.strip()
    clock.advance(60)
    app.test_client().get("/auth", headers={"apikey": key})
    result = run(app, "keys", "list", "dev@example.com")
    assert "2027-01-15T08:01:00Z" in result.output


def test_keys_list_empty(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    result = run(app, "keys", "list", "dev@example.com")
    assert result.exit_code == 0, result.output
    assert "has no API keys" in result.output


def test_keys_list_unknown_email(app: Flask) -> None:
    result = run(app, "keys", "list", "ghost@example.com")
    assert_one_line_error(result, "ghost@example.com")


def test_keys_revoke(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    key = run(app, "keys", "create", "dev@example.com").stdout.strip()
    key_id = app.extensions["portal_session"].developers.list_api_keys(
        app.extensions["portal_session"].developers.require("dev@example.com").id
    )[0].id

    result = run(app, "keys", "revoke", str(key_id))
    response = app.test_client().get("/auth", headers={"apikey": key})
    listing = run(app, "keys", "list", "dev@example.com")
    assert result.exit_code == 0, result.output
    assert response.status_code == 401
    assert listing.output.splitlines()[1].split()[-1] == CLOCK_ISO


def test_keys_revoke_twice(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    run(app, "keys", "create", "dev@example.com")
    state = app.extensions["portal_session"]
    key_id = state.developers.list_api_keys(state.developers.require("dev@example.com").id)[0].id
    run(app, "keys", "revoke", str(key_id))
    result = run(app, "keys", "revoke", str(key_id))
    assert_one_line_error(result, f"id {key_id}")


@pytest.mark.parametrize("key_id", ["999999", "0", "-1", "2147483648", "99999999999999999999"])
def test_keys_revoke_unknown_id(app: Flask, key_id: str) -> None:
    result = run(app, "keys", "revoke", "--", key_id)
    assert_one_line_error(result, key_id)


def test_keys_revoke_not_a_number(app: Flask) -> None:
    result = run(app, "keys", "revoke", "abc")
    assert result.exit_code == 2
    assert "'abc' is not a valid integer" in result.output


# -- sessions ------------------------------------------------------------------------------


def test_sessions_list_hides_ids(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    client = log_in(app, "dev@example.com")
    token = client.get_cookie("session").value
    row = app.extensions["portal_session"].store.list_sessions()[0]

    result = run(app, "sessions", "list")
    lines = result.output.splitlines()
    assert result.exit_code == 0, result.output
    assert len(lines) == 2
    assert row.key not in result.output
    assert token not in result.output
    assert lines[1].split()[0] == row.key[:8]
    assert "dev@example.com" in lines[1]
    assert CLOCK_ISO in lines[1]
    assert "2027-01-15T09:00:00Z" in lines[1]


def test_sessions_list_anonymous(app: Flask) -> None:
    client = app.test_client()
    client.get("/put?color=blue")
    result = run(app, "sessions", "list")
    assert result.exit_code == 0, result.output
    assert "(anonymous)" in result.output


def test_sessions_list_developer(app: Flask) -> None:
    add_developer(app, "one@example.com")
    add_developer(app, "two@example.com")
    log_in(app, "one@example.com")
    log_in(app, "two@example.com")
    result = run(app, "sessions", "list", "--developer", "two@example.com")
    assert result.exit_code == 0, result.output
    assert "two@example.com" in result.output
    assert "one@example.com" not in result.output


def test_sessions_list_developer_id(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    log_in(app, "dev@example.com")
    developer_id = app.extensions["portal_session"].developers.require("dev@example.com").id
    result = run(app, "sessions", "list", "--developer-id", developer_id)
    assert result.exit_code == 0, result.output
    assert "dev@example.com" in result.output


def test_sessions_list_unknown_developer(app: Flask) -> None:
    result = run(app, "sessions", "list", "--developer", "ghost@example.com")
    assert_one_line_error(result, "ghost@example.com")


def test_sessions_list_empty(app: Flask) -> None:
    result = run(app, "sessions", "list")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "No sessions."


def test_sessions_list_expired(app: Flask, clock: FakeClock) -> None:
    add_developer(app, "dev@example.com")
    log_in(app, "dev@example.com")
    clock.advance(7200)
    live = run(app, "sessions", "list")
    everything = run(app, "sessions", "list", "--all")
    assert live.output.strip() == "No sessions."
    assert "expired" in everything.output


def test_sessions_revoke(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    add_developer(app, "other@example.com")
    first = log_in(app, "dev@example.com")
    second = log_in(app, "dev@example.com")
    other = log_in(app, "other@example.com")

    result = run(app, "sessions", "revoke", "--developer", "dev@example.com")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Revoked 2 sessions of dev@example.com."
    assert first.get("/private").status_code == 401
    assert second.get("/private").status_code == 401
    assert other.get("/private").status_code == 200


def test_sessions_revoke_none(app: Flask) -> None:
    add_developer(app, "dev@example.com")
    result = run(app, "sessions", "revoke", "--developer", "dev@example.com")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Revoked 0 sessions")


def test_sessions_revoke_needs_developer(app: Flask) -> None:
    result = run(app, "sessions", "revoke")
    assert_one_line_error(result, "--developer")


def test_sessions_revoke_both_options(app: Flask) -> None:
    result = run(app, "sessions", "revoke", "--developer", "a@example.com", "--developer-id", "x")
    assert_one_line_error(result, "--developer-id")


def test_sessions_revoke_unknown_developer(app: Flask) -> None:
    result = run(app, "sessions", "revoke", "--developer", "ghost@example.com")
    assert_one_line_error(result, "ghost@example.com")


# -- cleanup ---------------------------------------------------------------------------------


def test_cleanup_counts(app: Flask, clock: FakeClock) -> None:
    add_developer(app, "dev@example.com")
    for _ in range(3):
        log_in(app, "dev@example.com")
    clock.advance(7200)
    fresh = log_in(app, "dev@example.com")

    result = run(app, "cleanup", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Deleted 3 expired sessions."
    assert fresh.get("/private").status_code == 200


def test_cleanup_nothing(app: Flask) -> None:
    result = run(app, "cleanup")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Deleted 0 expired sessions."


@pytest.mark.parametrize("size", ["0", "-5", "100001", "99999999999999999999"])
def test_cleanup_bad_batch_size(app: Flask, size: str) -> None:
    result = run(app, "cleanup", "--batch-size", size)
    assert_one_line_error(result, f"--batch-size {size}", "from 1 to 100000")


def test_cleanup_batch_size_not_a_number(app: Flask) -> None:
    result = run(app, "cleanup", "--batch-size", "many")
    assert result.exit_code == 2
    assert "'many' is not a valid integer" in result.output


# -- check-config ----------------------------------------------------------------------------


def test_check_config_settings(app: Flask) -> None:
    result = run(app, "check-config")
    assert result.exit_code == 0, result.output
    assert "PORTAL_AUTH                  basic-auth, key-auth" in result.output
    assert "cookie_lifetime    3600" in result.output
    assert f"secret             {len(TEST_SECRET)} characters, not weak" in result.output
    assert result.output.strip().endswith("The configuration is valid.")


def test_check_config_hides_secrets(make_app: Callable[..., Flask]) -> None:
    fallback = "old-but-long-enough-secret-0123456789"
    app = make_app({"secret_fallbacks": [fallback, "short"]})
    result = run(app, "check-config")
    assert result.exit_code == 0, result.output
    assert TEST_SECRET not in result.output
    assert fallback not in result.output
    assert "short" not in result.output.replace("shorter", "")
    assert "[1] 5 characters (weak: shorter than 32 characters)" in result.output


def test_check_config_placeholder_secret(make_app: Callable[..., Flask]) -> None:
    app = make_app({"secret": "change-this-secret"})
    result = run(app, "check-config")
    assert result.exit_code == 0, result.output
    assert "(weak: a well-known placeholder)" in result.output
    assert "change-this-secret" not in result.output


def test_check_config_set_cookie(app: Flask) -> None:
    result = run(app, "check-config")
    assert "  Set-Cookie: session=<token>; HttpOnly; Path=/; SameSite=Strict\n" in result.output


def test_check_config_set_cookie_persistent(make_app: Callable[..., Flask]) -> None:
    app = make_app({"cookie_persistent": True, "cookie_secure": True, "cookie_name": "__Host-portal"})
    result = run(app, "check-config")
    line = next(line for line in result.output.splitlines() if "Set-Cookie:" in line)
    assert line.startswith("  Set-Cookie: __Host-portal=<token>; Expires=")
    assert "Max-Age=3600" in line
    assert "Secure" in line


def test_check_config_samesite_off(make_app: Callable[..., Flask]) -> None:
    app = make_app({"cookie_samesite": "off"})
    result = run(app, "check-config")
    assert "no SameSite attribute" in result.output
    assert "SameSite=" not in result.output


def test_check_config_warnings(app: Flask) -> None:
    warnings = app.extensions["portal_session"].config.warnings
    result = run(app, "check-config")
    assert warnings
    assert f"Warnings ({len(warnings)})" in result.output
    for warning in warnings:
        assert f"  - {warning}" in result.output


def test_check_config_strict(app: Flask) -> None:
    result = run(app, "check-config", "--strict")
    assert result.exit_code == 1
    assert "--strict" in result.output.splitlines()[-1]


def test_check_config_strict_clean(make_app: Callable[..., Flask]) -> None:
    app = make_app({"cookie_secure": True})
    result = run(app, "check-config", "--strict")
    assert result.exit_code == 0, result.output
    assert "Warnings (0)" in result.output


def test_check_config_does_not_need_tables(empty_app: Flask) -> None:
    result = run(empty_app, "check-config")
    assert result.exit_code == 0, result.output


def test_check_config_bad_config() -> None:
    def create_app() -> Flask:
        app = Flask("bad_config_app")
        app.config.update(
            PORTAL_AUTH="basic-auth",
            PORTAL_SESSION_CONF={"secret": TEST_SECRET, "cookie_lifetime": "1h"},
        )
        PortalSession(app)
        return app

    result = CliRunner().invoke(portal_session_cli, ["check-config"], obj=ScriptInfo(create_app=create_app))
    assert_one_line_error(result, "PORTAL_SESSION_CONF", "cookie_lifetime")


def test_bad_config_other_commands() -> None:
    def create_app() -> Flask:
        app = Flask("bad_config_app")
        app.config.update(PORTAL_AUTH="basic-auth")
        PortalSession(app)
        return app

    result = CliRunner().invoke(portal_session_cli, ["developers", "list"], obj=ScriptInfo(create_app=create_app))
    assert_one_line_error(result, "PORTAL_SESSION_CONF is missing")


def test_entry_point_bad_config(tmp_path: Path) -> None:
    (tmp_path / "bad_app.py").write_text(
        "from flask import Flask\n"
        "from flask_portal_session import PortalSession\n"
        "app = Flask(__name__)\n"
        "app.config.update(PORTAL_AUTH='basic-auth',\n"
        "                  PORTAL_SESSION_CONF='{\"secret\": \"x\" \"storage\": \"cookie\"}')\n"
        "PortalSession(app)\n"
    )
    flask = Path(sys.executable).parent / "flask"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    completed = subprocess.run(
        [str(flask), "--app", "bad_app.py", "portal-session", "check-config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout == ""
    assert completed.stderr.startswith("Error: PORTAL_SESSION_CONF is not valid JSON")
    assert len(completed.stderr.strip().splitlines()) == 1
    assert "Traceback" not in completed.stderr


def test_group_is_click_group() -> None:
    assert isinstance(portal_session_cli, click.Group)
    assert portal_session_cli.name == "portal-session"

