"""The example portal's login page in headless Chromium, for every response a user can get.

Wrong password, an account waiting for approval, a locked account with the wait,
a session store that is down (503), and a session that expires while the
dashboard is open. Each state is saved as a screenshot under
test-artifacts/screenshots.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from .portal_browser import (
    EMAIL,
    HTTP_HOST,
    PASSWORD,
    SECRET,
    LocalServer,
    add_developer,
    build_portal_app,
    closed_port,
    cookies_named,
    dispose_app,
    expect,
    fill_login_form,
    migrated_database,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

PENDING_EMAIL = "pending@example.com"
LOCKED_EMAIL = "locked@example.com"

#: Failed logins before a lockout in this module's portal.
LOGIN_ATTEMPTS = 3

#: Session settings of the plain-HTTP test portal.
HTTP_CONF = {"secret": SECRET, "cookie_name": "portal_session", "cookie_secure": False}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example portal over HTTP with an approved, a pending and a to-be-locked developer; yields its origin."""
    folder = tmp_path_factory.mktemp("login-errors")
    server = LocalServer()
    app = build_portal_app(
        HTTP_CONF,
        migrated_database(folder),
        folder / "instance",
        PORTAL_AUTH_LOGIN_ATTEMPTS=LOGIN_ATTEMPTS,
    )
    add_developer(app, EMAIL)
    add_developer(app, PENDING_EMAIL, status="pending")
    add_developer(app, LOCKED_EMAIL)
    server.serve(app)
    yield server.origin(HTTP_HOST)
    server.stop()
    dispose_app(app)


@pytest.fixture
def extra_apps() -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        dispose_app(app)


def submit_login(page: Page, origin: str, email: str, password: str) -> int:
    """Submit the login form and return the status of the /auth response."""
    with page.expect_response(f"{origin}/auth") as answer:
        fill_login_form(page, email, password)
    return answer.value.status


def test_login_page_and_dashboard(page: Page, portal: str, screenshot: Callable[[Page, str], Path]) -> None:
    page.goto(f"{portal}/login")
    expect(page.locator("#password-form")).to_be_visible()
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.locator("#login-error")).to_be_hidden()
    screenshot(page, "login")

    assert submit_login(page, portal, EMAIL, PASSWORD) == 200
    expect(page).to_have_url(f"{portal}/dashboard")
    expect(page.locator("main")).to_contain_text(f"Logged in as {EMAIL}")
    screenshot(page, "dashboard")


def test_login_wrong_password(page: Page, portal: str, screenshot: Callable[[Page, str], Path]) -> None:
    page.goto(f"{portal}/login")

    status = submit_login(page, portal, EMAIL, "not the password")

    assert status == 401
    error = page.locator("#login-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("Invalid authentication credentials")
    expect(page).to_have_url(f"{portal}/login")
    # No Basic challenge reached the browser, so it opened no password dialog of its own.
    expect(page.locator("#password-form button[type=submit]")).to_be_enabled()
    screenshot(page, "login-wrong-password")


def test_login_pending_account(
    page: Page, context: BrowserContext, portal: str, screenshot: Callable[[Page, str], Path]
) -> None:
    page.goto(f"{portal}/login")

    status = submit_login(page, portal, PENDING_EMAIL, PASSWORD)

    assert status == 401
    error = page.locator("#login-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("waiting for approval")
    expect(error).to_contain_text("Developer status: PENDING")
    assert context.cookies() == []
    screenshot(page, "login-pending")


def test_login_lockout_shows_wait(page: Page, portal: str, screenshot: Callable[[Page, str], Path]) -> None:
    page.goto(f"{portal}/login")
    statuses = [submit_login(page, portal, LOCKED_EMAIL, f"wrong password {attempt}") for attempt in range(3)]

    status = submit_login(page, portal, LOCKED_EMAIL, PASSWORD)

    assert statuses == [401] * LOGIN_ATTEMPTS
    assert status == 429
    error = page.locator("#login-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Too many failed logins")
    expect(error).to_have_text(re.compile(r"try again in \d+ seconds"))
    expect(page.locator("#login-retry")).to_have_text(re.compile(r"You can try again in (1 minute|\d+ seconds)\."))
    expect(page.locator("#password-form button[type=submit]")).to_be_disabled()
    expect(page.locator("#key-form button[type=submit]")).to_be_disabled()
    screenshot(page, "login-locked")


def test_login_store_unavailable(
    page: Page, extra_apps: list[Flask], tmp_path: Path, screenshot: Callable[[Page, str], Path]
) -> None:
    # Nothing listens on this port, so every query fails with "connection refused".
    database_url = f"postgresql+psycopg://portal@127.0.0.1:{closed_port()}/portal"
    app = build_portal_app(HTTP_CONF, database_url, tmp_path / "instance")
    extra_apps.append(app)
    server = LocalServer().serve(app)
    origin = server.origin(HTTP_HOST)
    try:
        page.goto(f"{origin}/login")
        status = submit_login(page, origin, EMAIL, PASSWORD)

        assert status == 503
        error = page.locator("#login-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("Session store unavailable")
        expect(error).to_contain_text("Try again in a moment")
        expect(page.locator("#login-retry")).to_have_text(re.compile(r"You can try again in \d seconds?\."))
        screenshot(page, "login-store-unavailable")
    finally:
        server.stop()


def test_session_expires_on_dashboard(
    page: Page,
    context: BrowserContext,
    extra_apps: list[Flask],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    # A 3-second session that is never renewed ends while the dashboard is open.
    conf = {**HTTP_CONF, "cookie_lifetime": 3, "cookie_renew": 0}
    app = build_portal_app(conf, migrated_database(tmp_path), tmp_path / "instance")
    extra_apps.append(app)
    add_developer(app, EMAIL)
    server = LocalServer().serve(app)
    origin = server.origin(HTTP_HOST)
    try:
        page.goto(f"{origin}/login")
        assert submit_login(page, origin, EMAIL, PASSWORD) == 200
        expect(page).to_have_url(f"{origin}/dashboard")

        # The dashboard requests /api/me once the expiry time has passed, and the
        # 401 response sends it to the login page with a message.
        expect(page).to_have_url(f"{origin}/login?expired=1")
        notice = page.locator("p.notice[role=status]")
        expect(notice).to_have_text("Your session has expired. Please log in again.")
        # The 401 response also expired the cookie, so the browser no longer keeps it.
        assert cookies_named(context, "portal_session") == []
        screenshot(page, "login-session-expired")

        page.goto(f"{origin}/dashboard")
        expect(page.locator("h1")).to_have_text("Log in")
    finally:
        server.stop()
