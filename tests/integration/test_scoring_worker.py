"""A real Celery worker scores readings from stored pixels, through a real Redis broker."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from django.urls import reverse

from readers import services
from readers.measurement.dicomio import load_images
from readers.measurement.measure import measure_vbq
from readers.measurement.rois import parse_roi_set
from readers.models import VbqResult
from readers.tasks import compute_reading_vbq
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the worker")


@pytest.fixture
def phantom_case(world, tmp_path: Path):
    case_dir = write_phantom(tmp_path / "phantom", cases=1, seed=11)[0]
    truth = json.loads((case_dir / "truth.json").read_text())
    case_set_import_trusted_files(
        study=world.study_a, name="phantom", cases=[("Case 001", list(case_dir.glob("*.dcm")))]
    )
    return Case.objects.get(study=world.study_a), case_dir, truth


def test_worker_scores_a_reading_saved_through_the_page(celery_worker, client, world, phantom_case):
    case, case_dir, truth = phantom_case
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    client.force_login(world.reader)
    response = client.post(
        reverse("readers:detail", kwargs={"public_id": reading.public_id}),
        {"rois": json.dumps(truth["rois"])},
    )
    assert response.status_code == 302
    score_url = reverse("readers:score", kwargs={"public_id": reading.public_id})
    payload = _wait_for(lambda: (p := client.get(score_url).json())["status"] != "pending" and p)

    # The same ROIs measured directly on the phantom's files, outside the site.
    roi_set = parse_roi_set(truth["rois"])
    expected = measure_vbq(roi_set, load_images([case_dir]), **case.study.measurement_settings())
    assert payload["status"] == "ok"
    assert payload["vbq"] == expected["vbq"]
    assert payload["detail"] == expected
    assert payload["vbq"] == pytest.approx(truth["truth"]["vbq"], rel=0.05)  # the phantom's bound


def test_second_delivery_of_the_same_task_leaves_one_result(celery_worker, world, phantom_case):
    case, _, truth = phantom_case
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    sent = [
        compute_reading_vbq.apply_async(
            kwargs={"reading_pk": reading.pk, "roi_version": reading.roi_version}
        ).id
        for _ in range(2)
    ]
    log = Path(celery_worker.log_path)
    for task_id in sent:
        pattern = re.compile(rf"\[{task_id}\] succeeded")
        _wait_for(lambda p=pattern: p.search(log.read_text()))
    results = VbqResult.objects.filter(reading=reading)
    assert results.count() == 1
    assert results.get().status == VbqResult.Status.OK


def test_a_stale_task_never_overwrites_a_newer_edit(celery_worker, world, phantom_case):
    case, _, truth = phantom_case
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    first_version = reading.roi_version
    _wait_for(lambda: reading.results.filter(roi_version=first_version).exists())
    # Exclude L4 in a second version; then deliver the first version's task again, late.
    rois = dict(truth["rois"])
    rois["rois"] = [r for r in rois["rois"] if r["label"] != "L4"] + [
        {"label": "L4", "excluded": True, "reason": "fracture"}
    ]
    reading = services.reading_save_rois(reading=reading, data=rois)
    _wait_for(lambda: reading.results.filter(roi_version=reading.roi_version).exists())
    late = compute_reading_vbq.apply_async(
        kwargs={"reading_pk": reading.pk, "roi_version": first_version}
    ).id
    log = Path(celery_worker.log_path)
    _wait_for(lambda: re.search(rf"\[{late}\] succeeded", log.read_text()))
    current = reading.current_result()
    assert current.roi_version == reading.roi_version
    assert current.detail["levels"]["L4"] == {"excluded": True, "reason": "fracture"}
    assert reading.results.count() == 2
