"""Quality checks at submit through the site (issue 13 item 3): an unconfirmed warning is a 409
that stores nothing, a confirmed submit keeps the codes in the reading and the audit; and the
reading time (item 6): stored monotonic and bounded from the autosave, the submit and
``timing.json``."""

from __future__ import annotations

import copy
import csv
import io
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from readers import services
from readers.models import Reading
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files
from vbqweb.audit.models import AuditEvent


@pytest.fixture
def case_and_truth(world, tmp_path: Path):
    folder = write_phantom(tmp_path / "p", cases=1, seed=8)[0]
    case_set_import_trusted_files(
        study=world.study_a, name="phantom", cases=[("Case 1", list(folder.glob("*.dcm")))]
    )
    truth = json.loads((folder / "truth.json").read_text())
    return Case.objects.get(case_set__study=world.study_a), truth["rois"]


def _stacked(rois: dict) -> dict:
    """Issue 13's reading: L1-L4 one ROI on L2, the CSF on the same vertebra."""
    stacked = copy.deepcopy(rois)
    l2 = next(r for r in stacked["rois"] if r["label"] == "L2")
    for roi in stacked["rois"]:
        if roi["label"] in ("L1", "L3", "L4"):
            roi.update(center=list(l2["center"]), radii=list(l2["radii"]), angle_deg=0)
        if roi["label"] == "CSF":
            roi.update(center=list(l2["center"]), radii=[2, 2], angle_deg=0)
    return stacked


def _submit(client, reading: Reading, body: object):
    url = reverse("readers:submit_json", kwargs={"public_id": reading.public_id})
    return client.post(url, json.dumps(body), content_type="application/json")


def test_a_careful_reading_submits_at_once(client, world, case_and_truth) -> None:
    case, rois = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=rois)
    client.force_login(world.reader)
    assert _submit(client, reading, {}).status_code == 200
    reading.refresh_from_db()
    assert reading.status == "submitted"
    assert reading.quality_confirmed == []


def test_warnings_answer_409_store_nothing_and_a_confirmed_submit_records_them(
    client, world, case_and_truth
) -> None:
    case, rois = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=_stacked(rois))
    client.force_login(world.reader)
    timing = {"active_seconds": 1.5, "level_seconds": {"L1": 1.5}}

    refused = _submit(client, reading, {"timing": timing})
    assert refused.status_code == 409
    warnings = refused.json()["warnings"]
    codes = [w["code"] for w in warnings]
    assert codes == ["overlapping_rois", "csf_not_dark", "levels_out_of_order"]
    assert all(w["message"] for w in warnings)
    reading.refresh_from_db()
    assert (reading.status, reading.quality_confirmed, reading.active_seconds) == ("draft", [], 0)
    assert not AuditEvent.objects.filter(action="reading.submitted").exists()

    # Confirming only some of them is not enough.
    assert _submit(client, reading, {"confirm": codes[:2]}).status_code == 409
    done = _submit(client, reading, {"confirm": codes, "timing": timing})
    assert done.status_code == 200
    reading.refresh_from_db()
    assert reading.status == "submitted"
    assert reading.quality_confirmed == codes
    assert reading.active_seconds == 1.5
    event = AuditEvent.objects.get(action="reading.submitted")
    assert event.detail["quality_confirmed"] == codes


def test_the_form_submit_runs_the_same_checks(client, world, case_and_truth) -> None:
    case, rois = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=_stacked(rois))
    client.force_login(world.reader)
    url = reverse("readers:submit", kwargs={"public_id": reading.public_id})
    page = client.post(url, follow=True).content.decode()
    assert "confirm=overlapping_rois" in page
    reading.refresh_from_db()
    assert reading.status == "draft"
    client.post(url, {"confirm": ["overlapping_rois", "csf_not_dark", "levels_out_of_order"]})
    reading.refresh_from_db()
    assert reading.status == "submitted"


@pytest.mark.parametrize(
    "body",
    [{"confirm": "overlapping_rois"}, {"confirm": [1]}, {"force": True}, {"timing": {"x": 1}}],
)
def test_a_malformed_submit_is_400(client, world, case_and_truth, body) -> None:
    case, rois = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=rois)
    client.force_login(world.reader)
    assert _submit(client, reading, body).status_code == 400
    reading.refresh_from_db()
    assert reading.status == "draft"


def test_the_study_limits_decide(client, world, case_and_truth) -> None:
    case, rois = case_and_truth
    study = world.study_a
    study.min_bone_roi_area_mm2 = 1000.0
    study.plausible_vbq_max = 2.0
    study.save()
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=rois)
    codes = services.reading_quality(reading=reading).codes
    assert codes == ("small_bone_roi", "vbq_out_of_range")


def test_the_synchronous_measurement_is_fast(world, case_and_truth) -> None:
    """The checks measure at submit (the worker's score may be pending): a few ms."""
    case, rois = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=rois)
    services.reading_quality(reading=reading)  # warm
    started = time.perf_counter()
    for _ in range(10):
        report = services.reading_quality(reading=reading)
    elapsed_ms = (time.perf_counter() - started) * 100
    assert report.measurement["vbq"] is not None
    assert elapsed_ms < 100, f"{elapsed_ms:.1f} ms per check"


# --- reading time -----------------------------------------------------------------------------


def _timing(client, reading: Reading, body: object):
    url = reverse("readers:timing", kwargs={"public_id": reading.public_id})
    return client.post(url, json.dumps(body), content_type="application/json")


def _age(reading: Reading, seconds: float) -> None:
    Reading.objects.filter(pk=reading.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_reading_time_never_goes_down(client, world, case_and_truth) -> None:
    case, _ = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    _age(reading, 600)
    client.force_login(world.reader)
    answer = _timing(client, reading, {"active_seconds": 42.0, "level_seconds": {"L1": 30.0}})
    assert answer.json() == {"active_seconds": 42.0, "level_seconds": {"L1": 30.0}}
    # A stale report (an older tab, a replay) lowers nothing; a new label is added.
    stale = {"active_seconds": 10.0, "level_seconds": {"L1": 5.0, "L2": 3.0}}
    assert _timing(client, reading, stale).json() == {
        "active_seconds": 42.0,
        "level_seconds": {"L1": 30.0, "L2": 3.0},
    }


def test_reading_time_is_bounded_by_the_readings_age(client, world, case_and_truth) -> None:
    case, _ = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    _age(reading, 60)
    client.force_login(world.reader)
    answer = _timing(client, reading, {"active_seconds": 86400, "level_seconds": {"CSF": 1e9}})
    assert 60 <= answer.json()["active_seconds"] <= 66
    assert 60 <= answer.json()["level_seconds"]["CSF"] <= 66


@pytest.mark.parametrize(
    "body",
    [
        {"active_seconds": -1},
        {"active_seconds": "5"},
        {"active_seconds": True},
        {"level_seconds": {"L5": 1}},
        {"level_seconds": []},
        {"active_seconds": 1, "extra": 1},
        [],
    ],
)
def test_malformed_reading_time_is_400(client, world, case_and_truth, body) -> None:
    case, _ = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    client.force_login(world.reader)
    assert _timing(client, reading, body).status_code == 400
    reading.refresh_from_db()
    assert reading.active_seconds == 0


def test_the_autosave_carries_the_reading_time(client, world, case_and_truth) -> None:
    case, rois = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    _age(reading, 120)
    client.force_login(world.reader)
    response = client.post(
        reverse("readers:rois", kwargs={"public_id": reading.public_id}),
        json.dumps(rois),
        content_type="application/json",
        headers={"X-VBQ-Timing": json.dumps({"active_seconds": 12.5, "level_seconds": {}})},
    )
    assert response.status_code == 200
    reading.refresh_from_db()
    assert reading.active_seconds == 12.5
    # The payload gives the viewer the time so far, to count on from.
    page = client.get(reverse("readers:detail", kwargs={"public_id": reading.public_id}))
    assert '"active_seconds": 12.5' in page.content.decode()


def test_a_submitted_reading_takes_no_more_time(client, world, case_and_truth) -> None:
    case, rois = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=rois)
    services.reading_submit(reading=reading)
    client.force_login(world.reader)
    assert _timing(client, reading, {"active_seconds": 5}).status_code == 403


# --- reported to managers and in the downloads --------------------------------------------------


def test_managers_see_reading_time_and_download_it_with_the_confirmed_warnings(
    client, world, case_and_truth
) -> None:
    case, rois = case_and_truth
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    _age(reading, 600)
    services.reading_save_rois(reading=reading, data=_stacked(rois))
    timing = {"active_seconds": 95.0, "level_seconds": {"L1": 60.0, "CSF": 35.0}}
    codes = list(services.reading_quality(reading=reading).codes)
    services.reading_submit(reading=reading, confirmed=codes, timing=timing)

    client.force_login(world.manager)
    page = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    assert 'data-reading-time="reader:1"' in page
    assert "⏱ 1 min 35 s · 1 min 35 s per case" in page

    url = reverse("analytics:measurements_csv", kwargs={"pk": world.study_a.pk})
    rows = list(csv.DictReader(io.StringIO(client.get(url).content.decode())))
    by_level = {row["level"]: row for row in rows}
    assert {row["active_seconds"] for row in rows} == {"95.0"}
    assert (by_level["L1"]["level_seconds"], by_level["CSF"]["level_seconds"]) == ("60.0", "35.0")
    assert by_level["L2"]["level_seconds"] == "0.0"
    assert by_level["L1"]["quality_confirmed"] == " ".join(codes)
