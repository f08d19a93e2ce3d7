"""Playwright (sync API) driving Debian's Chromium against a live server.

Never a downloaded browser: ``/usr/bin/chromium`` (``scripts/setup`` installs Debian's package),
headless, with the flags below. The viewer bundle must have been built (``npm run build``, which
``scripts/setup`` runs). Scoring is real: the ``celery_worker`` fixture of
``tests/integration/conftest.py`` (re-exported here) runs a worker on a real Redis.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# browser steps are ordinary synchronous calls all the same.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from tests.helpers.workers import celery_worker  # noqa: F401

CHROMIUM = Path(os.environ.get("VBQ_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
BUNDLE = Path(settings.BASE_DIR) / "static/dist/viewer.js"
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    if not BUNDLE.exists():
        pytest.fail(f"{BUNDLE} is missing: run `npm ci && npm run build` (scripts/setup does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


# Every Content-Security-Policy violation becomes a console error, so that it lands on
# ``page.errors`` (Chromium logs most of them itself, but not all, e.g. report-only ones).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`
    + ` (${event.sourceFile}:${event.lineNumber})`);
});
"""


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    """A fresh browser context at 1280 x 800; console errors (CSP violations included) are
    collected on ``page.errors``."""
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda msg: msg.type == "error" and page.errors.append(msg.text),  # type: ignore[attr-defined]
    )
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]
    page.set_default_timeout(20_000)
    yield page
    context.close()
