"""Reading services: what is accepted, what is refused, and that refusals change nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from readers import services
from readers.measurement.rois import parse_roi_set
from readers.models import Reading, ReadingRevision, VbqResult
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files


@pytest.fixture
def phantom(world, tmp_path: Path):
    dirs = write_phantom(tmp_path / "p", cases=2, seed=5)
    case_set_import_trusted_files(
        study=world.study_a,
        name="phantom",
        cases=[(f"Case {i}", list(d.glob("*.dcm"))) for i, d in enumerate(dirs, 1)],
    )
    truths = [json.loads((d / "truth.json").read_text()) for d in dirs]
    cases = list(Case.objects.filter(study=world.study_a).order_by("label"))
    return cases, truths


def _unchanged(reading: Reading) -> None:
    before = (reading.rois, reading.roi_version, reading.status)
    reading.refresh_from_db()
    assert (reading.rois, reading.roi_version, reading.status) == before


def test_saving_rois_bumps_the_version(world, phantom) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    assert reading.roi_version == 1
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    assert reading.roi_version == 2
    assert reading.rois["schema"] == "vbq.rois/1"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["rois"][0].update(center=[float("nan"), 3.0]), "finite"),
        (lambda d: d["rois"][0].update(sop_instance_uid="2.25.999"), "2.25.999"),
        (lambda d: d.update(series_instance_uid="2.25.1"), "series"),
    ],
    ids=["unknown key", "NaN", "unknown instance", "wrong series"],
)
def test_bad_roi_sets_are_refused_and_change_nothing(world, phantom, mutate, message) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    data = copy.deepcopy(truth["rois"])
    mutate(data)
    with pytest.raises(ValidationError) as excinfo:
        services.reading_save_rois(reading=reading, data=data)
    assert message in " ".join(excinfo.value.messages).lower() or message in str(excinfo.value)
    _unchanged(reading)
    assert not ReadingRevision.objects.exists()


def test_rois_of_another_case_are_refused(world, phantom) -> None:
    (case, _), (_, other_truth) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    with pytest.raises(ValidationError):
        services.reading_save_rois(reading=reading, data=other_truth["rois"])
    _unchanged(reading)


def test_submit_requires_every_level_and_csf(world, phantom) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    partial = copy.deepcopy(truth["rois"])
    partial["rois"] = [r for r in partial["rois"] if r["label"] not in ("L2", "CSF")]
    reading = services.reading_save_rois(reading=reading, data=partial)
    with pytest.raises(ValidationError, match="L2, CSF"):
        services.reading_submit(reading=reading)
    _unchanged(reading)


def test_a_submitted_reading_is_locked(world, phantom, client) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    reading = services.reading_submit(reading=reading)
    assert reading.is_locked
    with pytest.raises(PermissionDenied):
        services.reading_save_rois(reading=reading, data=truth["rois"])
    _unchanged(reading)
    client.force_login(world.reader)
    url = reverse("readers:detail", kwargs={"public_id": reading.public_id})
    assert client.post(url, {"rois": json.dumps(truth["rois"])}).status_code == 403
    _unchanged(reading)


def test_the_submitted_set_and_later_edits_are_kept_and_marked(world, phantom, client) -> None:
    """A study that allows edits after submission: the submitted set and the later edit stay
    in the history, with the score of each version; the manager sees it, nobody else does.
    (The two saves before submission are one burst of autosaves: one revision, the last set;
    ``tests/readers/test_revisions.py``.)"""
    (case, _), (truth, _) = phantom
    case.study.allow_edit_after_submit = True
    case.study.save()
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    first = copy.deepcopy(truth["rois"])
    first["rois"] = [r for r in first["rois"] if r["label"] != "L4"]
    reading = services.reading_save_rois(reading=reading, data=first)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    reading = services.reading_submit(reading=reading)
    services.reading_compute_vbq(reading_pk=reading.pk, roi_version=2)  # as the worker would
    edited = copy.deepcopy(truth["rois"])
    edited["rois"][0]["radii"] = [r * 0.8 for r in edited["rois"][0]["radii"]]
    reading = services.reading_save_rois(reading=reading, data=edited)
    assert reading.is_locked  # still submitted, now at version 3
    revisions = list(reading.revisions.order_by("roi_version"))
    assert [r.roi_version for r in revisions] == [2, 3]
    assert [r.after_submit for r in revisions] == [False, True]
    assert revisions[0].rois == parse_roi_set(truth["rois"]).to_json()  # as submitted
    assert revisions[1].rois == reading.rois
    services.reading_compute_vbq(reading_pk=reading.pk, roi_version=3)

    url = reverse("readers:detail", kwargs={"public_id": reading.public_id})
    client.force_login(world.manager)
    page = client.get(url).content.decode()
    history = page[page.index('id="history"') :]
    assert history.count("<tr>") == 1 + 2
    assert "edited after submission" in history
    scores = {r.roi_version: r.vbq for r in reading.results.all()}
    assert f"{scores[3]:.3f}" in history
    assert f"{scores[2]:.3f}" in history
    for outsider in (world.other_reader, world.reader_b, world.manager_b):
        client.force_login(outsider)
        assert client.get(url).status_code == 404


def test_session_outside_the_study_is_refused(world, phantom) -> None:
    (case, _), _ = phantom
    with pytest.raises(ValidationError):
        services.reading_open(reader=world.reader, case=case, session=case.study.sessions + 1)
    assert not Reading.objects.exists()


def test_compute_twice_leaves_one_result(world, phantom) -> None:
    """The service behind the task, called twice in-process: one row (the worker test repeats
    this through Redis)."""
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    first = services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    second = services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    assert first.pk == second.pk
    assert VbqResult.objects.filter(reading=reading).count() == 1
    assert second.status == VbqResult.Status.OK
    assert second.vbq == pytest.approx(truth["truth"]["vbq"], rel=0.05)  # the phantom's bound


def test_a_measurement_error_is_stored_as_a_clear_error(world, phantom) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    data = copy.deepcopy(truth["rois"])
    for roi in data["rois"]:
        if roi.get("shape") == "ellipse":
            roi["center"] = [5000.0, 5000.0]  # far outside the image
    reading = services.reading_save_rois(reading=reading, data=data)
    result = services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    assert result.status == VbqResult.Status.ERROR
    assert result.vbq is None
    assert "image" in result.message


def test_reading_page_shows_the_score_and_the_page_polls(world, phantom, client) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    client.force_login(world.reader)
    score_url = reverse("readers:score", kwargs={"public_id": reading.public_id})
    assert client.get(score_url).json()["status"] == "pending"
    services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    payload = client.get(score_url).json()
    assert payload["status"] == "ok"
    page = client.get(
        reverse("readers:detail", kwargs={"public_id": reading.public_id})
    ).content.decode()
    assert f"{payload['vbq']:.3f}" in page


def test_the_current_result_is_the_same_with_and_without_prefetching(
    world, phantom, django_assert_num_queries
) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    services.reading_compute_vbq(reading_pk=reading.pk, roi_version=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])  # v2: pending

    def both() -> tuple:
        plain = Reading.objects.get(pk=reading.pk).current_result()
        [listed] = Reading.objects.filter(pk=reading.pk).prefetch_related("results")
        with django_assert_num_queries(0):
            cached = listed.current_result()
        return plain, cached

    assert both() == (None, None)  # v1's result is not current
    services.reading_compute_vbq(reading_pk=reading.pk, roi_version=2)
    plain, cached = both()
    assert plain is not None
    assert plain.roi_version == 2
    assert cached == plain
