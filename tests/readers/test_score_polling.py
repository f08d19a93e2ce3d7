"""The viewer's JSON endpoints under polling and after the session ends: conditional score
requests (ETag → 304) and 401 JSON with the login URL instead of a redirect to HTML."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from readers import services
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.brokers import broker_at, broker_down
from tests.helpers.factories import case_set_import_trusted_files
from vbqweb import notify


@pytest.fixture
def reading_with_rois(world, tmp_path: Path):
    (case_dir,) = write_phantom(tmp_path / "p", cases=1, seed=11)
    case_set_import_trusted_files(
        study=world.study_a, name="phantom", cases=[("Case 1", list(case_dir.glob("*.dcm")))]
    )
    truth = json.loads((case_dir / "truth.json").read_text())
    case = Case.objects.get(study=world.study_a)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    return services.reading_save_rois(reading=reading, data=truth["rois"]), truth


def test_an_unchanged_score_is_a_304_and_a_new_one_a_200_with_a_new_tag(
    world, reading_with_rois, client
) -> None:
    reading, truth = reading_with_rois
    client.force_login(world.reader)
    url = reverse("readers:score", kwargs={"public_id": reading.public_id})
    pending = client.get(url)
    assert pending.status_code == 200
    assert pending.json()["status"] == "pending"
    tag = pending["ETag"]
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert "no-store" in pending["Cache-Control"]  # never on a workstation's disk

    again = client.get(url, HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == tag
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"other", W/{tag}').status_code == 304

    services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    scored = client.get(url, HTTP_IF_NONE_MATCH=tag)
    assert scored.status_code == 200
    assert scored.json()["status"] == "ok"
    assert scored["ETag"] != tag
    assert client.get(url, HTTP_IF_NONE_MATCH=scored["ETag"]).status_code == 304

    # A new save: pending again, under a new tag.
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    after_save = client.get(url, HTTP_IF_NONE_MATCH=scored["ETag"])
    assert after_save.status_code == 200
    assert after_save.json() == {
        "status": "pending",
        "roi_version": 2,
        "waiting_for_worker": True,
    }


def test_another_readers_tag_reveals_nothing(world, reading_with_rois, client) -> None:
    """The tag is checked after access: someone who may not see the reading gets a 404."""
    reading, _ = reading_with_rois
    client.force_login(world.reader)
    url = reverse("readers:score", kwargs={"public_id": reading.public_id})
    tag = client.get(url)["ETag"]
    client.force_login(world.other_reader)
    assert client.get(url, HTTP_IF_NONE_MATCH=tag).status_code == 404


@pytest.mark.parametrize(
    ("method", "name"),
    [("post", "readers:rois"), ("post", "readers:submit_json"), ("get", "readers:score")],
)
def test_a_signed_out_script_gets_401_json_with_the_login_url(
    world, reading_with_rois, client, method, name
) -> None:
    """An expired session: the viewer's autosave must not take a login page for a save."""
    reading, truth = reading_with_rois
    url = reverse(name, kwargs={"public_id": reading.public_id})
    body = json.dumps(truth["rois"]) if name == "readers:rois" else "{}"
    kwargs = {"data": body, "content_type": "application/json"} if method == "post" else {}
    response = getattr(client, method)(url, HTTP_ACCEPT="application/json", **kwargs)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["location"] == reverse("login")
    assert "sign in again" in payload["error"]
    reading.refresh_from_db()
    assert reading.roi_version == 1  # nothing saved


def test_a_signed_out_page_visit_still_goes_to_the_login_page(world, reading_with_rois, client):
    reading, _ = reading_with_rois
    url = reverse("readers:detail", kwargs={"public_id": reading.public_id})
    response = client.get(url, HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


# --- waiting on the server (?wait=1, vbqweb.notify) ----------------------------------------


def _timed_get(client, url: str) -> tuple[float, object]:
    start = time.monotonic()
    response = client.get(url)
    return time.monotonic() - start, response


def _waiting_poll(world, reading_with_rois, client, settings, *, wait_seconds: float):
    """The reader signed in, the server's wait set; her reading and the URL of its score
    asking the server to wait (``?wait=1``)."""
    settings.VBQ_SCORE_WAIT_SECONDS = wait_seconds
    reading, _ = reading_with_rois
    client.force_login(world.reader)
    return reading, reverse("readers:score", kwargs={"public_id": reading.public_id}) + "?wait=1"


@pytest.mark.django_db(transaction=True)
def test_a_waiting_poll_answers_when_the_worker_stores_the_score(
    world, reading_with_rois, client, redis_url, settings
) -> None:
    """One request, answered when the score is stored (about 1 s here), not at the wait's end."""
    reading, url = _waiting_poll(world, reading_with_rois, client, settings, wait_seconds=10)

    def worker() -> None:  # what the Celery worker does, from another thread and connection
        time.sleep(1.0)
        try:
            services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
        finally:
            connection.close()

    with broker_at(redis_url):
        thread = threading.Thread(target=worker)
        thread.start()
        elapsed, response = _timed_get(client, url)
        thread.join()
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert 0.9 <= elapsed < 5, elapsed  # it waited, and was woken, not timed out


@pytest.mark.django_db(transaction=True)
def test_a_waiting_poll_gives_up_after_the_wait_and_says_pending(
    world, reading_with_rois, client, redis_url, settings
) -> None:
    _, url = _waiting_poll(world, reading_with_rois, client, settings, wait_seconds=1)
    with broker_at(redis_url):
        elapsed, response = _timed_get(client, url)
    assert response.json()["status"] == "pending"
    assert 0.9 <= elapsed < 3, elapsed


def test_without_redis_a_waiting_poll_answers_at_once(
    world, reading_with_rois, client, settings
) -> None:
    """Redis away: no wait (the viewer polls on its schedule), and no error."""
    _, url = _waiting_poll(world, reading_with_rois, client, settings, wait_seconds=10)
    with broker_down():
        elapsed, response = _timed_get(client, url)
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert elapsed < 2, elapsed


@pytest.mark.django_db(transaction=True)
def test_waiters_never_take_more_than_their_slots(
    world, reading_with_rois, client, redis_url, settings
) -> None:
    """With every waiting slot of the process taken, a poll answers at once: waiting polls
    must never hold all of a web process's threads."""
    settings.VBQ_SCORE_WAITERS = 1
    _, url = _waiting_poll(world, reading_with_rois, client, settings, wait_seconds=10)
    with broker_at(redis_url), notify.waiting_on("someone-else") as other:
        assert other.wait(0.01) is False  # it holds the one slot, subscribed
        elapsed, response = _timed_get(client, url)
    assert response.json()["status"] == "pending"
    assert elapsed < 2, elapsed
