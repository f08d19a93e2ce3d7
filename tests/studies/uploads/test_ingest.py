"""The ingest service, synchronously (the task's code path without the broker).

Phantom case sets with wrong-series variants, grouping into cases, eligibility and the
reading series, duplicates, the PHI corpus, every bad input of the issue, the real files of
``../shared/data``, and the "nothing partial" clean-up after a refused or cancelled upload.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pydicom
import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from studies.ingest.sources import IngestError
from studies.models import Case, CaseSet, Instance, ItemStatus, Series, Upload, UploadStatus
from studies.uploads import series as series_service
from studies.uploads import store as store_service
from studies.uploads.config import deid_uid
from studies.uploads.ingest import case_set_ingest_paths
from studies.uploads.series import case_choose_series
from tests.helpers.brokers import broker_down
from tests.helpers.ingestdata import (
    bomb_zip_bytes,
    no_pixel_data_bytes,
    phantom_case_bytes,
    shared_data,
    write_files,
    wrong_series,
    zip_bytes,
)
from tests.helpers.phi import NEEDLES, assert_clean, phi_dataset
from vbqweb.models import Job
from vbqweb.tasks import REJUDGE_SERIES

pytestmark = pytest.mark.django_db


def _case_folder(root: Path, seed: int, index: int, extra: list[bytes] = ()) -> Path:
    folder = root / f"case-{index:03d}"
    files = {f"IM{k:04d}.dcm": data for k, data in enumerate(phantom_case_bytes(seed, index))}
    files |= {f"X{k:04d}.dcm": data for k, data in enumerate(extra)}
    write_files(folder, files)
    return folder


def _stored_names() -> list[str]:
    return sorted(Instance.objects.values_list("file", flat=True))


def test_phantom_cases_become_labelled_cases_with_eligible_reading_series(world, tmp_path):
    folders = [_case_folder(tmp_path, 21, i) for i in (1, 2)]
    upload = case_set_ingest_paths(study=world.study_a, paths=folders, name="Batch 1")
    assert upload.status == UploadStatus.DONE, upload.message
    cases = list(Case.objects.filter(study=world.study_a).order_by("label"))
    assert [c.label for c in cases] == ["Case 001", "Case 002"]
    assert all(c.patient_pseudonym.startswith("VBQ-") for c in cases)
    assert upload.case_set.name == "Batch 1"
    for case, folder in zip(cases, folders, strict=True):
        [series] = case.series.all()
        assert series.selected
        assert series.eligible
        assert series.orientation == "sagittal"
        assert series.field_strength_t in (1.5, 3.0)
        assert series.manufacturer == "VBQ Phantom"
        assert 300 <= series.repetition_time_ms <= 1000
        assert series.n_instances == len(list(folder.glob("*.dcm")))
        assert series.eligibility["passed"]
        assert not series.eligibility["reasons"]
    n_files = sum(len(list(f.glob("*.dcm"))) for f in folders)
    assert upload.instances_stored == n_files == Instance.objects.count()
    assert upload.items.filter(status=ItemStatus.ACCEPTED).count() == n_files
    assert set(upload.items.values_list("file_index", flat=True)) == {0, 1}
    size = sum(p.stat().st_size for f in folders for p in f.iterdir())
    assert upload.bytes_received == upload.bytes_total_expected == size
    # Stored under new UIDs only; the phantom's own UIDs are not in any name.
    for name in _stored_names():
        assert "case-00" not in name
        assert "IM0" not in name
    first = pydicom.dcmread(folders[0] / "IM0000.dcm", stop_before_pixels=True)
    assert Instance.objects.filter(sop_instance_uid=deid_uid(first.SOPInstanceUID)).exists()
    assert upload.message.startswith(
        f"{n_files} files read (zip members counted): {n_files} instances stored in 2 cases"
    )


def test_ingesting_the_same_files_twice_creates_no_duplicates(world, tmp_path):
    folder = _case_folder(tmp_path, 22, 1)
    case_set_ingest_paths(study=world.study_a, paths=[folder], name="once")
    counts = (Case.objects.count(), Series.objects.count(), Instance.objects.count())
    again = case_set_ingest_paths(study=world.study_a, paths=[folder], name="twice")
    assert (Case.objects.count(), Series.objects.count(), Instance.objects.count()) == counts
    assert again.status == UploadStatus.DONE
    assert again.message.startswith("Nothing new")
    assert again.items.exclude(status=ItemStatus.DUPLICATE).count() == 0
    assert "already stored" in again.items.first().reason
    assert not CaseSet.objects.filter(name="twice").exists()  # no empty case set left behind


def test_wrong_series_are_judged_ineligible_and_the_right_one_selected(world, tmp_path):
    extra = wrong_series(23, 1, "axial-t2") + wrong_series(23, 1, "post-contrast")
    folder = _case_folder(tmp_path, 23, 1, extra)
    upload = case_set_ingest_paths(study=world.study_a, paths=[folder], name="mixed")
    [case] = Case.objects.filter(study=world.study_a)
    series = {s.description: s for s in case.series.all() if not s.eligibility["contrast"]}
    contrast = case.series.get(eligibility__contrast=True)
    assert case.series.count() == 3
    axial = series["AX T2"]
    assert axial.eligible is False
    assert not axial.selected
    assert "axial slices: VBQ needs a sagittal series" in axial.eligibility["reasons"]
    assert any("TR 3000 ms is far above" in r for r in axial.eligibility["reasons"])
    assert any("TE 90 ms is far above" in r for r in axial.eligibility["reasons"])
    assert contrast.eligible is False
    assert not contrast.selected
    assert any("contrast agent recorded" in r for r in contrast.eligibility["reasons"])
    assert case.reading_series == series["SAG T1"]
    assert upload.status == UploadStatus.DONE


def test_only_ineligible_series_leave_the_case_without_a_reading_series(world, tmp_path):
    folder = tmp_path / "ax"
    write_files(folder, {f"{k}.dcm": d for k, d in enumerate(wrong_series(24, 1, "axial-t2"))})
    upload = case_set_ingest_paths(study=world.study_a, paths=[folder], name="axial only")
    [case] = Case.objects.filter(study=world.study_a)
    assert case.reading_series is None
    assert upload.status == UploadStatus.DONE
    assert "No case has an eligible series" in upload.message


def test_mixed_patients_in_one_folder_become_separate_cases(world, tmp_path):
    folder = tmp_path / "flat"
    files = {f"a{k}.dcm": d for k, d in enumerate(phantom_case_bytes(25, 1))}
    files |= {f"b{k}.dcm": d for k, d in enumerate(phantom_case_bytes(25, 2))}
    write_files(folder, files)
    upload = case_set_ingest_paths(study=world.study_a, paths=[folder], name="flat")
    assert upload.cases_created == 2
    assert Case.objects.filter(study=world.study_a).count() == 2
    assert all(c.series.count() == 1 for c in Case.objects.all())


def test_labels_continue_after_existing_cases(world, tmp_path):
    case_set_ingest_paths(study=world.study_a, paths=[_case_folder(tmp_path, 26, 1)], name="a")
    case_set_ingest_paths(study=world.study_a, paths=[_case_folder(tmp_path, 26, 2)], name="b")
    assert sorted(Case.objects.values_list("label", flat=True)) == ["Case 001", "Case 002"]


def test_phi_corpus_leaves_no_identifier_in_the_database_or_storage(world, tmp_path, media_root):
    folder = tmp_path / "Zebulonix Quixotica PID-8675309" / "ACC-55501 Mercy Vertebral Hospital"
    folder.mkdir(parents=True)
    originals = {}
    for index in range(1, 7):
        ds = phi_dataset(index=index)
        originals[index] = ds.PixelData
        ds.save_as(folder / f"Zebulonix^Quixotica_{index}.dcm", enforce_file_format=True)
    archive = tmp_path / "Zebulonix.zip"
    archive.write_bytes(
        zip_bytes(
            [(p.relative_to(tmp_path).as_posix(), p.read_bytes()) for p in folder.glob("*")],
            comment=b"ZIPCOMMENT for Zebulonix Quixotica PID-8675309",
        )
    )
    upload = case_set_ingest_paths(study=world.study_a, paths=[archive], name="PHI corpus")
    assert upload.instances_stored == 6
    out = io.StringIO()
    call_command("dumpdata", "studies", stdout=out)
    assert_clean(out.getvalue().encode(), "the database")
    for path in Path(media_root).rglob("*"):
        assert_clean(str(path.relative_to(media_root)).encode(), f"the name {path}")
        if path.is_file() and Instance.objects.filter(file__endswith=path.name).exists():
            data = path.read_bytes()
            assert_clean(data, str(path))
            ds = pydicom.dcmread(io.BytesIO(data))
            assert ds.PatientAge == "076Y"
            assert ds.PatientSex == "F"
            assert ds.StudyDate != "20230501"
            assert ds.PixelData == originals[int(ds.ImagePositionPatient[0]) // 4]
    assert NEEDLES  # the corpus hides every needle


BAD_INPUTS = {
    "notes.txt": (b"hello, not an image" * 20, "not a DICOM file"),
    "report.pdf": (b"%PDF-1.4\n" + b"0" * 300, "PDF"),
    "truncated-header.dcm": (None, "truncated"),
    "cut-in-pixels.dcm": (None, "pixel data is truncated"),
    "no-pixels.dcm": (None, "no pixel data"),
    "outer.zip": (
        zip_bytes([("inner.zip", zip_bytes([("a.dcm", b"x")]))]),
        "nested archives are not opened",
    ),
    "empty.dcm": (b"", "the file is empty"),
}


def _bad_files() -> dict[str, bytes]:
    good = phantom_case_bytes(27, 1)
    files = {name: data for name, (data, _) in BAD_INPUTS.items() if data is not None}
    files["truncated-header.dcm"] = good[1][: good[1].index(b"PHANTOM^") + 4]
    files["cut-in-pixels.dcm"] = good[2][:-5000]
    files["no-pixels.dcm"] = no_pixel_data_bytes()
    return files


def test_every_bad_file_is_rejected_with_its_reason_and_nothing_partial(world, tmp_path):
    files = _bad_files()
    paths = write_files(tmp_path / "bad", files)
    good = write_files(tmp_path / "good", {"ok.dcm": phantom_case_bytes(27, 1)[0]})
    upload = case_set_ingest_paths(study=world.study_a, paths=[*paths, *good], name="bad")
    assert upload.status == UploadStatus.DONE
    assert upload.instances_stored == 1 == Instance.objects.count()
    items = {
        paths[item.file_index].name: item
        for item in upload.items.all()
        if item.file_index < len(paths)
    }
    for name, (_, reason) in BAD_INPUTS.items():
        assert items[name].status == ItemStatus.REJECTED, name
        assert reason in items[name].reason, (name, items[name].reason)
    assert upload.files_rejected == len(BAD_INPUTS)


def test_hostile_zip_members_are_rejected(world, tmp_path):
    good = phantom_case_bytes(28, 1)
    archive = tmp_path / "hostile.zip"
    archive.write_bytes(
        zip_bytes(
            [
                ("ok/IM1.dcm", good[0]),
                ("../escape.dcm", good[1]),
                ("/abs/path.dcm", good[2]),
                ("inner/nested.zip", zip_bytes([("x.dcm", good[3])])),
            ],
            symlinks=["link.dcm"],
        )
    )
    upload = case_set_ingest_paths(study=world.study_a, paths=[archive], name="hostile zip")
    reasons = sorted(
        upload.items.filter(status=ItemStatus.REJECTED).values_list("reason", flat=True)
    )
    assert len(reasons) == 4
    assert sum("unsafe path inside the zip" in r for r in reasons) == 2
    assert any("symbolic link inside the zip" in r for r in reasons)
    assert any("nested archives are not opened" in r for r in reasons)
    assert upload.instances_stored == 1
    assert list(upload.items.values_list("member_index", flat=True)) == [0, 1, 2, 3, 4]


def test_zip_bomb_member_is_rejected_before_inflating(world, tmp_path):
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(bomb_zip_bytes())
    started = time.monotonic()
    upload = case_set_ingest_paths(study=world.study_a, paths=[archive], name="bomb")
    assert time.monotonic() - started < 5
    [item] = upload.items.all()
    assert "zip bomb" in item.reason
    assert upload.status == UploadStatus.FAILED
    assert upload.message.startswith("Nothing was stored")


def test_refused_upload_stores_nothing_even_what_was_read_before(world, tmp_path):
    """A limit passed mid-way (IngestError) removes the instances already stored."""
    good = phantom_case_bytes(29, 1)
    paths = write_files(tmp_path / "f", {f"{k}.dcm": d for k, d in enumerate(good[:4])})
    limits = {"max_total_bytes": len(good[0]) * 2 + 10}
    with override_settings(VBQ_INGEST_LIMITS=limits), pytest.raises(IngestError):
        case_set_ingest_paths(study=world.study_a, paths=paths, name="too big")
    upload = Upload.objects.get(name="too big")
    assert upload.status == UploadStatus.FAILED
    assert "refused and nothing was stored" in upload.message
    assert (Instance.objects.count(), Series.objects.count(), Case.objects.count()) == (0, 0, 0)
    assert not upload.items.exists()
    assert _stored_names() == []


def test_too_many_zip_entries_refuse_the_upload(world, tmp_path):
    archive = tmp_path / "many.zip"
    archive.write_bytes(zip_bytes([(f"e{i}", b"") for i in range(30)]))
    with override_settings(VBQ_INGEST_LIMITS={"max_files": 20}), pytest.raises(IngestError):
        case_set_ingest_paths(study=world.study_a, paths=[archive], name="many")
    upload = Upload.objects.get(name="many")
    assert "more than the limit of 20" in upload.message


def test_cancel_while_processing_removes_what_was_stored(world, tmp_path, monkeypatch):
    paths = write_files(
        tmp_path / "f", {f"{k}.dcm": d for k, d in enumerate(phantom_case_bytes(30, 1))}
    )
    monkeypatch.setattr(store_service, "PROGRESS_EVERY_FILES", 1)
    original = store_service._Store.add

    def add_then_cancel(self, outcome):
        original(self, outcome)
        if outcome.position == 3:
            Upload.objects.filter(pk=self.upload.pk).update(status=UploadStatus.CANCELLED)

    monkeypatch.setattr(store_service._Store, "add", add_then_cancel)
    upload = case_set_ingest_paths(study=world.study_a, paths=paths, name="cancelled")
    assert upload.status == UploadStatus.CANCELLED
    assert (Instance.objects.count(), Case.objects.count()) == (0, 0)
    assert _stored_names() == []


def test_quarantined_instances_are_stored_but_not_readable(world, tmp_path):
    ds = phi_dataset(index=1)
    ds.BurnedInAnnotation = "YES"
    path = tmp_path / "burned.dcm"
    ds.save_as(path, enforce_file_format=True)
    upload = case_set_ingest_paths(study=world.study_a, paths=[path], name="burned")
    [item] = upload.items.all()
    assert item.status == ItemStatus.QUARANTINED
    assert "Burned In Annotation" in item.reason
    [instance] = Instance.objects.all()
    assert instance.quarantined
    assert not instance.series.instances.readable().exists()
    assert instance.series.eligible is False
    assert "every instance is quarantined" in instance.series.eligibility["reasons"][0]


def test_manager_override_and_return_to_automatic(world, tmp_path):
    folder = _case_folder(tmp_path, 31, 1, wrong_series(31, 1, "axial-t2"))
    case_set_ingest_paths(study=world.study_a, paths=[folder], name="o")
    [case] = Case.objects.all()
    axial = case.series.get(description="AX T2")
    case_choose_series(case=case, series=axial, reason="only axial available", by=world.manager)
    assert case.reading_series == axial
    axial.refresh_from_db()
    assert axial.eligibility_overridden_by == world.manager
    # A later ingest into the case keeps the manager's choice.
    series_service.case_select_automatic(case=case)
    assert case.reading_series == axial
    series_service.case_select_automatic(case=case, clear_override=True)
    assert case.reading_series.description == "SAG T1"


def test_changing_tr_range_rejudges_series(world, tmp_path):
    case_set_ingest_paths(study=world.study_a, paths=[_case_folder(tmp_path, 32, 1)], name="r")
    study = world.study_a
    series_service.study_set_eligibility_ranges(study=study, ingest_tr_max_ms=350.0)
    series_service.study_rejudge_series(study=study)
    series = Series.objects.get()
    assert series.eligible is False
    assert not series.selected
    assert any(
        "above the T1 spin-echo range 300–350 ms" in r for r in series.eligibility["reasons"]
    )


# --- the real files of ../shared/data ------------------------------------------------------------


def _data(folder: str) -> Path:
    path = shared_data(folder)
    if path is None:
        pytest.skip(f"shared test data {folder}/ not found (see ../shared/data/README.md)")
    return path


def test_real_sagittal_brain_series_is_ingested_and_judged_ineligible(client, world):
    upload = case_set_ingest_paths(
        study=world.study_a, paths=[_data("real-mr-sagittal-t1-brain")], name="real"
    )
    assert upload.instances_stored == 196
    [rejected] = upload.items.filter(status=ItemStatus.REJECTED)  # the LICENSE file
    assert "not a DICOM file" in rejected.reason
    [case] = Case.objects.all()
    [series] = case.series.all()
    assert series.eligible is False
    assert case.reading_series is None
    tr_reason = "TR 6.96 ms is far below the T1 spin-echo range 300–1000 ms"
    assert tr_reason in series.eligibility["reasons"]
    assert series.field_strength_t == 3.0
    assert series.manufacturer == "GE MEDICAL SYSTEMS"
    for instance in Instance.objects.all()[::49]:
        with instance.file.open("rb") as handle:
            data = handle.read()
        assert b"FRUIT" not in data.upper()
        assert data[:128] == bytes(128)
    client.force_login(world.manager)
    page = client.get(reverse("studies:case_series", kwargs={"pk": case.pk}))
    assert tr_reason in page.content.decode()
    assert "gradient echo" in page.content.decode()


def test_compressed_files_are_decoded_or_rejected_with_a_reason(world):
    folder = _data("compressed")
    upload = case_set_ingest_paths(study=world.study_a, paths=[folder], name="compressed")
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert upload.files_processed == len(files)
    for item in upload.items.all():
        if item.status == ItemStatus.REJECTED:
            assert item.reason
        else:
            instance = Instance.objects.get(sop_instance_uid=item.sop_instance_uid)
            with instance.file.open("rb") as handle:
                assert pydicom.dcmread(handle).pixel_array.size > 0
    by_name = {files[item.member_index]: item for item in upload.items.all()}
    assert "1.2.840.10008.1.2.4.51" in by_name["1.2.840.10008.1.2.4.51.dcm"].reason
    assert by_name["JPEG2000Lossless__MR2_J2KR.dcm"].status == ItemStatus.ACCEPTED
    assert "CT Image Storage is not an MR image" in by_name["1.2.840.10008.1.2.4.70.dcm"].reason
    assert upload.instances_stored >= 4


def test_hostile_files_are_all_rejected_quickly(world):
    folder = _data("hostile")
    started = time.monotonic()
    upload = case_set_ingest_paths(study=world.study_a, paths=[folder], name="hostile")
    assert time.monotonic() - started < 30
    assert upload.instances_stored == 0
    assert upload.status == UploadStatus.FAILED
    assert upload.files_rejected == upload.files_processed == len(list(folder.iterdir()))
    assert all(item.reason for item in upload.items.all())


# --- the managers' pages -------------------------------------------------------------------


@pytest.fixture
def case_with_two_series(world, tmp_path) -> Case:
    folder = _case_folder(tmp_path, 33, 1, wrong_series(33, 1, "axial-t2"))
    case_set_ingest_paths(study=world.study_a, paths=[folder], name="pages")
    return Case.objects.get()


def test_override_form_needs_a_reason_and_records_it(client, world, case_with_two_series):
    case = case_with_two_series
    axial = case.series.get(description="AX T2")
    url = reverse("studies:case_series", kwargs={"pk": case.pk})
    client.force_login(world.manager)
    page = client.get(url).content.decode()
    assert "axial slices: VBQ needs a sagittal series" in page
    assert "Automatic: the best eligible series" in page
    response = client.post(url, {"choice": str(axial.pk), "reason": ""})
    assert response.status_code == 400
    assert "Say why" in response.content.decode()
    response = client.post(url, {"choice": str(axial.pk), "reason": "sagittal lost at export"})
    assert response.status_code == 302
    assert case.reading_series == axial
    assert "sagittal lost at export" in client.get(url).content.decode()
    client.post(url, {"choice": "none", "reason": "motion on every series"})
    assert case.reading_series is None
    client.post(url, {"choice": "auto"})
    assert case.reading_series.description == "SAG T1"


@pytest.mark.parametrize(("role", "status"), [("reader", 404), ("manager_b", 404), ("admin", 302)])
def test_override_roles(client, world, case_with_two_series, role, status):
    client.force_login(getattr(world, role))
    url = reverse("studies:case_series", kwargs={"pk": case_with_two_series.pk})
    assert client.post(url, {"choice": "auto"}).status_code == status


def test_override_refused_once_readers_started(client, world, case_with_two_series):
    from tests.helpers.factories import ReadingFactory

    case = case_with_two_series
    ReadingFactory(reader=world.reader, case=case)
    client.force_login(world.manager)
    axial = case.series.get(description="AX T2")
    url = reverse("studies:case_series", kwargs={"pk": case.pk})
    response = client.post(url, {"choice": str(axial.pk), "reason": "try"})
    assert response.status_code == 400
    assert "Readers have started" in response.content.decode()
    assert case.reading_series.description == "SAG T1"


def test_ranges_form_on_the_cases_page(client, world, case_with_two_series):
    client.force_login(world.manager)
    url = reverse("studies:cases", kwargs={"pk": world.study_a.pk})
    assert "Case 001" in client.get(url).content.decode()
    bad = {f"ranges-ingest_{k}": v for k, v in {"tr_min_ms": 900, "tr_max_ms": 300}.items()}
    bad |= {"ranges-ingest_te_min_ms": 5, "ranges-ingest_te_max_ms": 30}
    response = client.post(url, bad)
    assert response.status_code == 400
    assert "upside down" in response.content.decode()
    good = bad | {"ranges-ingest_tr_min_ms": 250, "ranges-ingest_tr_max_ms": 1200}
    assert not Job.objects.exists()  # refused: nothing to re-judge
    with broker_down():
        assert client.post(url, good).status_code == 302
    world.study_a.refresh_from_db()
    assert (world.study_a.ingest_tr_min_ms, world.study_a.ingest_tr_max_ms) == (250, 1200)
    [job] = Job.objects.all()  # recorded with the change, in the outbox
    assert (job.work, job.kwargs) == (REJUDGE_SERIES.name, {"study_id": world.study_a.pk})
