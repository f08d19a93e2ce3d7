"""Steps a person takes in the browser: log in (through the form or by cookie), open a reading."""

from __future__ import annotations

from django.conf import settings


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


def open_viewer(page, reading_pk: int) -> None:
    """Open a reading and wait until the first image is painted."""
    page.goto(f"/readings/{reading_pk}/")
    page.wait_for_function(
        "document.body.dataset.viewerReady === '1' || document.body.dataset.viewerError"
    )
    error = page.evaluate("document.body.dataset.viewerError")
    assert not error, f"the viewer failed: {error}; console: {page.errors}"
