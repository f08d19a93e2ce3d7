"""Signing in, in a real browser (issue 12's acceptance): a manager with an authenticator app
signs in with the code it shows, a manager without one enrols from the QR code first, and a
locked-out reader reads the lockout message; none of these pages breaks the
Content-Security-Policy (``page.errors`` collects every violation)."""

from __future__ import annotations

import time

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.helpers.browser import login
from tests.helpers.factories import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def mfa_required(settings) -> None:
    settings.VBQ_MFA_REQUIRED = True


def _code(device: TOTPDevice) -> str:
    """What the manager's authenticator app shows now (computed from the device's key)."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def test_a_manager_signs_in_with_a_totp_code(page, live_server, world) -> None:
    device = TOTPDevice.objects.create(user=world.manager, name="phone", confirmed=True)
    login(page, "manager", PASSWORD)
    assert "/accounts/mfa/verify/" in page.url
    assert page.locator("h1").inner_text() == "Enter your code"
    page.fill("input[name=token]", _code(device))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert "Welcome, manager" in page.content()
    page.goto(f"/studies/{world.study_a.pk}/people/")
    assert page.locator("h1").inner_text() == "Readers and managers"
    assert page.errors == []


def test_a_manager_without_a_device_enrols_from_the_qr_code(page, live_server, world) -> None:
    login(page, "manager", PASSWORD)
    assert "/accounts/mfa/setup/" in page.url
    qr = page.locator("figure.qr svg")
    assert qr.is_visible()
    assert qr.bounding_box()["width"] > 100  # drawn, at a size a phone can scan
    page.goto(f"/studies/{world.study_a.pk}/")  # nothing else until enrolled
    assert "/accounts/mfa/setup/" in page.url
    device = TOTPDevice.objects.get(user=world.manager, confirmed=False)
    page.fill("input[name=token]", _code(device))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/studies/{world.study_a.pk}/")
    assert TOTPDevice.objects.get(user=world.manager).confirmed
    assert page.errors == []


def test_a_locked_out_reader_sees_the_lockout_message(page, live_server, world, settings) -> None:
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        page.goto("/accounts/login/")
        page.fill("input[name=username]", "reader")
        page.fill("input[name=password]", f"wrong {attempt}")
        page.click("button[type=submit]")
        page.wait_for_load_state()
    # Locked now: the right password too is refused, with the message.
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "reader")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    message = page.locator("#lockout")
    message.wait_for()
    assert "Too many failed sign-ins" in message.inner_text()
    assert "locked for 15 minutes" in message.inner_text()
    page.goto("/")
    assert "/accounts/login/" in page.url  # not signed in
    # Chromium reports each 429 page as a failed load in the console; nothing else is there
    # (no CSP violation).
    status_429 = "Failed to load resource: the server responded with a status of 429"
    assert page.errors
    assert all(error.startswith(status_429) for error in page.errors), page.errors
