"""Steps a person takes in the browser: log in (through the form or by cookie), open a reading;
and waiting for a condition in the page under the site's Content-Security-Policy."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings


def wait_until(page, expression: str, *, arg: Any = None, timeout: float = 20_000) -> Any:
    """Poll a JavaScript expression (or a function of ``arg``) until it is truthy; its value.

    Playwright's ``page.wait_for_function`` runs its predicate through the page's own
    ``eval``, which the site's Content-Security-Policy forbids (no ``'unsafe-eval'``): it fails
    with an EvalError. ``page.evaluate`` goes through the DevTools protocol, which no page
    policy restricts, so the policy stays on for everything else the page does.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout / 1000:g} s: {expression}")
        page.wait_for_timeout(50)


def login(page, username: str, password: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def login_fast(page, live_server, user) -> None:
    """Give the browser a session cookie for ``user`` (tests that are not about logging in)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
    )


def open_viewer(page, public_id: object) -> None:
    """Open a reading (by its public id, what its URL carries) and wait until the first image
    is painted."""
    page.goto(f"/readings/{public_id}/")
    wait_until(
        page, "document.body.dataset.viewerReady === '1' || document.body.dataset.viewerError"
    )
    error = page.evaluate("document.body.dataset.viewerError")
    assert not error, f"the viewer failed: {error}; console: {page.errors}"
