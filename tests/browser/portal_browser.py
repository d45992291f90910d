"""Helpers for the browser tests: example portal apps, local servers, TLS, Chromium and cookies.

Every server binds 127.0.0.1 on a free port. Chromium reaches the test host
names through ``--host-resolver-rules``, which maps them to 127.0.0.1 and makes
every other name fail to resolve, so no test sends traffic off the machine.
"""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import json
import os
import socket
import ssl
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from unittest import mock

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from flask_portal_session.migrate import upgrade

try:
    from playwright.sync_api import expect
except ImportError:
    # The browser fixtures skip the test (or fail it under CI) before any test body uses it.
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO_ROOT / "examples" / "portal"

#: Folder of the screenshots the browser tests save; test-artifacts/ is in .gitignore.
SCREENSHOT_DIR = REPO_ROOT / "test-artifacts" / "screenshots"

#: Environment variable that overrides the Chromium binary.
CHROMIUM_ENV = "PORTAL_SESSION_CHROMIUM"

#: Debian's ``chromium`` package installs its launcher here.
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Host names the tests serve. Chromium maps each to 127.0.0.1.
HTTP_HOST = "portal.test"
HTTPS_HOST = "secure-portal.test"
GUI_HOST = "portal.xyz.test"
API_HOST = "portalapi.xyz.test"
OTHER_HOST = "elsewhere.test"
MAPPED_HOSTS = (HTTP_HOST, HTTPS_HOST, GUI_HOST, API_HOST, OTHER_HOST)

#: Chromium flags for a quiet headless run: no sandbox (the tests run as root), no GPU,
#: and no background connections to Google's services, which this network refuses.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)

#: Maximum wait for one navigation, element or response, in milliseconds.
WAIT_MS = 10_000

#: Session secret shared by every app of one test (32 characters, so no weak-secret warning).
SECRET = "browser-test-secret-0123456789abcdef"

#: Cheap argon2 parameters, so a login costs milliseconds instead of a second on two cores.
FAST_HASH = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}

EMAIL = "dev@example.com"
PASSWORD = "correct horse battery staple"

#: Environment variables the example app reads; they are hidden while a test app is built.
EXAMPLE_ENV_NAMES = (
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

_example_module: ModuleType | None = None


# -- Chromium ------------------------------------------------------------------


def chromium_path() -> str:
    """Return the Chromium binary to drive: $PORTAL_SESSION_CHROMIUM or Debian's /usr/bin/chromium."""
    return os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM


def host_resolver_rules() -> str:
    """Return the ``--host-resolver-rules`` value: the test hosts go to 127.0.0.1, other names fail."""
    rules = [f"MAP {host} 127.0.0.1" for host in MAPPED_HOSTS]
    rules.append("MAP * ~NOTFOUND")
    return ", ".join(rules)


def chromium_arguments(ignore_certificate_errors: bool = False) -> list[str]:
    """Return the command-line flags for one Chromium run."""
    arguments = [*CHROMIUM_FLAGS, f"--host-resolver-rules={host_resolver_rules()}"]
    if ignore_certificate_errors:
        # Only the HTTPS tests pass this, for their self-signed certificate.
        arguments.append("--ignore-certificate-errors")
    return arguments


# -- the example portal ----------------------------------------------------------


def example_module() -> ModuleType:
    """Import examples/portal/app.py once, under a module name that no other test uses."""
    global _example_module
    if _example_module is None:
        spec = importlib.util.spec_from_file_location("browser_example_portal", EXAMPLE_DIR / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _example_module = module
    return _example_module


def migrated_database(folder: Path, name: str = "portal") -> str:
    """Create a SQLite database in ``folder``, upgraded to the newest migration, and return its URL."""
    url = f"sqlite:///{folder / (name + '.sqlite3')}"
    upgrade(url)
    return url


def build_portal_app(
    session_conf: Mapping[str, Any] | str,
    database_url: str,
    instance_path: Path,
    **config: Any,
) -> Flask:
    """Build the example portal with ``session_conf`` and other PORTAL_* settings.

    ``session_conf`` is passed as given (a dict, or a JSON string as an
    environment variable would carry it). The example's own environment
    variables are hidden while the app is built, so a developer's shell cannot
    change what a test runs.
    """
    settings: dict[str, Any] = {
        "PORTAL_SESSION_CONF": session_conf,
        "PORTAL_SESSION_DATABASE_URI": database_url,
        "PORTAL_PASSWORD_HASH_CONF": FAST_HASH,
    }
    settings.update(config)
    environ = {name: value for name, value in os.environ.items() if name not in EXAMPLE_ENV_NAMES}
    # The example falls back to a generated demo secret when this is unset; the
    # test's own PORTAL_SESSION_CONF replaces it anyway.
    environ["PORTAL_SESSION_SECRET"] = SECRET
    with mock.patch.dict(os.environ, environ, clear=True):
        return example_module().create_app(settings, instance_path=str(instance_path))


def add_developer(app: Flask, email: str = EMAIL, password: str = PASSWORD, status: str = "approved") -> None:
    """Create a developer in the app's store."""
    with app.app_context():
        app.extensions["portal_session"].developers.create(email, password, status=status)


def dispose_app(app: Flask) -> None:
    """Close the database connections of an app built by :func:`build_portal_app`."""
    app.extensions["portal_session"].engine.dispose()


# -- servers -------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """Leaves out werkzeug's access log line per request; failures still reach the log."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class LocalServer:
    """A threaded werkzeug server on 127.0.0.1 and a free port, serving one WSGI app.

    The app can be set after the port is known, because two apps that call each
    other need each other's URL in their config.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.scheme = "https" if ssl_context is not None else "http"
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1",
            0,
            _not_ready,
            threaded=True,
            request_handler=_QuietHandler,
            ssl_context=ssl_context,
        )
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._serve, name=f"portal-server-{self.port}", daemon=True)

    def origin(self, host: str) -> str:
        """Return ``scheme://host:port`` of this server under the test host name ``host``."""
        return f"{self.scheme}://{host}:{self.port}"

    def serve(self, app: Any) -> LocalServer:
        """Start serving ``app`` in a background thread; return self."""
        self._server.app = app
        self._thread.start()
        return self

    def _serve(self) -> None:
        # A short poll interval lets stop() return in a tenth of a second instead of half a second.
        self._server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop the server and wait for its thread (at most 10 seconds)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _not_ready(environ: Any, start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"The test server has no app yet.\n"]


@contextmanager
def serving(app: Any, ssl_context: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    """Serve ``app`` on a free 127.0.0.1 port for the duration of the block."""
    server = LocalServer(ssl_context).serve(app)
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    """Return a 127.0.0.1 port that nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed_context(folder: Path, hosts: tuple[str, ...]) -> ssl.SSLContext:
    """Create a self-signed certificate for ``hosts`` and 127.0.0.1 and return a server TLS context.

    The key and certificate are written as PEM files into ``folder``, because
    ``ssl`` loads them only from files.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    names: list[x509.GeneralName] = [x509.DNSName(host) for host in hosts]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )

    certificate_file = folder / "certificate.pem"
    key_file = folder / "key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate_file, key_file)
    return context


# -- browser helpers --------------------------------------------------------------------


def stored_cookies(context: BrowserContext) -> list[dict[str, Any]]:
    """Return every cookie in the browser's store, with its attributes as Chromium keeps them.

    Read through the DevTools protocol instead of ``context.cookies()``, because
    Playwright reports a cookie without a SameSite attribute as "Lax", and the
    tests must tell the two apart. A cookie without the attribute has no
    ``sameSite`` key here.
    """
    page = context.pages[0] if context.pages else context.new_page()
    devtools = context.new_cdp_session(page)
    try:
        return devtools.send("Network.getAllCookies")["cookies"]
    finally:
        devtools.detach()


def cookies_named(context: BrowserContext, name: str) -> list[dict[str, Any]]:
    """Return the stored cookies called ``name``."""
    return [cookie for cookie in stored_cookies(context) if cookie["name"] == name]


def fill_login_form(page: Page, email: str, password: str) -> None:
    """Type the email and password into the login page's form and submit it."""
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#password-form button[type=submit]")


def save_screenshot(page: Page, name: str) -> Path:
    """Save a screenshot of the whole page as ``<SCREENSHOT_DIR>/<name>.png`` and return its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def json_conf(conf: Mapping[str, Any]) -> str:
    """Return a PORTAL_SESSION_CONF as the JSON string an environment variable would carry."""
    return json.dumps(dict(conf), indent=4)
