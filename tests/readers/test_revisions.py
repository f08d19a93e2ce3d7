"""Autosaves are coalesced, submitted sets are kept (issue 12, "every autosave stores a full
revision with no limit"): a save within ``VBQ_REVISION_COALESCE_SECONDS`` of the reading's
latest revision, in the same phase (before or after submission), replaces it; a pause starts a
new one; nothing saved after submission replaces the set as submitted."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.utils import timezone

from readers import services
from readers.measurement.rois import parse_roi_set
from readers.models import Reading, ReadingRevision
from tests.helpers.readings import phantom_case


@pytest.fixture
def reading(world, tmp_path) -> tuple[Reading, dict]:
    case, _, truth = phantom_case(world.study_a, tmp_path, seed=4)
    return services.reading_open(reader=world.reader, case=case, session=1), truth


def _variant(truth: dict, scale: float) -> dict:
    rois = copy.deepcopy(truth["rois"])
    rois["rois"][0]["radii"] = [r * scale for r in rois["rois"][0]["radii"]]
    return rois


def _pause(reading: Reading, seconds: float) -> None:
    """As if the latest revision had been saved ``seconds`` ago."""
    latest = reading.revisions.order_by("-roi_version").first()
    earlier = timezone.now() - timedelta(seconds=seconds)
    ReadingRevision.objects.filter(pk=latest.pk).update(saved_at=earlier)


def _history(reading: Reading) -> list[tuple[int, bool]]:
    return list(
        reading.revisions.order_by("roi_version").values_list("roi_version", "after_submit")
    )


def test_a_burst_of_autosaves_is_one_revision_holding_the_last_set(reading, settings) -> None:
    settings.VBQ_REVISION_COALESCE_SECONDS = 600
    reading, truth = reading
    for scale in (0.9, 0.8, 0.7, 0.6, 0.5):
        reading = services.reading_save_rois(reading=reading, data=_variant(truth, scale))
    assert reading.roi_version == 5
    assert _history(reading) == [(5, False)]
    assert reading.revisions.get().rois == parse_roi_set(_variant(truth, 0.5)).to_json()


def test_a_pause_starts_a_new_revision(reading, settings) -> None:
    settings.VBQ_REVISION_COALESCE_SECONDS = 600
    reading, truth = reading
    reading = services.reading_save_rois(reading=reading, data=_variant(truth, 0.9))
    reading = services.reading_save_rois(reading=reading, data=_variant(truth, 0.8))
    _pause(reading, 601)
    reading = services.reading_save_rois(reading=reading, data=_variant(truth, 0.7))
    reading = services.reading_save_rois(reading=reading, data=_variant(truth, 0.6))
    assert _history(reading) == [(2, False), (4, False)]


def test_the_submitted_set_is_never_replaced(reading, settings) -> None:
    """Edits after submission (the study allows them) coalesce among themselves only."""
    settings.VBQ_REVISION_COALESCE_SECONDS = 600
    reading, truth = reading
    reading.case.study.allow_edit_after_submit = True
    reading.case.study.save()
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    reading = services.reading_submit(reading=reading)
    for scale in (0.9, 0.8):
        reading = services.reading_save_rois(reading=reading, data=_variant(truth, scale))
    assert _history(reading) == [(1, False), (3, True)]
    submitted = reading.revisions.get(after_submit=False)
    assert submitted.rois == parse_roi_set(truth["rois"]).to_json()


def test_without_a_window_every_save_is_kept(reading, settings) -> None:
    settings.VBQ_REVISION_COALESCE_SECONDS = 0
    reading, truth = reading
    for scale in (0.9, 0.8, 0.7):
        reading = services.reading_save_rois(reading=reading, data=_variant(truth, scale))
    assert _history(reading) == [(1, False), (2, False), (3, False)]
