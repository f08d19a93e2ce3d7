"""A study's generated files (issue 13 item 8): built once per analysis, served at once, never
served as current for another analysis; "preparing… N of M" and a job while they are built.

A small study of factory readings (two readers, three cases, no ROIs: the SR zip is empty but
built), so that a build is the real one and the tests stay quick.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from readers.analysis import artifacts
from readers.analysis import services as analytics
from readers.models import Reading, StudyAnalysis, StudyArtifact, VbqResult
from studies.models import Role, Study
from tests.helpers.factories import AssignmentFactory, CaseFactory, ReadingFactory, StudyFactory
from vbqweb.audit.models import AuditEvent
from vbqweb.models import Job

Kind = StudyArtifact.Kind
ALL = {Kind.PAGE, Kind.REPORT, Kind.PDF, Kind.SR_ZIP}


@pytest.fixture
def study(db):
    study = StudyFactory(name="Files")
    study.thresholds.create(name="screening", value=2.95)
    manager = AssignmentFactory(study=study, role=Role.MANAGER).user
    readers = [AssignmentFactory(study=study, role=Role.READER).user for _ in range(2)]
    for i in range(3):
        case = CaseFactory(study=study, label=f"Case {i}")
        for r, reader in enumerate(readers):
            reading = ReadingFactory(
                case=case, reader=reader, status=Reading.Status.SUBMITTED, roi_version=1
            )
            VbqResult.objects.create(
                reading=reading,
                roi_version=1,
                algorithm_version="t",
                status="ok",
                vbq=2.5 + i + r / 10,
            )
    analytics.analysis_compute(study_pk=study.pk)
    return study, manager, readers[0]


def _status(study) -> dict[str, artifacts.FileStatus]:
    return artifacts.files_status(study=study, state=analytics.analysis_state(study=study))


def test_the_analysis_asks_the_worker_to_build_the_files(study) -> None:
    study, _, _ = study
    job = Job.objects.get(key=analytics.files_job_key(study.pk))
    assert job.work == "readers.tasks.build_study_files"
    assert job.kwargs == {"study_pk": study.pk}
    assert not any(s.ready for s in _status(study).values())  # nothing built before the worker


def test_built_once_per_analysis_and_served_as_built(client, study) -> None:
    study, manager, _ = study
    assert set(artifacts.files_build(study_pk=study.pk)) == ALL
    status = _status(study)
    assert all(status[kind].ready for kind in ALL)
    assert artifacts.files_build(study_pk=study.pk) == []  # idempotent: nothing to do
    client.force_login(manager)
    pdf = client.get(reverse("analytics:report_pdf", kwargs={"pk": study.pk}))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.getvalue().startswith(b"%PDF")
    assert "attachment" in pdf["Content-Disposition"]
    archive = client.get(reverse("analytics:study_srs", kwargs={"pk": study.pk}))
    assert zipfile.ZipFile(io.BytesIO(archive.getvalue())).namelist() == []  # no ROI sets
    html = client.get(reverse("analytics:report_html", kwargs={"pk": study.pk}))
    nonce = html.wsgi_request.csp_nonce
    assert f'<style nonce="{nonce}">' in html.content.decode()
    assert artifacts.NONCE_PLACEHOLDER not in html.content.decode()
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    assert "Inter-reader agreement" in page
    assert "Preparing" not in page
    files = {e.detail["file"] for e in AuditEvent.objects.filter(action="export.downloaded")}
    assert files == {"report.pdf", "sr.zip", "report.html"}


def test_a_file_of_another_analysis_is_never_served_as_current(
    client, study, django_capture_on_commit_callbacks
) -> None:
    """New rows (a new fingerprint): the PDF waits on "preparing…" (no download, nothing
    audited, a build requested), the page shows the old figures marked out of date; after the
    build the new file is served and the replaced one is gone from the store."""
    study, manager, _ = study
    artifacts.files_build(study_pk=study.pk)
    old = _status(study)[Kind.PDF].name
    Job.objects.filter(key=analytics.files_job_key(study.pk)).update(state=Job.State.DONE)
    StudyAnalysis.objects.filter(study=study).update(fingerprint="another set of rows")
    assert not any(s.ready for s in _status(study).values())
    client.force_login(manager)
    url = reverse("analytics:report_pdf", kwargs={"pk": study.pk})
    waiting = client.get(url)
    assert waiting.status_code == 200
    assert waiting["Content-Type"].startswith("text/html")
    body = waiting.content.decode()
    assert "Preparing the PDF report" in body
    assert "0 of 3" in body
    assert f'data-download-url="{url}"' in body
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()
    job = Job.objects.get(key=analytics.files_job_key(study.pk))
    assert job.state in (Job.State.WAITING, Job.State.SENT)  # asked again: none was on its way
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    assert "the figures of an earlier analysis" in page
    assert 'data-preparing="1"' in page
    status = client.get(reverse("analytics:status", kwargs={"pk": study.pk})).json()
    assert status["files"]["pdf"] == {
        "applies": True,
        "ready": False,
        "building": False,
        "progress": 0,
        "total": 3,
        "failed": False,
    }

    with django_capture_on_commit_callbacks(execute=True):  # the replaced files go after commit
        assert set(artifacts.files_build(study_pk=study.pk)) == ALL
    new = _status(study)[Kind.PDF]
    assert new.ready
    assert new.name != old
    storage = artifacts.file_storage()
    assert storage.exists(new.name)
    assert not storage.exists(old)
    assert client.get(url)["Content-Type"] == "application/pdf"


def test_a_file_built_for_an_analysis_that_changed_meanwhile_is_dropped(study) -> None:
    study, _, _ = study
    row = StudyArtifact.objects.create(study=study, kind=Kind.PDF)
    storage = artifacts.file_storage()
    before = (
        set(storage.listdir(f"generated/study-{study.pk}")[1])
        if storage.exists(f"generated/study-{study.pk}")
        else set()
    )
    with pytest.raises(artifacts._Superseded):
        artifacts._store(study, "0" * 64, Kind.PDF, row.pk, io.BytesIO(b"%PDF old"))
    row.refresh_from_db()
    assert not row.file
    assert row.fingerprint == ""
    assert set(storage.listdir(f"generated/study-{study.pk}")[1]) == before


def test_readers_never_get_the_files(client, study) -> None:
    study, _, reader = study
    artifacts.files_build(study_pk=study.pk)
    client.force_login(reader)
    for name in ("report_pdf", "report_html", "study_srs", "status", "agreement"):
        assert client.get(reverse(f"analytics:{name}", kwargs={"pk": study.pk})).status_code == 403
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()


def test_a_study_without_an_analysis_has_nothing_to_prepare(client, db) -> None:
    study = StudyFactory(name="Empty")
    manager = AssignmentFactory(study=study, role=Role.MANAGER).user
    client.force_login(manager)
    response = client.get(reverse("analytics:study_srs", kwargs={"pk": study.pk}))
    assert response.status_code == 200
    assert "Nothing to prepare yet" in response.content.decode()
    assert not Job.objects.filter(key=analytics.files_job_key(study.pk)).exists()


def test_each_readings_sr_is_kept_for_the_next_zip(study) -> None:
    """A rebuild after new submissions writes only the new readings' SRs (highdicom is slow);
    the SRs a build did not use are deleted."""
    study, _, _ = study
    built: list[str] = []

    def build(identity: str) -> bytes:
        built.append(identity)
        return identity.encode()

    first = artifacts._StoredSrs(study)
    assert first("1-v1-r1-Reader_1", lambda: build("a")) == b"a"
    assert first("2-v1-r2-Reader_2", lambda: build("b")) == b"b"
    second = artifacts._StoredSrs(study)
    assert second("1-v1-r1-Reader_1", lambda: build("changed")) == b"a"  # kept, not rebuilt
    assert built == ["a", "b"]
    second.prune()
    assert second.storage.listdir(second.folder)[1] == ["1-v1-r1-Reader_1.dcm"]


def test_a_study_deleted_while_its_files_are_built_leaves_none(
    study, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """The deletion's erasure runs while the build is still storing SRs: the build, finding
    the study gone when it stores the zip, erases what it left."""
    study, _, _ = study
    write = artifacts.sr_zip_write

    def write_then_delete_the_study(study, target, **kwargs):
        kwargs["cache"]("1-v1-r1-Reader_1", lambda: b"SR stored before the deletion")
        with django_capture_on_commit_callbacks(execute=True):
            Study.objects.filter(pk=study.pk).delete()
        kwargs["cache"]("2-v1-r2-Reader_2", lambda: b"SR stored after the erasure")
        return write(study, target, **kwargs)

    monkeypatch.setattr(artifacts, "sr_zip_write", write_then_delete_the_study)
    pk = study.pk
    assert artifacts.files_build(study_pk=pk) == []
    assert not artifacts.file_storage().exists(artifacts.study_folder(pk))


def test_a_build_that_gave_up_is_said_and_a_recomputation_tries_again(client, study) -> None:
    """Not "preparing…" for ever: once the files job ran out of runs, the status JSON, the
    preparing page and the agreement page say the build failed and offer a recomputation,
    which asks for the build again."""
    study, manager, _ = study
    key = analytics.files_job_key(study.pk)
    client.force_login(manager)
    status_url = reverse("analytics:status", kwargs={"pk": study.pk})
    assert client.get(status_url).json()["files"]["pdf"]["failed"] is False
    Job.objects.filter(key=key).update(state=Job.State.FAILED)

    files = client.get(status_url).json()["files"]
    assert {kind: files[kind]["failed"] for kind in ALL} == dict.fromkeys(ALL, True)
    preparing = client.get(reverse("analytics:report_pdf", kwargs={"pk": study.pk}))
    text = preparing.content.decode()
    assert "could not be built" in text
    assert '<div class="failed banner error">' in text  # shown, not hidden
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    assert "The figures could not be built" in page
    assert 'data-preparing="1"' not in page  # the page stops polling
    assert Job.objects.get(key=key).state == Job.State.FAILED  # polling does not retry it

    client.post(reverse("analytics:recompute", kwargs={"pk": study.pk}))
    analytics.analysis_compute(study_pk=study.pk)  # what the worker does with the request
    assert Job.objects.get(key=key).state in (Job.State.WAITING, Job.State.SENT)  # asked again
    assert client.get(status_url).json()["files"]["pdf"]["failed"] is False
    assert set(artifacts.files_build(study_pk=study.pk)) == ALL
