"""TOTP second factor (issue 12, "no MFA"): required for managers and admins when
``VBQ_MFA_REQUIRED`` is on (the suite turns it off in ``tests/conftest.py``; it is on here),
optional for readers; enrolment with an inline-SVG QR code; the code step after the password on
every way in, the admin's included; JSON callers get 401, never a redirect."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from studies.models import Role
from tests.helpers import factories
from tests.helpers.factories import PASSWORD


@pytest.fixture(autouse=True)
def mfa_required(settings) -> None:
    settings.VBQ_MFA_REQUIRED = True


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """What the authenticator app shows now (or ``steps_ahead`` periods from now)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def signed_in(user, password: str = PASSWORD) -> Client:
    """A client through the real sign-in form (the password step only)."""
    client = Client()
    response = client.post(reverse("login"), {"username": user.username, "password": password})
    assert response.status_code == 302, response.content
    return client


@pytest.mark.parametrize(
    ("role", "url_name", "kwargs"),
    [
        ("manager", "home", {}),
        ("manager", "study", {"pk": "study_a"}),
        ("manager", "studies:people", {"pk": "study_a"}),
        ("manager", "analytics:agreement", {"pk": "study_a"}),
        ("manager", "accounts:invite", {"pk": "study_a"}),
        ("manager", "password_change", {}),
        ("admin", "home", {}),
        ("admin", "admin:index", {}),
        ("admin", "admin:auth_user_changelist", {}),
    ],
)
def test_a_manager_or_admin_without_a_device_can_only_enrol(
    client, world, role, url_name, kwargs
) -> None:
    client.force_login(getattr(world, role))
    kwargs = {k: getattr(world, v).pk for k, v in kwargs.items()}
    url = reverse(url_name, kwargs=kwargs)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('accounts:mfa_setup')}?next={url.replace('/', '%2F')}"


def test_a_json_caller_is_told_401_not_redirected(client, world) -> None:
    client.force_login(world.manager)
    response = client.get(reverse("dicomweb:studies"))
    assert response.status_code == 401
    assert response.json()["location"] == reverse("accounts:mfa_setup")


def test_a_reader_without_a_device_needs_none(client, world) -> None:
    client.force_login(world.reader)
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("study", kwargs={"pk": world.study_a.pk})).status_code == 200


def test_with_the_setting_off_nobody_is_held(client, world, settings) -> None:
    settings.VBQ_MFA_REQUIRED = False
    client.force_login(world.manager)
    assert client.get(reverse("studies:people", kwargs={"pk": world.study_a.pk})).status_code == 200


def test_a_manager_enrols_with_the_qr_code_and_then_works(world) -> None:
    client = signed_in(world.manager)
    assert client.get(reverse("home")).url.startswith(reverse("accounts:mfa_setup"))
    page = client.get(reverse("accounts:mfa_setup") + "?next=/studies/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<svg width="' in html
    assert "<script" not in html
    device = TOTPDevice.objects.get(user=world.manager, confirmed=False)
    assert page.context["secret"].replace(" ", "") in device.config_url

    wrong = client.post(reverse("accounts:mfa_setup"), {"token": "000000", "next": "/"})
    assert wrong.status_code == 400
    device.refresh_from_db()
    device.throttling_failure_count = 0  # the throttle's wait is django-otp's, not tested here
    device.save()
    response = client.post(reverse("accounts:mfa_setup"), {"token": code(device), "next": "/"})
    assert response.status_code == 302
    assert response.url == "/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("studies:people", kwargs={"pk": world.study_a.pk})).status_code == 200


def test_the_same_key_is_shown_until_confirmed(client, world) -> None:
    client.force_login(world.manager)
    first = client.get(reverse("accounts:mfa_setup")).context["secret"]
    assert client.get(reverse("accounts:mfa_setup")).context["secret"] == first
    assert TOTPDevice.objects.filter(user=world.manager).count() == 1


@pytest.mark.parametrize("role", ["manager", "reader"])
def test_after_the_password_a_user_with_a_device_gives_a_code(world, role) -> None:
    user = getattr(world, role)
    device = enrolled(user)
    client = signed_in(user)
    study = reverse("study", kwargs={"pk": world.study_a.pk})
    response = client.get(study)
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:mfa_verify"))
    # Nothing else before the code: not enrolling a new phone, not the viewer's JSON.
    assert client.get(reverse("accounts:mfa_setup")).url.startswith(reverse("accounts:mfa_verify"))
    assert client.get(reverse("dicomweb:studies")).status_code == 401

    wrong = client.post(reverse("accounts:mfa_verify"), {"token": "123456", "next": study})
    assert wrong.status_code == 400
    assert "not right" in wrong.content.decode()
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.save()
    session_before = client.session.session_key
    response = client.post(reverse("accounts:mfa_verify"), {"token": code(device), "next": study})
    assert response.status_code == 302
    assert response.url == study
    assert client.session.session_key != session_before  # a new key after the second factor
    assert client.get(study).status_code == 200


def test_a_code_is_accepted_once(world) -> None:
    device = enrolled(world.reader)
    token = code(device)
    first = signed_in(world.reader)
    assert first.post(reverse("accounts:mfa_verify"), {"token": token}).status_code == 302
    second = signed_in(world.reader)
    assert second.post(reverse("accounts:mfa_verify"), {"token": token}).status_code == 400
    assert second.get(reverse("home")).status_code == 302


def test_the_admin_login_asks_for_the_code_too(world) -> None:
    device = enrolled(world.admin)
    client = Client()
    response = client.post(
        reverse("admin:login"), {"username": "admin", "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(world.admin.pk)  # the password step is done
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:mfa_verify"))
    client.post(reverse("accounts:mfa_verify"), {"token": code(device)})
    assert client.get("/admin/").status_code == 200


def test_a_reader_may_turn_it_off_with_a_code_a_manager_may_not(world) -> None:
    reader_device = enrolled(world.reader)
    reader = Client()
    reader.force_login(world.reader)
    reader.post(reverse("accounts:mfa_verify"), {"token": code(reader_device)})
    wrong = reader.post(reverse("accounts:mfa_remove"), {"token": "000000"})
    assert wrong.status_code == 302
    assert TOTPDevice.objects.filter(user=world.reader).exists()
    reader_device.refresh_from_db()
    reader_device.throttling_failure_count = 0
    reader_device.save()
    reader.post(reverse("accounts:mfa_remove"), {"token": code(reader_device, steps_ahead=1)})
    assert not TOTPDevice.objects.filter(user=world.reader).exists()
    assert reader.get(reverse("home")).status_code == 200

    manager_device = enrolled(world.manager)
    manager = Client()
    manager.force_login(world.manager)
    manager.post(reverse("accounts:mfa_verify"), {"token": code(manager_device)})
    manager.post(reverse("accounts:mfa_remove"), {"token": code(manager_device, steps_ahead=1)})
    assert TOTPDevice.objects.filter(user=world.manager, confirmed=True).exists()


def test_a_reader_promoted_to_manager_must_enrol(client, world) -> None:
    client.force_login(world.reader_b)
    assert client.get(reverse("home")).status_code == 200
    factories.AssignmentFactory(study=world.study_a, user=world.reader_b, role=Role.MANAGER)
    assert client.get(reverse("home")).url.startswith(reverse("accounts:mfa_setup"))
