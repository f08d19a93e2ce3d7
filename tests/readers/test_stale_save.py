"""A stale autosave does not overwrite a newer one ("nothing lost"): the viewer sends the ROI
version its edit was made on in ``X-VBQ-Base-Version``; a save made on an older version than the
reading's is a 409 that saves nothing and says which version (and set) the server holds. A save
without the header keeps the last-save-wins behaviour of scripts and ``manage.py`` tools."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from django.urls import reverse

from readers import services
from readers.measurement.rois import parse_roi_set
from readers.models import Reading
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files


@pytest.fixture
def reading_and_truth(world, tmp_path: Path) -> tuple[Reading, dict]:
    [folder] = write_phantom(tmp_path / "p", cases=1, seed=8)
    case_set_import_trusted_files(
        study=world.study_a, name="phantom", cases=[("Case 1", list(folder.glob("*.dcm")))]
    )
    case = Case.objects.get(study=world.study_a)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    return reading, json.loads((folder / "truth.json").read_text())["rois"]


def _variant(truth: dict, scale: float) -> dict:
    rois = copy.deepcopy(truth)
    rois["rois"][0]["radii"] = [r * scale for r in rois["rois"][0]["radii"]]
    return rois


def _save(client, reading: Reading, data: dict, base: int | str | None):
    url = reverse("readers:rois", kwargs={"public_id": reading.public_id})
    headers = {} if base is None else {"X-VBQ-Base-Version": str(base)}
    return client.post(url, json.dumps(data), content_type="application/json", headers=headers)


def _stored(reading: Reading) -> tuple[int, dict | None]:
    reading.refresh_from_db()
    return reading.roi_version, reading.rois


def test_a_save_on_the_current_version_is_stored(client, world, reading_and_truth) -> None:
    reading, truth = reading_and_truth
    client.force_login(world.reader)
    first = _save(client, reading, _variant(truth, 0.9), base=0)
    assert first.status_code == 200, first.json()
    assert first.json()["roi_version"] == 1
    second = _save(client, reading, _variant(truth, 0.8), base=1)
    assert second.status_code == 200, second.json()
    assert _stored(reading) == (2, parse_roi_set(_variant(truth, 0.8)).to_json())


def test_a_save_on_an_older_version_is_409_and_saves_nothing(
    client, world, reading_and_truth
) -> None:
    reading, truth = reading_and_truth
    client.force_login(world.reader)
    assert _save(client, reading, _variant(truth, 0.9), base=0).status_code == 200  # tab A
    before = _stored(reading)
    stale = _save(client, reading, _variant(truth, 0.5), base=0)  # tab B, opened on version 0
    assert stale.status_code == 409
    body = stale.json()
    assert "another window or tab" in body["error"]
    assert body["roi_version"] == 1
    assert body["rois"] == before[1]  # so the viewer can tell its own late save from another's
    assert _stored(reading) == before
    assert reading.revisions.count() == 1


def test_a_base_ahead_of_the_server_is_409_too(client, world, reading_and_truth) -> None:
    reading, truth = reading_and_truth
    client.force_login(world.reader)
    response = _save(client, reading, _variant(truth, 0.9), base=5)
    assert response.status_code == 409
    assert response.json()["roi_version"] == 0
    assert _stored(reading) == (0, None)


def test_a_save_without_the_header_wins_as_before(client, world, reading_and_truth) -> None:
    reading, truth = reading_and_truth
    client.force_login(world.reader)
    assert _save(client, reading, _variant(truth, 0.9), base=0).status_code == 200
    assert _save(client, reading, _variant(truth, 0.8), base=0).status_code == 409
    response = _save(client, reading, _variant(truth, 0.5), base=None)
    assert response.status_code == 200
    assert _stored(reading) == (2, parse_roi_set(_variant(truth, 0.5)).to_json())


@pytest.mark.parametrize("base", ["seven", "-1", "1.0", "9" * 20])
def test_a_malformed_base_version_is_400(client, world, reading_and_truth, base) -> None:
    reading, truth = reading_and_truth
    client.force_login(world.reader)
    response = _save(client, reading, _variant(truth, 0.9), base=base)
    assert response.status_code == 400
    assert "X-VBQ-Base-Version" in response.json()["error"]
    assert _stored(reading) == (0, None)


def test_the_service_refuses_a_stale_base_and_takes_none(world, reading_and_truth) -> None:
    reading, truth = reading_and_truth
    reading = services.reading_save_rois(reading=reading, data=_variant(truth, 0.9), base_version=0)
    with pytest.raises(services.RoiVersionConflict) as refused:
        services.reading_save_rois(reading=reading, data=_variant(truth, 0.8), base_version=0)
    assert refused.value.roi_version == 1
    reading = services.reading_save_rois(reading=reading, data=_variant(truth, 0.7))
    assert reading.roi_version == 2
