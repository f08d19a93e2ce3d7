"""The viewer's JSON endpoints under polling and after the session ends: conditional score
requests (ETag → 304) and 401 JSON with the login URL instead of a redirect to HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from readers import services
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files


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
