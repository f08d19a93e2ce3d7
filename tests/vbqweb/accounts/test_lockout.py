"""Sign-in throttling and lockout (issue 12, "no brute-force protection"): per account and per
address, on /accounts/login/, its /login/ alias and /admin/login/, with a clear message and an
unlock in /admin/."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY, authenticate
from django.test import Client
from django.urls import reverse

from tests.helpers.factories import PASSWORD
from vbqweb.accounts.lockout import client_ip

LOCKED = "Too many failed sign-ins"
SIGN_IN_PAGES = ["/accounts/login/", "/admin/login/"]


def _sign_in(client: Client, url: str, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.parametrize("url", SIGN_IN_PAGES)
def test_twenty_wrong_passwords_then_the_right_one_does_not_sign_in(client, world, url) -> None:
    for _ in range(20):
        _sign_in(client, url, "admin", "wrong password")
    response = _sign_in(client, url, "admin", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert SESSION_KEY not in client.session
    assert client.get(reverse("home")).status_code == 302  # still signed out


def test_the_lock_starts_at_the_configured_failure_count(client, world, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert _sign_in(client, "/accounts/login/", "reader", "nope").status_code == 200
    assert _sign_in(client, "/accounts/login/", "reader", "nope").status_code == 429
    assert _sign_in(client, "/accounts/login/", "reader", PASSWORD).status_code == 429


def test_fewer_failures_than_the_limit_still_sign_in(client, world) -> None:
    for _ in range(4):
        _sign_in(client, "/accounts/login/", "reader", "nope")
    response = _sign_in(client, "/accounts/login/", "reader", PASSWORD)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(world.reader.pk)


def test_an_account_is_locked_whatever_the_address(client, world) -> None:
    for n in range(6):
        _sign_in(client, "/accounts/login/", "reader", "nope", ip=f"10.0.1.{n}")
    response = _sign_in(client, "/accounts/login/", "reader", PASSWORD, ip="10.9.9.9")
    assert response.status_code == 429
    assert SESSION_KEY not in client.session
    # Another account from a fresh address is not affected.
    assert (
        _sign_in(Client(), "/accounts/login/", "other_reader", PASSWORD, "10.9.9.8").status_code
        == 302
    )


def test_an_address_is_locked_whatever_the_account(client, world) -> None:
    for n in range(6):
        _sign_in(client, "/accounts/login/", f"guess{n}", "nope", ip="10.0.2.1")
    response = _sign_in(client, "/accounts/login/", "reader", PASSWORD, ip="10.0.2.1")
    assert response.status_code == 429
    assert SESSION_KEY not in client.session
    assert _sign_in(Client(), "/accounts/login/", "reader", PASSWORD, "10.0.2.2").status_code == 302


def test_the_login_alias_leads_to_the_one_sign_in_page(client, world) -> None:
    """/login/ (spec §7: "may stay as an alias") forwards to /accounts/login/ with its query;
    it checks no password itself, so it is no way around the lockout."""
    response = client.get("/login/?next=/studies/1/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/studies/1/"
    response = _sign_in(client, "/login/", "reader", PASSWORD)
    assert response.status_code == 302
    assert response.url == "/accounts/login/"
    assert SESSION_KEY not in client.session


def test_a_site_admin_unlocks_in_the_admin(client, world) -> None:
    for _ in range(6):
        _sign_in(client, "/accounts/login/", "reader", "nope")
    assert _sign_in(client, "/accounts/login/", "reader", PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(world.admin)
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = admin.get(changelist)
    assert page.status_code == 200
    assert "reader" in page.content.decode()
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    response = admin.post(
        changelist,
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    response = _sign_in(client, "/accounts/login/", "reader", PASSWORD)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(world.reader.pk)


def test_the_lock_ends_after_the_cool_off(client, world, settings) -> None:
    for _ in range(6):
        _sign_in(client, "/accounts/login/", "reader", "nope")
    assert _sign_in(client, "/accounts/login/", "reader", PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.first().attempt_time - settings.AXES_COOLOFF_TIME * 2
    )
    assert _sign_in(client, "/accounts/login/", "reader", PASSWORD).status_code == 302


def test_authenticate_without_a_request_is_refused_for_a_locked_account(world) -> None:
    """``Client.login`` and code outside a request pass no request: the account's lock still
    holds for them (``vbqweb.accounts.backends``), and a free account signs in."""
    assert authenticate(username="reader", password=PASSWORD) == world.reader
    client = Client()
    for _ in range(6):
        _sign_in(client, "/accounts/login/", "reader", "nope")
    assert authenticate(username="reader", password=PASSWORD) is None
    assert Client().login(username="reader", password=PASSWORD) is False
    assert Client().login(username="other_reader", password=PASSWORD) is True


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "6.6.6.6", "10.0.0.9"),  # no proxy: the header is the client's own, ignored
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # what our proxy saw, not what was claimed
        (2, "203.0.113.7, 10.1.1.1", "203.0.113.7"),
        (2, "", "10.0.0.9"),  # a header too short for the count: the socket's address
    ],
)
def test_the_address_behind_reverse_proxies(settings, rf, proxies, forwarded, expected) -> None:
    settings.VBQ_PROXY_COUNT = proxies
    request = rf.post("/accounts/login/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_mail_goes_to_the_console_unless_configured() -> None:
    from vbqweb import settings as defaults

    assert defaults.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"


def test_signing_in_to_ones_own_account_does_not_clear_the_addresss_count(client, world) -> None:
    """Else one account would let its holder try the others' passwords from their address for
    ever, four at a time."""
    for n in range(4):
        _sign_in(Client(), "/accounts/login/", f"victim{n}", "guess", ip="10.0.3.1")
    assert _sign_in(Client(), "/accounts/login/", "reader", PASSWORD, "10.0.3.1").status_code == 302
    _sign_in(Client(), "/accounts/login/", "victim9", "guess", ip="10.0.3.1")
    response = _sign_in(Client(), "/accounts/login/", "other_reader", PASSWORD, "10.0.3.1")
    assert response.status_code == 429
