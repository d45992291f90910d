"""The example portal in headless Chromium, in the three deployments of Kong's Dev Portal session docs.

1. HTTPS, pages and API on one host, ``cookie_secure: true``.
2. Plain HTTP for testing, ``cookie_secure: false``.
3. Pages and API on sibling subdomains (portal.xyz.test and portalapi.xyz.test),
   ``cookie_domain: ".xyz.test"``, ``cookie_samesite: "off"``, over HTTP as in
   Kong's example, and with SameSite=Strict over HTTP and over HTTPS.

Each test logs in through the login page, checks the cookie as Chromium stored
it, reloads, opens a second tab, logs out, presses Back, and replays the old
cookie. The session configs are Kong's examples with the commas added, a real
secret in place of the placeholder, and the cookie names Kong uses.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from flask_portal_session import interface

from .portal_browser import (
    API_HOST,
    GUI_HOST,
    HTTP_HOST,
    HTTPS_HOST,
    OTHER_HOST,
    PASSWORD,
    SECRET,
    LocalServer,
    add_developer,
    build_portal_app,
    cookies_named,
    dispose_app,
    expect,
    fill_login_form,
    json_conf,
    migrated_database,
    self_signed_context,
    serving,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Deployment:
    """Where the pages and the API of one portal are served, and the cookie they should leave."""

    name: str
    #: Origin of the login page and the dashboard.
    gui: str
    #: Origin of /auth and /session; the same as ``gui`` when one app serves both.
    api: str
    cookie_name: str
    secure: bool
    #: SameSite as Chromium stores it, or None when the Set-Cookie had no SameSite attribute.
    same_site: str | None
    #: Domain as Chromium stores it: the bare host for a host-only cookie, ".parent" for a Domain cookie.
    domain: str
    persistent: bool = False
    lifetime: int = 3600


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One migrated SQLite database for the module; each test adds its own developer."""
    return migrated_database(tmp_path_factory.mktemp("deployments"))


@pytest.fixture
def email(request: pytest.FixtureRequest) -> str:
    """An email address unique to the test, so tests sharing the database do not meet."""
    label = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"{label}@example.com"


@pytest.fixture
def started_apps() -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        dispose_app(app)


# -- the user's path through the portal ------------------------------------------------------


def assert_dashboard(page: Page, deployment: Deployment, email: str) -> None:
    expect(page).to_have_url(f"{deployment.gui}/dashboard")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("main")).to_contain_text(f"Logged in as {email}")


def assert_session_cookie(cookie: dict[str, Any], deployment: Deployment) -> None:
    """Check every attribute of the stored session cookie against the deployment."""
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is deployment.secure
    assert cookie.get("sameSite") == deployment.same_site
    assert cookie["domain"] == deployment.domain
    assert cookie["path"] == "/"
    assert cookie["session"] is not deployment.persistent
    if deployment.persistent:
        expected_expiry = time.time() + deployment.lifetime
        assert abs(cookie["expires"] - expected_expiry) < 60
    else:
        assert cookie["expires"] == -1
    # Base64url of a version byte, a 32-byte session id and a tag: no separators to quote.
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", cookie["value"])


def log_in_through_page(page: Page, deployment: Deployment, email: str) -> None:
    page.goto(f"{deployment.gui}/login")
    expect(page.locator("h1")).to_have_text("Log in")
    with page.expect_response(f"{deployment.api}/auth") as login:
        fill_login_form(page, email, PASSWORD)
    assert login.value.status == 200
    assert_dashboard(page, deployment, email)


def replay_cookie(context: BrowserContext, cookie: dict[str, Any], deployment: Deployment) -> None:
    """Put a saved cookie back into the browser's store, as an attacker with a copy would."""
    restored: dict[str, Any] = {
        "name": cookie["name"],
        "value": cookie["value"],
        "secure": cookie["secure"],
        "httpOnly": cookie["httpOnly"],
        "sameSite": cookie.get("sameSite", "Lax"),
    }
    if cookie["domain"].startswith("."):
        restored.update(domain=cookie["domain"], path=cookie["path"])
    else:
        restored["url"] = f"{deployment.gui}/"
    context.add_cookies([restored])  # type: ignore[list-item]


def walk_through_portal(
    context: BrowserContext,
    deployment: Deployment,
    email: str,
    screenshot: Callable[[Page, str], Path],
) -> dict[str, Any]:
    """Log in, reload, open a second tab, log out and press Back; return the cookie seen while logged in."""
    page = context.pages[0]
    log_in_through_page(page, deployment, email)
    screenshot(page, f"dashboard-{deployment.name}")

    cookies = cookies_named(context, deployment.cookie_name)
    assert len(cookies) == 1, cookies
    cookie = cookies[0]
    attributes = {key: value for key, value in cookie.items() if key != "value"}
    print(f"stored cookie ({deployment.name}): {attributes}")
    assert_session_cookie(cookie, deployment)
    assert f"{deployment.cookie_name}=" not in page.evaluate("document.cookie")

    page.reload()
    assert_dashboard(page, deployment, email)

    second_tab = context.new_page()
    second_tab.goto(f"{deployment.gui}/dashboard")
    assert_dashboard(second_tab, deployment, email)
    second_tab.close()

    with page.expect_response(f"{deployment.api}/auth?session_logout=true") as logout:
        page.click("#logout-form button[type=submit]")
    assert logout.value.status == 200
    expect(page).to_have_url(f"{deployment.gui}/login")
    assert cookies_named(context, deployment.cookie_name) == []

    # Back must not show the dashboard from the cache: it was served with no-store.
    page.go_back()
    expect(page.locator("h1")).to_have_text("Log in")
    assert page.url.startswith(f"{deployment.gui}/login?next=")
    assert email not in page.content()

    # The server deleted the session, so a copy of the old cookie is worthless.
    replay_cookie(context, cookie, deployment)
    page.goto(f"{deployment.gui}/dashboard")
    expect(page.locator("h1")).to_have_text("Log in")
    assert email not in page.content()
    return cookie


# -- 1. HTTPS, one host ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie_name", "persistent"),
    [
        # Kong's HTTPS example names its cookie "$4m04$".
        ("$4m04$", False),
        # The __Host- prefix makes the browser insist on Secure, Path=/ and no Domain.
        ("__Host-portal_session", True),
    ],
)
def test_https_same_host(
    tls_context: BrowserContext,
    database_url: str,
    email: str,
    started_apps: list[Flask],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
    cookie_name: str,
    persistent: bool,
) -> None:
    tls = self_signed_context(tmp_path, (HTTPS_HOST,))
    server = LocalServer(ssl_context=tls)
    origin = server.origin(HTTPS_HOST)
    conf = {
        "cookie_name": cookie_name,
        "secret": SECRET,
        "storage": "kong",
        "cookie_secure": True,
        "cookie_persistent": persistent,
    }
    app = build_portal_app(
        json_conf(conf),
        database_url,
        tmp_path / "instance",
        PORTAL_GUI_HOST=f"{HTTPS_HOST}:{server.port}",
        PORTAL_GUI_PROTOCOL="https",
        PORTAL_API_URL=origin,
    )
    started_apps.append(app)
    add_developer(app, email)
    deployment = Deployment(
        name="https" if not persistent else "https-host-prefix",
        gui=origin,
        api=origin,
        cookie_name=cookie_name,
        secure=True,
        same_site="Strict",
        domain=HTTPS_HOST,
        persistent=persistent,
    )

    server.serve(app)
    try:
        cookie = walk_through_portal(tls_context, deployment, email, screenshot)
    finally:
        server.stop()

    assert cookie["sourceScheme"] == "Secure"


# -- 2. plain HTTP for testing ------------------------------------------------------------------


def test_http_for_testing(
    context: BrowserContext,
    database_url: str,
    email: str,
    started_apps: list[Flask],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    server = LocalServer()
    origin = server.origin(HTTP_HOST)
    # Kong's plain-HTTP example: cookie name "04tm34l", cookie_secure false.
    conf = {"cookie_name": "04tm34l", "secret": SECRET, "storage": "kong", "cookie_secure": False}
    app = build_portal_app(
        json_conf(conf),
        database_url,
        tmp_path / "instance",
        PORTAL_GUI_HOST=f"{HTTP_HOST}:{server.port}",
        PORTAL_API_URL=origin,
    )
    started_apps.append(app)
    add_developer(app, email)
    deployment = Deployment(
        name="http",
        gui=origin,
        api=origin,
        cookie_name="04tm34l",
        secure=False,
        same_site="Strict",
        domain=HTTP_HOST,
    )

    server.serve(app)
    try:
        cookie = walk_through_portal(context, deployment, email, screenshot)
    finally:
        server.stop()

    assert cookie["sourceScheme"] == "NonSecure"


# -- 3. sibling subdomains ------------------------------------------------------------------------


#: Kong's subdomain example with the commas added and the domain moved to the test hosts.
#: absolute_timeout 0 keeps Kong's one-year session, which this package would otherwise
#: end after a day.
SIBLING_CONF = {
    "storage": "kong",
    "cookie_name": "portal_session",
    "cookie_domain": ".xyz.test",
    "secret": SECRET,
    "cookie_secure": False,
    "cookie_lifetime": 31557600,
    "cookie_samesite": "off",
    "absolute_timeout": 0,
}


@dataclass
class SiblingPortal:
    """The portal pages and the portal API as two apps on two servers, sharing one database and secret."""

    gui_server: LocalServer
    api_server: LocalServer
    deployment: Deployment


@pytest.fixture
def sibling_samesite() -> str:
    """cookie_samesite of the sibling portal: Kong's "off" unless a test parametrizes it."""
    return "off"


@pytest.fixture
def sibling_scheme() -> str:
    """Scheme of both sibling hosts: Kong's "http" unless a test parametrizes it."""
    return "http"


@pytest.fixture
def sibling_portal(
    database_url: str,
    email: str,
    started_apps: list[Flask],
    tmp_path: Path,
    sibling_samesite: str,
    sibling_scheme: str,
) -> Iterator[SiblingPortal]:
    secure = sibling_scheme == "https"
    tls = self_signed_context(tmp_path, (GUI_HOST, API_HOST)) if secure else None
    gui_server = LocalServer(ssl_context=tls)
    api_server = LocalServer(ssl_context=tls)
    gui_origin = gui_server.origin(GUI_HOST)
    api_origin = api_server.origin(API_HOST)
    settings = {
        "PORTAL_GUI_HOST": f"{GUI_HOST}:{gui_server.port}",
        "PORTAL_GUI_PROTOCOL": sibling_scheme,
        "PORTAL_API_URL": api_origin,
    }
    conf = json_conf({**SIBLING_CONF, "cookie_samesite": sibling_samesite, "cookie_secure": secure})
    # Two nodes of one portal: the same config, database and secret, but separate apps and engines.
    gui_app = build_portal_app(conf, database_url, tmp_path / "gui-instance", **settings)
    api_app = build_portal_app(conf, database_url, tmp_path / "api-instance", **settings)
    started_apps.extend([gui_app, api_app])
    add_developer(api_app, email)

    name = "sibling-subdomains"
    if sibling_samesite != "off":
        name += f"-{sibling_samesite.lower()}"
    if secure:
        name += "-https"
    deployment = Deployment(
        name=name,
        gui=gui_origin,
        api=api_origin,
        cookie_name="portal_session",
        secure=secure,
        same_site=None if sibling_samesite == "off" else sibling_samesite,
        domain=".xyz.test",
    )
    gui_server.serve(gui_app)
    api_server.serve(api_app)
    try:
        yield SiblingPortal(gui_server, api_server, deployment)
    finally:
        gui_server.stop()
        api_server.stop()


# The two hosts are one site (xyz.test), so SameSite=Strict works as well as Kong's "off".
@pytest.mark.parametrize("sibling_samesite", ["off", "Strict"])
def test_sibling_subdomains(
    context: BrowserContext,
    sibling_portal: SiblingPortal,
    email: str,
    screenshot: Callable[[Page, str], Path],
) -> None:
    deployment = sibling_portal.deployment
    page = context.pages[0]
    page.goto(f"{deployment.gui}/login")
    assert page.locator("main").get_attribute("data-api-url") == deployment.api

    cookie = walk_through_portal(context, deployment, email, screenshot)

    assert cookie["sourceScheme"] == "NonSecure"


# The production form of the same deployment: both hosts over HTTPS with a Secure cookie.
@pytest.mark.parametrize(("sibling_scheme", "sibling_samesite"), [("https", "Strict")])
def test_sibling_subdomains_https(
    tls_context: BrowserContext,
    sibling_portal: SiblingPortal,
    email: str,
    screenshot: Callable[[Page, str], Path],
) -> None:
    cookie = walk_through_portal(tls_context, sibling_portal.deployment, email, screenshot)

    assert cookie["sourceScheme"] == "Secure"


def test_sibling_api_reads_gui_session(
    context: BrowserContext, sibling_portal: SiblingPortal, email: str
) -> None:
    deployment = sibling_portal.deployment
    page = context.pages[0]
    log_in_through_page(page, deployment, email)

    # The dashboard page (GUI app) requests the same session from the API app, across origins.
    answer = page.evaluate(
        """async (url) => {
            const response = await fetch(url, {credentials: "include", headers: {"Accept": "application/json"}});
            return {status: response.status, body: await response.json()};
        }""",
        f"{deployment.api}/session",
    )

    assert answer["status"] == 200
    assert answer["body"]["developer"]["email"] == email
    assert answer["body"]["session"]["lifetime"] == 31557600


def test_sibling_api_refuses_other_origin(
    context: BrowserContext, sibling_portal: SiblingPortal, email: str
) -> None:
    deployment = sibling_portal.deployment
    page = context.pages[0]
    log_in_through_page(page, deployment, email)

    with serving(_blank_page) as other_server:
        # Another site, and another origin of the same site (the GUI host on another port),
        # which the .xyz.test cookie still reaches.
        for origin in (other_server.origin(OTHER_HOST), other_server.origin(GUI_HOST)):
            page.goto(f"{origin}/")
            outcome = page.evaluate(
                """async (url) => {
                    try {
                        const response = await fetch(url, {credentials: "include"});
                        return "read status " + response.status;
                    } catch (error) {
                        return "blocked: " + error.name;
                    }
                }""",
                f"{deployment.api}/session",
            )

            # Chromium hides the response from the page, because it has no Access-Control-Allow-Origin.
            assert outcome == "blocked: TypeError", origin


def _blank_page(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b"<!doctype html><title>Another site</title><p>Another site</p>"]


# -- the failure the checks exist for: a Secure cookie over plain HTTP ---------------------------


def test_secure_cookie_over_http_loops(
    context: BrowserContext,
    database_url: str,
    email: str,
    started_apps: list[Flask],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The warning is rate-limited per process; a fresh limiter makes this test independent of others.
    monkeypatch.setattr(interface, "_insecure_request_log", interface._RateLimitedWarning())
    caplog.set_level(logging.WARNING, logger="flask_portal_session.interface")
    # Without PORTAL_GUI_HOST and PORTAL_API_URL, init_app cannot know the portal runs over HTTP.
    conf = {"secret": SECRET, "cookie_name": "portal_session", "cookie_secure": True}
    app = build_portal_app(conf, database_url, tmp_path / "instance")
    started_apps.append(app)
    add_developer(app, email)
    page = context.pages[0]

    with serving(app) as server:
        origin = server.origin(HTTP_HOST)
        page.goto(f"{origin}/login")
        with page.expect_response(f"{origin}/auth") as login:
            fill_login_form(page, email, PASSWORD)

        # The login succeeds and the cookie is sent, but Chromium drops it, so
        # the dashboard sends the user straight back to the login page.
        assert login.value.status == 200
        assert "; Secure" in (login.value.header_value("set-cookie") or "")
        expect(page).to_have_url(re.compile(re.escape(f"{origin}/login?next=") + "(/|%2F)dashboard$"))
        expect(page.locator("h1")).to_have_text("Log in")
        expect(page.locator("#login-error")).to_be_hidden()
        assert cookies_named(context, "portal_session") == []
        screenshot(page, "login-secure-cookie-over-http")

        # A second try loops the same way, and the rate limit keeps the log at one warning.
        with page.expect_response(f"{origin}/auth") as second_login:
            fill_login_form(page, email, PASSWORD)
        assert second_login.value.status == 200
        expect(page).to_have_url(re.compile(re.escape(f"{origin}/login?next=")))

    warnings = [
        record
        for record in caplog.records
        if record.name == "flask_portal_session.interface" and record.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert "Browsers drop Secure cookies over HTTP" in warnings[0].getMessage()
