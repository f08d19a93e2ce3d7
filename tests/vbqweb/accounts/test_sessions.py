"""Session limits (issue 12, "sessions last 14 days"): an idle timeout
(``VBQ_SESSION_IDLE_MINUTES``), an absolute lifetime (``VBQ_SESSION_MAX_HOURS``) and a cookie
that ends with the browser. An expired session is logged out and the request answered as an
anonymous one: the login page for a page, 401 JSON for the viewer's calls."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from tests.helpers import factories
from tests.helpers.factories import PASSWORD
from vbqweb.accounts.sessions import SEEN, STARTED


def _age(client, **minutes_ago: float) -> None:
    """Move the session's stamps into the past (``started=…``, ``seen=…``, in minutes)."""
    session = client.session
    keys = {"started": STARTED, "seen": SEEN}
    for name, minutes in minutes_ago.items():
        session[keys[name]] = time.time() - minutes * 60
    session.save()


@pytest.fixture
def reader(client, world):
    response = client.post(reverse("login"), {"username": "reader", "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_the_defaults_are_30_minutes_idle_and_12_hours_in_all() -> None:
    from vbqweb import settings as defaults

    assert defaults.VBQ_SESSION_IDLE_MINUTES == 30
    assert defaults.VBQ_SESSION_MAX_HOURS == 12
    assert defaults.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert defaults.SESSION_COOKIE_AGE == 12 * 3600


def test_the_session_cookie_ends_with_the_browser(reader) -> None:
    cookie = reader.cookies["sessionid"]
    assert cookie["expires"] == ""
    assert cookie["max-age"] == ""


def test_a_session_idle_too_long_is_signed_out(reader) -> None:
    assert reader.get(reverse("home")).status_code == 200
    _age(reader, seen=31)
    response = reader.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert SESSION_KEY not in reader.session
    page = reader.get(response.url).content.decode()
    assert "30 minutes without activity" in page


def test_activity_keeps_a_session_alive_past_the_idle_limit(reader) -> None:
    for _ in range(4):  # 4 × 20 minutes of work, each step within the idle limit
        _age(reader, seen=20)
        assert reader.get(reverse("home")).status_code == 200
    assert reader.session[SESSION_KEY]


def test_a_session_ends_after_its_lifetime_even_when_busy(reader) -> None:
    _age(reader, started=12 * 60 + 1, seen=1)
    response = reader.get(reverse("home"))
    assert response.status_code == 302
    assert SESSION_KEY not in reader.session
    assert "at most 12 hours" in reader.get(response.url).content.decode()


def test_the_limits_are_settings(reader, settings) -> None:
    settings.VBQ_SESSION_IDLE_MINUTES = 5
    _age(reader, seen=6)
    assert reader.get(reverse("home")).status_code == 302


def test_an_expired_session_gets_401_json_from_the_viewers_calls(reader, world) -> None:
    reading = factories.ReadingFactory(
        reader=world.reader, case=factories.CaseFactory(study=world.study_a)
    )
    score = reverse("readers:score", kwargs={"public_id": reading.public_id})
    assert reader.get(score).status_code == 200
    _age(reader, seen=31)
    response = reader.get(score)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert SESSION_KEY not in reader.session


def test_a_session_from_before_the_stamps_starts_its_clocks(client, world) -> None:
    client.force_login(world.reader)  # no sign-in signal with a request: no stamps yet
    session = client.session
    session.pop(STARTED, None)
    session.pop(SEEN, None)
    session.save()
    assert client.get(reverse("home")).status_code == 200
    assert client.session[STARTED] == pytest.approx(time.time(), abs=5)
