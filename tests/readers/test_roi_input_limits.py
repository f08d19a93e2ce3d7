"""What a browser may post to the reading's JSON endpoints (issue 12): bounded bodies, sets and
geometry, strict JSON; every refusal is a 400 that says why and changes nothing, never a 500.

The phantom's images are 320 × 320 pixels, so its geometry bound (one image size around the
image, ``readers.measurement.rois.check_roi_limits``) is -320 ≤ x, y ≤ 640 and radii ≤ 320.
"""

from __future__ import annotations

import copy
import html
import json
import math
from pathlib import Path

import pytest
from django.urls import reverse

from readers import services
from readers.measurement.rois import WEB_ROI_LIMITS
from readers.models import Reading
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files

DEEP = b"[" * 4096 + b"]" * 4096
"""4 KB of nesting: Python's decoder recurses once per level and ends in a RecursionError."""


@pytest.fixture
def reading_and_truth(world, tmp_path: Path):
    [folder] = write_phantom(tmp_path / "p", cases=1, seed=8)
    case_set_import_trusted_files(
        study=world.study_a, name="phantom", cases=[("Case 1", list(folder.glob("*.dcm")))]
    )
    case = Case.objects.get(study=world.study_a)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    return reading, json.loads((folder / "truth.json").read_text())["rois"]


def _state(reading: Reading) -> tuple:
    reading.refresh_from_db()
    return (reading.rois, reading.roi_version, reading.status)


def _post(client, name: str, reading: Reading, body: str | bytes):
    url = reverse(f"readers:{name}", kwargs={"public_id": reading.public_id})
    return client.post(url, body, content_type="application/json")


def _circle(center: list[float], radius: float, n: int) -> list[list[float]]:
    return [
        [
            round(center[0] + radius * math.cos(2 * math.pi * i / n), 4),
            round(center[1] + radius * math.sin(2 * math.pi * i / n), 4),
        ]
        for i in range(n)
    ]


def _polygon_l1(data: dict, n: int) -> None:
    l1 = data["rois"][0]
    points = _circle(l1["center"], 8.0, n)
    data["rois"][0] = {
        "label": "L1",
        "sop_instance_uid": l1["sop_instance_uid"],
        "shape": "polygon",
        "points": points,
    }


def _exclude_l4(note: str):
    def mutate(data: dict) -> None:
        data["rois"] = [r for r in data["rois"] if r["label"] != "L4"]
        data["rois"].append({"label": "L4", "excluded": True, "reason": "other", "note": note})

    return mutate


def _many_rois(n: int):
    def mutate(data: dict) -> None:
        l1 = data["rois"][0]
        data["rois"] += [copy.deepcopy(l1) for _ in range(n - len(data["rois"]))]

    return mutate


REFUSED = [
    (lambda d: _polygon_l1(d, 2001), "2001 polygon points; at most 2000"),
    (_many_rois(51), "51 ROIs and exclusions; at most 50"),
    (_exclude_l4("x" * 501), "the note has 501 characters; at most 500"),
    (lambda d: d["rois"][0].update(center=[1e300, 80.0]), "far outside the image"),
    (lambda d: d["rois"][0].update(center=[100.0, -321.0]), "far outside the image"),
    (lambda d: d["rois"][0].update(radii=[321.0, 5.0]), "exceed the image's size"),
    (lambda d: d["rois"][0].update(radii=[1e300, 5.0]), "exceed the image's size"),
]
REFUSED_IDS = ["points", "items", "note", "huge centre", "centre off the image", "radius", "1e300"]


@pytest.mark.parametrize(("mutate", "message"), REFUSED, ids=REFUSED_IDS)
def test_sets_beyond_the_limits_are_400_with_the_reason(
    client, world, reading_and_truth, mutate, message
) -> None:
    reading, truth = reading_and_truth
    data = copy.deepcopy(truth)
    mutate(data)
    client.force_login(world.reader)
    response = _post(client, "rois", reading, json.dumps(data))
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert _state(reading) == (None, 0, "draft")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: _polygon_l1(d, 2000),
        _many_rois(50),
        _exclude_l4("x" * 500),
        # Leaving the image a little is a draft being dragged: saved, and the measurement
        # refuses it with its own message.
        lambda d: d["rois"][0].update(center=[-320.0, 640.0]),
        lambda d: d["rois"][0].update(radii=[320.0, 5.0]),
    ],
    ids=["2000 points", "50 items", "500 characters", "one image size off", "radius = size"],
)
def test_sets_at_the_limits_are_saved(client, world, reading_and_truth, mutate) -> None:
    reading, truth = reading_and_truth
    data = copy.deepcopy(truth)
    mutate(data)
    client.force_login(world.reader)
    response = _post(client, "rois", reading, json.dumps(data))
    assert response.status_code == 200, response.json()
    assert _state(reading)[1] == 1


def test_a_body_over_64_kb_is_400_even_when_it_is_a_valid_set(
    client, world, reading_and_truth
) -> None:
    reading, truth = reading_and_truth
    body = json.dumps(truth) + " " * WEB_ROI_LIMITS.max_bytes
    client.force_login(world.reader)
    response = _post(client, "rois", reading, body)
    assert response.status_code == 400
    assert f"at most {64 * 1024} are accepted" in response.json()["error"]
    assert _state(reading) == (None, 0, "draft")


def test_a_duplicate_key_is_400(client, world, reading_and_truth) -> None:
    """Decoders disagree on which of two equal keys wins: the site refuses to guess."""
    reading, truth = reading_and_truth
    body = json.dumps(truth)[:-1] + ', "series_instance_uid": "2.25.1"}'
    client.force_login(world.reader)
    response = _post(client, "rois", reading, body)
    assert response.status_code == 400
    assert "duplicate key 'series_instance_uid'" in response.json()["error"]
    assert _state(reading) == (None, 0, "draft")


@pytest.mark.parametrize("name", ["rois", "submit_json"])
def test_deeply_nested_json_is_400_not_500(client, world, reading_and_truth, name) -> None:
    reading, truth = reading_and_truth
    services.reading_save_rois(reading=reading, data=truth)  # complete: a submit would pass
    before = _state(reading)
    client.force_login(world.reader)
    response = _post(client, name, reading, DEEP)
    assert response.status_code == 400
    assert "nested 4096 levels deep" in response.json()["error"]
    assert _state(reading) == before


@pytest.mark.parametrize("body", [b"[]", b"{", b'{"force": true}'])
def test_the_submit_takes_an_empty_object_or_nothing(
    client, world, reading_and_truth, body
) -> None:
    reading, truth = reading_and_truth
    services.reading_save_rois(reading=reading, data=truth)
    client.force_login(world.reader)
    response = _post(client, "submit_json", reading, body)
    assert response.status_code == 400
    url = reverse("readers:submit_json", kwargs={"public_id": reading.public_id})
    assert client.post(url, {"force": "yes"}).status_code == 400  # a form post with a field
    assert _state(reading)[2] == "draft"
    assert _post(client, "submit_json", reading, b"{}").status_code == 200
    assert _state(reading)[2] == "submitted"


def test_the_form_post_of_the_page_has_the_same_limits(client, world, reading_and_truth) -> None:
    reading, truth = reading_and_truth
    url = reverse("readers:detail", kwargs={"public_id": reading.public_id})
    client.force_login(world.reader)
    for text, message in [
        (DEEP.decode(), "nested 4096 levels deep"),
        (json.dumps(truth)[:-1] + ', "rois": []}', "duplicate key 'rois'"),
    ]:
        response = client.post(url, {"rois": text})
        assert response.status_code == 400
        assert message in html.unescape(response.content.decode())
    data = copy.deepcopy(truth)
    data["rois"][0]["radii"] = [1e300, 5.0]
    response = client.post(url, {"rois": json.dumps(data)})
    assert response.status_code == 400
    assert "exceed the image" in html.unescape(response.content.decode())
    assert _state(reading) == (None, 0, "draft")
