"""Managers invite readers without /admin/ (issue 12, "users exist only through /admin/"): a
reader account made from the study's people page, with a set-password link that is shown to the
manager, mailed when an address is given, single use and expiring."""

from __future__ import annotations

import socket

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from studies.models import Assignment, Role

NEW_PASSWORD = "reading vertebrae all day 7"


def _invite(client, study, **data):
    return client.post(reverse("accounts:invite", kwargs={"pk": study.pk}), data)


def _set_password(link: str) -> Client:
    client = Client()
    form = client.get(link, follow=True)
    assert form.context["validlink"]
    client.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    return client


def test_the_people_page_offers_the_invitation(client, world) -> None:
    client.force_login(world.manager)
    page = client.get(reverse("studies:people", kwargs={"pk": world.study_a.pk}))
    assert reverse("accounts:invite", kwargs={"pk": world.study_a.pk}) in page.content.decode()


def test_a_manager_invites_a_reader_who_sets_a_password_once(client, world) -> None:
    client.force_login(world.manager)
    response = _invite(client, world.study_a, username="newreader", email="new@example.org")
    assert response.status_code == 200
    link = response.context["link"]
    assert link in response.content.decode()
    user = get_user_model().objects.get(username="newreader")
    assert not user.has_usable_password()
    assert Assignment.objects.get(user=user).role == Role.READER
    assert Assignment.objects.get(user=user).study == world.study_a
    [message] = mail.outbox
    assert message.to == ["new@example.org"]
    assert link in message.body

    _set_password(link)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    reader = Client()
    reader.post(reverse("login"), {"username": "newreader", "password": NEW_PASSWORD})
    assert reader.session[SESSION_KEY] == str(user.pk)
    assert reader.get(reverse("study", kwargs={"pk": world.study_a.pk})).status_code == 200

    again = Client().get(link, follow=True)
    assert not again.context["validlink"]  # single use


def test_without_an_address_the_link_is_only_shown(client, world) -> None:
    client.force_login(world.manager)
    response = _invite(client, world.study_a, username="quiet")
    assert response.status_code == 200
    assert "/accounts/invite/" in response.context["link"]
    assert mail.outbox == []


def test_the_link_expires(client, world, settings) -> None:
    client.force_login(world.manager)
    link = _invite(client, world.study_a, username="late").context["link"]
    settings.PASSWORD_RESET_TIMEOUT = -1
    assert not Client().get(link, follow=True).context["validlink"]


def test_a_password_reset_link_is_not_an_invitation(client, world) -> None:
    client.force_login(world.manager)
    link = _invite(client, world.study_a, username="mixed").context["link"]
    reset_like = link.replace("/accounts/invite/", "/accounts/reset/")
    assert not Client().get(reset_like, follow=True).context["validlink"]


def test_an_existing_username_is_refused(client, world) -> None:
    client.force_login(world.manager)
    response = _invite(client, world.study_a, username="READER")
    assert response.status_code == 400
    assert "already has an account" in response.content.decode()
    before = Assignment.objects.filter(study=world.study_a).count()
    assert _invite(client, world.study_a, username="READER").status_code == 400
    assert Assignment.objects.filter(study=world.study_a).count() == before


@pytest.mark.parametrize(("role", "status"), [("reader", 403), ("manager_b", 404)])
def test_only_the_studys_managers_invite(client, world, role, status) -> None:
    client.force_login(getattr(world, role))
    assert _invite(client, world.study_a, username="sneaky").status_code == status
    assert not get_user_model().objects.filter(username="sneaky").exists()


def test_a_mail_server_that_is_down_still_shows_the_link(client, world, settings) -> None:
    with socket.socket() as probe:  # a port nobody listens on: the SMTP connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    client.force_login(world.manager)
    response = _invite(client, world.study_a, username="offline", email="off@example.org")
    assert response.status_code == 200
    assert "/accounts/invite/" in response.context["link"]
    assert "could not be sent" in response.content.decode()
    assert get_user_model().objects.filter(username="offline").exists()


# --- a role other than reader (issue 13 item 10) ---------------------------------------------


@pytest.mark.parametrize(
    ("role", "phrase"),
    [(Role.ADJUDICATOR, "an adjudicator"), (Role.MANAGER, "a study manager")],
)
def test_a_manager_invites_an_adjudicator_or_a_manager_and_the_mail_says_so(
    client, world, role, phrase
) -> None:
    client.force_login(world.manager)
    response = _invite(client, world.study_a, username="newcomer", email="n@example.org", role=role)
    assert response.status_code == 200
    user = get_user_model().objects.get(username="newcomer")
    assert Assignment.objects.get(user=user, study=world.study_a).role == role
    assert f"newcomer is {phrase} of {world.study_a.name}" in response.content.decode()
    [message] = mail.outbox
    assert f"has made you {phrase} of the study" in message.body
    assert message.subject == f"You are invited to {world.study_a.name} as {phrase}"
    assert response.context["link"] in message.body


def test_without_a_role_the_invitation_is_a_readers(client, world) -> None:
    client.force_login(world.manager)
    _invite(client, world.study_a, username="plain", email="p@example.org")
    assert Assignment.objects.get(user__username="plain").role == Role.READER
    [message] = mail.outbox
    assert "has made you a reader of the study" in message.body
    assert message.subject == f"You are invited to read in {world.study_a.name}"


def test_an_unknown_role_is_refused_and_no_account_is_made(client, world) -> None:
    client.force_login(world.manager)
    response = _invite(client, world.study_a, username="owner", role="owner")
    assert response.status_code == 400
    assert not get_user_model().objects.filter(username="owner").exists()
    assert mail.outbox == []


def test_the_people_pages_invite_form_offers_every_role(client, world) -> None:
    client.force_login(world.manager)
    page = client.get(reverse("studies:people", kwargs={"pk": world.study_a.pk}))
    form = page.content.decode().split('id="invite"', 1)[1].split("</form>", 1)[0]
    for value, label in Role.choices:
        assert f'<option value="{value}"' in form
        assert f">{label}</option>" in form
    assert '<option value="reader" selected>' in form
    invite_page = client.get(reverse("accounts:invite", kwargs={"pk": world.study_a.pk}))
    assert 'name="role"' in invite_page.content.decode()
