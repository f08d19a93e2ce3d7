"""One examination in two studies (issue 13): an upload never tells a manager that its files are
in a study they cannot see, and the second copy gets UIDs of its own study."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from studies.models import Case, Instance, ItemStatus, Series, UploadStatus
from studies.uploads.config import deid_uid
from studies.uploads.ingest import case_set_ingest_paths
from studies.uploads.store import study_uid
from tests.helpers.ingestdata import phantom_case_bytes, write_files

pytestmark = pytest.mark.django_db


def _folder(root: Path, seed: int, index: int) -> Path:
    folder = root / f"case-{index:03d}"
    files = {f"IM{k:04d}.dcm": data for k, data in enumerate(phantom_case_bytes(seed, index))}
    write_files(folder, files)
    return folder


def test_files_already_in_another_study_are_new_cases_and_the_report_does_not_say_so(
    world, tmp_path
):
    folder = _folder(tmp_path, 31, 1)
    first = case_set_ingest_paths(study=world.study_a, paths=[folder], name="A")
    assert first.status == UploadStatus.DONE
    n = first.instances_stored
    second = case_set_ingest_paths(study=world.study_b, paths=[folder], name="B")
    assert second.status == UploadStatus.DONE, second.message
    # Today's behaviour was "duplicate ... another study": the oracle this test closes.
    assert "another study" not in second.message
    assert not second.items.exclude(status=ItemStatus.ACCEPTED).exists()
    assert not any("another" in (r or "") for r in second.items.values_list("reason", flat=True))
    assert second.instances_stored == n
    assert second.message.startswith(first.message.split(" in ")[0])  # the same words as A's
    [case_b] = Case.objects.filter(study=world.study_b)
    [case_a] = Case.objects.filter(study=world.study_a)
    assert case_b.label == "Case 001"
    assert case_b.study_instance_uid == study_uid(case_a.study_instance_uid, world.study_b)
    assert case_b.patient_pseudonym == case_a.patient_pseudonym
    # B's UIDs are its own, in the database and in the stored file's header.
    source = pydicom.dcmread(folder / "IM0000.dcm", stop_before_pixels=True)
    site = deid_uid(str(source.SOPInstanceUID))
    mine = Instance.objects.get(sop_instance_uid=study_uid(site, world.study_b))
    assert mine.series.case == case_b
    with mine.file.open("rb") as handle:
        stored = pydicom.dcmread(handle)
    assert stored.SOPInstanceUID == mine.sop_instance_uid
    assert stored.file_meta.MediaStorageSOPInstanceUID == mine.sop_instance_uid
    assert stored.StudyInstanceUID == case_b.study_instance_uid
    assert stored.SeriesInstanceUID == mine.series.series_instance_uid
    assert stored.FrameOfReferenceUID != source.FrameOfReferenceUID
    assert mine.series.selected
    assert mine.series.eligible
    # A's copy is untouched, and no UID is shared between the two studies.
    assert Instance.objects.filter(sop_instance_uid=site, series__case=case_a).exists()
    a_series = set(Series.objects.filter(case=case_a).values_list("series_instance_uid", flat=True))
    b_series = set(Series.objects.filter(case=case_b).values_list("series_instance_uid", flat=True))
    assert a_series
    assert b_series
    assert not a_series & b_series


def test_the_same_files_again_in_the_second_study_are_duplicates_of_its_own_copy(world, tmp_path):
    folder = _folder(tmp_path, 32, 1)
    case_set_ingest_paths(study=world.study_a, paths=[folder], name="A")
    case_set_ingest_paths(study=world.study_b, paths=[folder], name="B")
    counts = Instance.objects.count(), Case.objects.count()
    again = case_set_ingest_paths(study=world.study_b, paths=[folder], name="B again")
    assert (Instance.objects.count(), Case.objects.count()) == counts
    assert again.message.startswith("Nothing new")
    reasons = set(again.items.values_list("reason", flat=True))
    assert reasons == {"already stored (the same de-identified SOP Instance UID)"}
    assert set(again.items.values_list("case__study", flat=True)) == {world.study_b.pk}
