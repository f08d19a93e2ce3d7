"""Reusing cases (issue 13): a manager of two studies attaches a case set of one to the other;
a manager of only one of them can neither see nor attach the other's sets."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from django.urls import reverse
from django.utils.html import escape

from readers.models import Reading
from studies import selectors
from studies.casesets import (
    attach_job_key,
    attach_status_payload,
    case_set_attach,
    case_set_attach_run,
)
from studies.models import (
    AttachStatus,
    Case,
    CaseSet,
    CaseSetAttach,
    Instance,
    ItemStatus,
    Role,
    Series,
)
from studies.uploads.ingest import case_set_ingest_paths
from studies.uploads.store import study_uid
from tests.helpers import factories
from tests.helpers.ingestdata import phantom_case_bytes, write_files
from vbqweb.audit.models import AuditEvent
from vbqweb.models import Job
from vbqweb.tasks import ATTACH_CASE_SET

pytestmark = pytest.mark.django_db


def _folders(root: Path, seed: int, n: int) -> list[Path]:
    folders = []
    for index in range(1, n + 1):
        folder = root / f"case-{index:03d}"
        data = phantom_case_bytes(seed, index)
        write_files(folder, {f"IM{k:04d}.dcm": d for k, d in enumerate(data)})
        folders.append(folder)
    return folders


@pytest.fixture
def two_studies(world, tmp_path):
    """Study A with a case set of two phantom cases (one read), and a manager of A and B."""
    folders = _folders(tmp_path, 41, 2)
    upload = case_set_ingest_paths(study=world.study_a, paths=folders, name="Site 1")
    both = factories.UserFactory(username="both")
    for study in (world.study_a, world.study_b):
        factories.AssignmentFactory(study=study, user=both, role=Role.MANAGER)
    first = Case.objects.filter(study=world.study_a).order_by("label").first()
    factories.ReadingFactory(case=first, reader=world.reader)
    return world, upload.case_set, both, folders


def _attach(client, user, study, case_set):
    """Post the attach; when the page recorded one, run it as the worker would."""
    client.force_login(user)
    url = reverse("studies:case_set_attach", kwargs={"pk": study.pk})
    response = client.post(url, {"case_set": case_set.pk})
    if response.status_code == 302:
        attach = CaseSetAttach.objects.filter(study=study).first()
        if attach is not None:
            case_set_attach_run(attach_id=attach.pk)
    return response


def test_a_manager_of_both_studies_attaches_a_case_set_as_copies_with_the_studys_own_uids(
    two_studies, client
):
    world, source, both, _ = two_studies
    factories.CaseFactory(study=world.study_b, label="Case 001")  # B numbers on from its own
    response = _attach(client, both, world.study_b, source)
    assert response.status_code == 302
    [attached] = CaseSet.objects.filter(study=world.study_b)
    assert attached.name == "Site 1"
    copies = list(attached.cases.order_by("label"))
    originals = list(source.cases.order_by("label"))
    assert [c.label for c in copies] == ["Case 002", "Case 003"]
    for copy, original in zip(copies, originals, strict=True):
        assert copy.study_instance_uid == study_uid(original.study_instance_uid, world.study_b)
        assert copy.patient_pseudonym == original.patient_pseudonym
        [series], [series_a] = copy.series.all(), original.series.all()
        assert series.selected
        assert series.eligible
        assert series.series_instance_uid == study_uid(series_a.series_instance_uid, world.study_b)
        assert series.n_instances == series_a.n_instances
        assert series.field_strength_t == series_a.field_strength_t
        a_files = {i.sop_instance_uid: i for i in series_a.instances.all()}
        for instance in series.instances.all():
            mine = a_files.pop(
                next(u for u in a_files if study_uid(u, world.study_b) == instance.sop_instance_uid)
            )
            assert instance.file.name != mine.file.name  # a copy, not the same file
            with instance.file.open("rb") as handle:
                stored = pydicom.dcmread(handle)
            with mine.file.open("rb") as handle:
                before = pydicom.dcmread(handle)
            assert stored.SOPInstanceUID == instance.sop_instance_uid
            assert stored.file_meta.MediaStorageSOPInstanceUID == instance.sop_instance_uid
            assert stored.StudyInstanceUID == copy.study_instance_uid
            assert stored.FrameOfReferenceUID == study_uid(
                before.FrameOfReferenceUID, world.study_b
            )
            assert stored.SOPClassUID == before.SOPClassUID
            assert stored.PatientID == before.PatientID
            assert stored.pixel_array.tobytes() == before.pixel_array.tobytes()
        assert not a_files
    # Readings never carry over; A is untouched.
    assert not Reading.objects.filter(case__study=world.study_b).exists()
    assert Reading.objects.filter(case__study=world.study_a).count() == 1
    assert source.cases.count() == 2
    [event] = AuditEvent.objects.filter(action="caseset.attached")
    assert event.study_id == world.study_b.pk
    assert event.actor_id == both.pk
    assert event.detail["from_case_set"] == source.pk
    assert event.detail["cases"] == 2
    assert (
        event.detail["instances"]
        == Instance.objects.filter(series__case__study=world.study_b).count()
    )


def test_attaching_again_adds_nothing_and_an_upload_of_the_same_files_is_a_duplicate(
    two_studies, client, tmp_path
):
    world, source, both, folders = two_studies
    _attach(client, both, world.study_b, source)
    counts = Case.objects.count(), Series.objects.count(), Instance.objects.count()
    again = case_set_attach(source=source, study=world.study_b, by=both)
    assert again.case_set is None
    assert again.skipped == 2
    assert (Case.objects.count(), Series.objects.count(), Instance.objects.count()) == counts
    upload = case_set_ingest_paths(study=world.study_b, paths=folders, name="same files")
    assert (Case.objects.count(), Series.objects.count(), Instance.objects.count()) == counts
    assert set(upload.items.values_list("status", flat=True)) == {ItemStatus.DUPLICATE}


def test_a_manager_of_only_one_study_neither_sees_nor_attaches_the_other_studys_sets(
    two_studies, client
):
    world, source, both, _ = two_studies
    client.force_login(world.manager_b)
    page = client.get(reverse("studies:case_set_attach", kwargs={"pk": world.study_b.pk}))
    assert page.status_code == 200
    assert b"Site 1" not in page.content
    assert b"Study A" not in page.content
    # Study A's set, posted by B's manager: the same 404 as a set that does not exist.
    refused = _attach(client, world.manager_b, world.study_b, source)
    missing = client.post(
        reverse("studies:case_set_attach", kwargs={"pk": world.study_b.pk}),
        {"case_set": 999999},
    )
    assert refused.status_code == missing.status_code == 404
    assert refused.content == missing.content
    # A's manager cannot attach into B (404), nor B's readers (403: they know the study).
    assert _attach(client, world.manager, world.study_b, source).status_code == 404
    assert _attach(client, world.reader_b, world.study_b, source).status_code == 403
    assert not Case.objects.filter(study=world.study_b).exists()
    # The manager of both sees A's set on B's page, not B's own sets.
    client.force_login(both)
    page = client.get(reverse("studies:case_set_attach", kwargs={"pk": world.study_b.pk}))
    assert b"Site 1" in page.content
    assert b"Study A" in page.content


def test_attach_cost_is_measured(two_studies, capsys):
    """Not a limit: the figure docs/ingest.md quotes (time and bytes per instance copied)."""
    world, source, both, _ = two_studies
    start = time.perf_counter()
    done = case_set_attach(source=source, study=world.study_b, by=both)
    seconds = time.perf_counter() - start
    assert done.instances > 0
    with capsys.disabled():
        print(
            f"\nattach: {done.cases} cases, {done.instances} instances, "
            f"{done.bytes_written / 1e6:.2f} MB in {seconds:.2f} s "
            f"({1000 * seconds / done.instances:.1f} ms per instance)"
        )


def _files(storage, folder: str) -> set[str]:
    if not storage.exists(folder):
        return set()
    folders, files = storage.listdir(folder)
    found = {f"{folder}/{name}" for name in files}
    for name in folders:
        found |= _files(storage, f"{folder}/{name}")
    return found


def test_a_case_that_cannot_be_copied_leaves_no_rows_and_no_files_behind(two_studies):
    world, source, both, _ = two_studies
    first = source.cases.order_by("label").first()
    broken = Instance.objects.filter(series__case=first).order_by("instance_number").last()
    with broken.file.open("wb") as handle:
        handle.write(b"not DICOM any more")
    storage = broken.file.storage
    before = _files(storage, "instances")
    with pytest.raises(Exception):  # noqa: B017, PT011 - pydicom's error, whichever it is
        case_set_attach(source=source, study=world.study_b, by=both)
    assert not Case.objects.filter(study=world.study_b).exists()
    assert not CaseSet.objects.filter(study=world.study_b).exists()
    assert _files(storage, "instances") == before


# -- in the background (a large set is tens of seconds of copying) --------------------------


def _post(client, user, study, case_set):
    client.force_login(user)
    url = reverse("studies:case_set_attach", kwargs={"pk": study.pk})
    return client.post(url, {"case_set": case_set.pk})


def _cases_step(study) -> str:
    [cases] = [s for s in selectors.study_checklist(study=study).steps if s.key == "cases"]
    return cases.detail


def test_the_page_records_the_attach_and_its_job_and_the_worker_copies(two_studies, client):
    world, source, both, _ = two_studies
    response = _post(client, both, world.study_b, source)
    [attach] = CaseSetAttach.objects.all()
    progress = reverse("studies:case_set_attach_progress", kwargs={"public_id": attach.public_id})
    status_url = reverse("studies:case_set_attach_status", kwargs={"public_id": attach.public_id})
    assert response.status_code == 302
    assert response.url == progress
    assert (attach.status, attach.cases_total, attach.study) == (
        AttachStatus.QUEUED,
        2,
        world.study_b,
    )
    assert not Case.objects.filter(study=world.study_b).exists()  # the request copied nothing
    job = Job.objects.get(key=attach_job_key(attach.pk))
    assert (job.work, job.queue, job.kwargs) == (
        ATTACH_CASE_SET.name,
        ATTACH_CASE_SET.queue,
        {"attach_id": attach.pk},
    )
    page = client.get(progress).content.decode()
    assert "0 of 2 cases copied" in page
    assert "js/attach.js" in page
    assert f'data-status-url="{status_url}"' in page
    assert _cases_step(world.study_b) == (
        "0 cases uploaded; 1 case set being copied from another study"
    )
    # A second click while it waits: the same attach, no second job.
    assert _post(client, both, world.study_b, source).url == progress
    assert CaseSetAttach.objects.count() == 1

    assert case_set_attach_run(attach_id=attach.pk) == "2 copied, 0 skipped"
    state = client.get(status_url).json()
    n_instances = Instance.objects.filter(series__case__study=world.study_b).count()
    assert state["finished"]
    assert (state["status"], state["text"], state["instances"]) == (
        "done",
        "2 of 2 cases copied",
        n_instances,
    )
    page = client.get(progress).content.decode()
    assert "2 cases attached as “Site 1”" in page
    assert 'data-finished="1"' in page
    # The checklist counts the copies as the study's cases.
    assert _cases_step(world.study_b) == "2 cases (2 reused from another study)"
    assert [s.done for s in selectors.study_checklist(study=world.study_b).steps][2]
    # A copy of the message delivered again: nothing more to do, one audit event.
    assert case_set_attach_run(attach_id=attach.pk) == "nothing to do"
    assert AuditEvent.objects.filter(action="caseset.attached").count() == 1
    # The attach page lists it.
    listing = client.get(reverse("studies:case_set_attach", kwargs={"pk": world.study_b.pk}))
    assert progress in listing.content.decode()


def test_a_run_sent_again_continues_into_the_copy_it_began(two_studies, client):
    world, source, both, _ = two_studies
    _post(client, both, world.study_b, source)
    [attach] = CaseSetAttach.objects.all()
    case_set_attach_run(attach_id=attach.pk)
    attach.refresh_from_db()
    copy = attach.case_set
    # As if the first run had died after its first case: the second case is not there yet.
    copy.cases.order_by("label").last().delete()
    CaseSetAttach.objects.filter(pk=attach.pk).update(
        status=AttachStatus.COPYING, cases_copied=1, finished_at=None
    )
    assert case_set_attach_run(attach_id=attach.pk) == "2 copied, 0 skipped"
    attach.refresh_from_db()
    assert attach.case_set == copy
    assert copy.cases.count() == 2
    assert CaseSet.objects.filter(study=world.study_b).count() == 1
    assert attach.status == AttachStatus.DONE


def test_a_set_already_here_is_done_with_nothing_new(two_studies, client):
    world, source, both, _ = two_studies
    case_set_attach(source=source, study=world.study_b, by=both)
    _post(client, both, world.study_b, source)
    [attach] = CaseSetAttach.objects.all()
    assert case_set_attach_run(attach_id=attach.pk) == "0 copied, 2 skipped"
    attach.refresh_from_db()
    assert attach.case_set is None
    state = attach_status_payload(attach=attach)
    assert state["text"] == "2 of 2 cases copied (2 already here)"
    page = client.get(
        reverse("studies:case_set_attach_progress", kwargs={"public_id": attach.public_id})
    )
    assert "Every case of that set is already in this study." in page.content.decode()


def test_a_copy_that_fails_says_so_on_its_progress_page(two_studies, client):
    world, source, both, _ = two_studies
    first = source.cases.order_by("label").first()
    broken = Instance.objects.filter(series__case=first).order_by("instance_number").last()
    with broken.file.open("wb") as handle:
        handle.write(b"not DICOM any more")
    _post(client, both, world.study_b, source)
    [attach] = CaseSetAttach.objects.all()
    with pytest.raises(Exception):  # noqa: B017, PT011 - pydicom's error, whichever it is
        case_set_attach_run(attach_id=attach.pk)  # no outbox run: this is the last try
    attach.refresh_from_db()
    assert attach.status == AttachStatus.FAILED
    assert attach.message.startswith("Failed: ")
    assert not Case.objects.filter(study=world.study_b).exists()
    state = client.get(
        reverse("studies:case_set_attach_status", kwargs={"public_id": attach.public_id})
    ).json()
    assert state["finished"]
    assert state["status_display"] == "Failed"
    page = client.get(
        reverse("studies:case_set_attach_progress", kwargs={"public_id": attach.public_id})
    )
    assert escape(attach.message) in page.content.decode()


def test_an_attach_the_outbox_gave_up_on_reads_as_failed(two_studies, client):
    """Its worker lost three times: no run was left to mark the attach, so the page asks the
    outbox, and says failed with its reason instead of copying for ever."""
    world, source, both, _ = two_studies
    _post(client, both, world.study_b, source)
    [attach] = CaseSetAttach.objects.all()
    url = reverse("studies:case_set_attach_status", kwargs={"public_id": attach.public_id})
    assert client.get(url).json()["finished"] is False
    Job.objects.filter(key=attach_job_key(attach.pk)).update(
        state=Job.State.FAILED, error="Given up: its worker was lost 3 times."
    )
    state = client.get(url).json()
    assert (state["finished"], state["status"]) == (True, AttachStatus.FAILED)
    assert state["message"] == "Failed: Given up: its worker was lost 3 times."


def test_only_the_receiving_studys_managers_see_an_attach(two_studies, client):
    world, source, both, _ = two_studies
    _post(client, both, world.study_b, source)
    [attach] = CaseSetAttach.objects.all()
    url = reverse("studies:case_set_attach_status", kwargs={"public_id": attach.public_id})
    client.force_login(world.manager_b)
    assert client.get(url).status_code == 200
    for user in (world.manager, world.reader_b, world.outsider):  # A's manager: not B's
        client.force_login(user)
        assert client.get(url).status_code == 404
