"""Fixtures of the browser tests: one headless Chromium per module, a fresh context per test.

Chromium comes from Debian's ``chromium`` package and is driven by Playwright
for Python through ``executable_path``, so nothing is downloaded. When Chromium
or Playwright is missing, the browser tests are skipped with the reason, except
under CI (``CI=true``), where they fail so that a broken install cannot pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .portal_browser import SCREENSHOT_DIR, WAIT_MS, chromium_arguments, chromium_path

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

#: Screenshots saved during this run, listed in the terminal summary.
_saved_screenshots: list[Path] = []


def _missing(reason: str) -> None:
    """Skip the test, or fail it under CI, where every browser test must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} CI=true, so the browser tests must run: install it in .ci/run.")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The path of the Chromium binary, checked to exist."""
    path = chromium_path()
    if not os.access(path, os.X_OK):
        _missing(
            f"Chromium was not found at {path}. Install Debian's chromium package "
            "(apt-get install -y chromium) or set PORTAL_SESSION_CHROMIUM to a Chromium binary."
        )
    return path


@pytest.fixture(scope="session")
def playwright_runtime(chromium_executable: str) -> Iterator[Playwright]:
    """A running Playwright driver for the whole test session."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed. Run: pip install -e '.[test]'.")
    expect.set_options(timeout=WAIT_MS)
    runtime = sync_playwright().start()
    yield runtime
    runtime.stop()


def _launch(runtime: Playwright, executable: str, ignore_certificate_errors: bool) -> Browser:
    # launch() gives every browser a new, empty profile in a temporary folder.
    return runtime.chromium.launch(
        executable_path=executable,
        headless=True,
        args=chromium_arguments(ignore_certificate_errors),
        timeout=WAIT_MS * 3,
    )


@pytest.fixture(scope="module")
def browser(playwright_runtime: Playwright, chromium_executable: str) -> Iterator[Browser]:
    """Headless Chromium that rejects invalid certificates, shared by one test module."""
    instance = _launch(playwright_runtime, chromium_executable, ignore_certificate_errors=False)
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def tls_browser(playwright_runtime: Playwright, chromium_executable: str) -> Iterator[Browser]:
    """Headless Chromium that accepts the tests' self-signed certificates, shared by one module."""
    instance = _launch(playwright_runtime, chromium_executable, ignore_certificate_errors=True)
    yield instance
    instance.close()


def _new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1000, "height": 760})
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context (empty cookie jar and cache) with one open page."""
    instance = _new_context(browser)
    instance.new_page()
    yield instance
    instance.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """The first page of ``context``."""
    return context.pages[0]


@pytest.fixture
def tls_context(tls_browser: Browser) -> Iterator[BrowserContext]:
    """A fresh context of the browser that accepts self-signed certificates."""
    instance = _new_context(tls_browser)
    instance.new_page()
    yield instance
    instance.close()


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Return ``screenshot(page, name)``, which saves a PNG under test-artifacts/screenshots."""
    from .portal_browser import save_screenshot

    def take(page: Page, name: str) -> Path:
        path = save_screenshot(page, name)
        _saved_screenshots.append(path)
        return path

    return take


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print where the screenshots went, so a person can look at them after the run."""
    if _saved_screenshots:
        terminalreporter.write_line(f"Browser test screenshots ({len(_saved_screenshots)}): {SCREENSHOT_DIR}")
