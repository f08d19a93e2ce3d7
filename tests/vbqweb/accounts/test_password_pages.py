"""Django's auth views under /accounts/ (spec §7; issue 12, "no self-service password change or
reset"): the paths and names of ``django.contrib.auth.urls``, a password change, and a reset
mailed through Django's email backend whose link works once."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth import urls as auth_urls
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.helpers.factories import PASSWORD

NEW_PASSWORD = "a new and long passphrase 42"


@pytest.mark.parametrize("pattern", auth_urls.urlpatterns, ids=lambda p: p.name)
def test_every_django_auth_url_is_under_accounts_with_its_name(pattern) -> None:
    kwargs = dict.fromkeys(pattern.pattern.converters, "x")
    assert reverse(pattern.name, kwargs=kwargs) == "/accounts/" + str(pattern.pattern).replace(
        "<uidb64>", "x"
    ).replace("<token>", "x")


def test_the_pages_use_the_sites_templates(client, world) -> None:
    client.force_login(world.reader)
    for name in ["password_change", "password_reset", "password_reset_done"]:
        page = client.get(reverse(name)).content.decode()
        assert "VBQ Reader Studies" in page, name
        assert "Django administration" not in page, name


def test_a_user_changes_their_password(client, world) -> None:
    client.force_login(world.reader)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response.url == reverse("password_change_done")
    world.reader.refresh_from_db()
    assert world.reader.check_password(NEW_PASSWORD)
    assert client.get(reverse("home")).status_code == 200  # still signed in


def test_a_wrong_old_password_changes_nothing(client, world) -> None:
    client.force_login(world.reader)
    response = client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    world.reader.refresh_from_db()
    assert world.reader.check_password(PASSWORD)


def test_a_reset_is_mailed_and_its_link_works_once(client, world) -> None:
    world.reader.email = "reader@example.org"
    world.reader.save()
    response = client.post(reverse("password_reset"), {"email": "reader@example.org"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    [message] = mail.outbox
    assert message.to == ["reader@example.org"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)

    form = client.get(link, follow=True)
    assert form.status_code == 200
    assert form.context["validlink"]
    set_url = form.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_complete")
    world.reader.refresh_from_db()
    assert world.reader.check_password(NEW_PASSWORD)

    again = Client().get(link, follow=True)
    assert again.status_code == 200
    assert not again.context["validlink"]
    assert "This link does not work" in again.content.decode()


def test_a_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, db) -> None:
    response = client.post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert mail.outbox == []


def test_signing_in_and_out_through_accounts(client, world) -> None:
    response = client.post(reverse("login"), {"username": "reader", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert client.session[SESSION_KEY] == str(world.reader.pk)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert SESSION_KEY not in client.session
