"""Uploads through the site's chunked endpoint, ingested by a real Celery worker on real Redis.

A zip of phantom cases with wrong-series variants, a folder of more files than one request may
carry, every bad input of the issue in one upload (and the hostile real files), a zip whose
entry count refuses the upload, and the outbox: a broker that is down or hung when the upload
finishes, then back: the upload is processed exactly once. (A worker killed in the middle of an
ingest: ``test_worker_killed.py``.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from studies.models import Case, Instance, ItemStatus, Series, Upload, UploadStatus
from studies.uploads.outbox import ingest_job_key
from studies.uploads.staging import staging_exists
from tests.helpers.brokers import broker_down, broker_hung
from tests.helpers.ingestdata import (
    bomb_zip_bytes,
    many_entries_zip_bytes,
    no_pixel_data_bytes,
    phantom_case_bytes,
    shared_data,
    wrong_series,
    zip_bytes,
)
from tests.helpers.uploads import Browser
from tests.helpers.workers import wait_until
from vbqweb.celery import app as celery_app
from vbqweb.jobs import jobs_send
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FINISHED = (UploadStatus.DONE, UploadStatus.FAILED, UploadStatus.CANCELLED)


def wait_finished(upload_id: int, timeout: float = 60) -> Upload:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        upload = Upload.objects.get(pk=upload_id)
        if upload.status in FINISHED:
            return upload
        time.sleep(0.1)
    raise TimeoutError(f"upload {upload_id} still {upload.status} after {timeout} s")


def assert_temporary_files_gone(upload: Upload, timeout: float = 10) -> None:
    """The task deletes the upload's folder in ``finally``, just after its last status write."""
    deadline = time.monotonic() + timeout
    while staging_exists(upload) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not staging_exists(upload)


@pytest.fixture
def browser(client, world, celery_worker) -> Browser:
    client.force_login(world.manager)
    return Browser(client, world.study_a)


def upload_through_the_site(browser: Browser, files: list[bytes], **send) -> Upload:
    browser.create(files)
    browser.send(files, **send)
    response = browser.finish()
    assert response.status_code == 200, response.content
    return wait_finished(browser.upload_pk)


def test_zip_of_phantom_cases_with_wrong_series(browser, settings):
    members = [(f"p1/{k}.dcm", d) for k, d in enumerate(phantom_case_bytes(41, 1))]
    members += [(f"p1/ax/{k}.dcm", d) for k, d in enumerate(wrong_series(41, 1, "axial-t2"))]
    members += [(f"p2/{k}.dcm", d) for k, d in enumerate(phantom_case_bytes(41, 2))]
    members += [(f"p2/c/{k}.dcm", d) for k, d in enumerate(wrong_series(41, 2, "post-contrast"))]
    members.append(("README.txt", b"exported by the PACS"))
    archive = zip_bytes(members, comment=b"exported for patient PHANTOM^CASE001")
    settings.VBQ_UPLOAD_CHUNK_BYTES = 512 * 1024
    upload = upload_through_the_site(browser, [archive], chunk_bytes=512 * 1024)
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.sources_total == upload.files_processed == len(members)
    assert upload.instances_stored == len(members) - 1
    [readme] = upload.items.filter(status=ItemStatus.REJECTED)
    assert readme.member_index == len(members) - 1
    assert "not a DICOM file" in readme.reason
    cases = list(Case.objects.filter(study=browser.study).order_by("label"))
    assert [c.label for c in cases] == ["Case 001", "Case 002"]
    for case in cases:
        assert case.series.count() == 2
        assert case.series.filter(eligible=False).count() == 1
        selected = case.reading_series
        assert selected.description == "SAG T1"
        assert selected.eligibility["contrast"] is False
    assert_temporary_files_gone(upload)
    status = browser.status()
    assert status["finished"] is True
    assert status["cases_created"] == 2


def test_folder_of_many_files_and_patients(browser, settings):
    """More files than one request may carry (DATA_UPLOAD_MAX_NUMBER_FILES), 9 patients."""
    files = [d for index in range(1, 10) for d in phantom_case_bytes(42, index)]
    assert len(files) > settings.DATA_UPLOAD_MAX_NUMBER_FILES
    upload = upload_through_the_site(browser, files)
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.instances_stored == len(files) == Instance.objects.count()
    assert upload.cases_created == 9
    assert Series.objects.filter(selected=True, eligible=True).count() == 9
    assert sorted(upload.items.values_list("file_index", flat=True)) == list(range(len(files)))
    assert_temporary_files_gone(upload)


def test_only_ineligible_series_are_stored_and_the_report_says_why(browser):
    files = wrong_series(45, 1, "axial-t2") + wrong_series(45, 1, "post-contrast")
    upload = upload_through_the_site(browser, files)
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.instances_stored == len(files)
    assert "No case has an eligible series" in upload.message
    [case] = Case.objects.filter(study=browser.study)
    assert case.reading_series is None
    reasons = {s.description: s.eligibility for s in case.series.all()}
    assert set(reasons) == {"AX T2", "SAG T1"}
    page = browser.client.get(
        reverse("studies:upload_report", kwargs={"public_id": upload.public_id})
    )
    assert "No case has an eligible series" in page.content.decode()
    assert_temporary_files_gone(upload)


def test_an_upload_of_nothing_usable_fails_and_stores_nothing(browser):
    files = [b"not DICOM" * 50, b"%PDF-1.4\n" + b"x" * 300, no_pixel_data_bytes()]
    upload = upload_through_the_site(browser, files)
    assert upload.status == UploadStatus.FAILED
    assert "Nothing was stored: none of the 3 files is a usable MR image" in upload.message
    assert not Instance.objects.exists()
    assert not Case.objects.filter(study=browser.study).exists()
    assert upload.items.filter(status=ItemStatus.REJECTED).count() == 3
    assert_temporary_files_gone(upload)


def test_every_bad_input_in_one_upload(browser, celery_worker):
    good = phantom_case_bytes(43, 1)
    named: list[tuple[str, bytes, str]] = [
        ("non-DICOM", b"just some text" * 30, "not a DICOM file"),
        ("truncated", good[1][: good[1].index(b"PHANTOM^") + 4], "truncated"),
        ("cut in pixel data", good[2][:-7000], "pixel data is truncated"),
        ("no pixel data", no_pixel_data_bytes(), "no pixel data"),
        ("empty", b"", "the file is empty"),
        ("pdf", b"%PDF-1.7\n" + b"x" * 400, "PDF"),
    ]
    hostile_zip = zip_bytes(
        [
            ("../../etc/evil.dcm", good[3]),
            ("/abs/evil.dcm", good[4]),
            ("nested.zip", zip_bytes([("x.dcm", good[5])])),
            ("fine.dcm", good[6]),
        ],
        symlinks=["link.dcm"],
    )
    files = [data for _, data, _ in named] + [hostile_zip, bomb_zip_bytes(), good[0]]
    hostile_dir = shared_data("hostile")
    hostile_files = sorted(p for p in hostile_dir.iterdir() if p.is_file()) if hostile_dir else []
    files += [p.read_bytes() for p in hostile_files]
    upload = upload_through_the_site(browser, files)
    assert upload.status == UploadStatus.DONE, upload.message
    items = list(upload.items.order_by("position"))
    by_file = {}
    for item in items:
        by_file.setdefault(item.file_index, []).append(item)
    for index, (label, _, reason) in enumerate(named):
        [item] = by_file[index]
        assert item.status == ItemStatus.REJECTED, label
        assert reason in item.reason, (label, item.reason)
    zip_reasons = [i.reason for i in by_file[len(named)]]
    assert sum("unsafe path inside the zip" in r for r in zip_reasons) == 2
    assert any("nested archives are not opened" in r for r in zip_reasons)
    assert any("symbolic link inside the zip" in r for r in zip_reasons)
    [bomb] = by_file[len(named) + 1]
    assert "zip bomb" in bomb.reason
    for offset, _path in enumerate(hostile_files):
        [item] = by_file[len(named) + 3 + offset]
        assert item.status == ItemStatus.REJECTED
        assert item.reason
    assert upload.instances_stored == 2  # fine.dcm in the zip, and the good file
    assert upload.files_rejected == len(items) - 2
    assert celery_worker.poll() is None  # the worker survived
    assert_temporary_files_gone(upload)


def test_zip_with_too_many_entries_refuses_the_whole_upload(browser):
    files = [phantom_case_bytes(44, 1)[0], many_entries_zip_bytes(50_001)]
    upload = upload_through_the_site(browser, files)
    assert upload.status == UploadStatus.FAILED
    assert "refused and nothing was stored" in upload.message
    assert "50001 entries, more than the limit of 50000" in upload.message
    assert Instance.objects.count() == 0
    assert not upload.items.exists()
    assert_temporary_files_gone(upload)
    page = browser.client.get(
        reverse("studies:upload_report", kwargs={"public_id": upload.public_id})
    )
    assert "50001 entries" in page.content.decode()


def _log(worker) -> str:
    return Path(worker.log_path).read_text(errors="replace")


def test_broker_down_at_finish_then_back_processed_exactly_once(browser, celery_worker):
    files = list(phantom_case_bytes(45, 1))
    browser.create(files)
    browser.send(files)
    with broker_down():
        response = browser.finish()
    assert response.json()["status"] == UploadStatus.QUEUED
    upload_id = browser.upload_pk
    job = Job.objects.get(key=ingest_job_key(upload_id))
    assert job.state == Job.State.WAITING  # kept, not lost
    assert Upload.objects.get(pk=upload_id).status == UploadStatus.QUEUED
    # The broker is back: the job is sent, and its message delivered twice (as a broker that
    # redelivers would): the second copy finds the job taken and runs nothing.
    Job.objects.filter(pk=job.pk).update(due_at=job.requested_at)
    assert [j.pk for j in jobs_send([job.pk])] == [job.pk]
    job.refresh_from_db()
    header = {"vbq_job": [job.pk, job.token]}
    for _ in range(2):
        celery_app.send_task(job.work, kwargs=job.kwargs, queue=job.queue, headers=header)
    upload = wait_finished(upload_id)
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.attempts == 1
    assert upload.instances_stored == len(files) == Instance.objects.count()
    job = wait_until(
        lambda: (j := Job.objects.get(pk=job.pk)).state == Job.State.DONE and j,
        timeout=20,
        what="the ingest's job done",
    )
    assert job.runs == 1
    wait_until(
        lambda: _log(celery_worker).count(f"job {job.pk} (send {job.token}): not run") == 2,
        timeout=20,
        what="both extra copies skipped",
    )


def test_hung_broker_at_finish_then_the_dispatcher(browser):
    files = list(phantom_case_bytes(46, 1))[:4]
    browser.create(files)
    browser.send(files)
    with broker_hung():
        started = time.monotonic()
        response = browser.finish()
        elapsed = time.monotonic() - started
    assert elapsed < 6, f"finish took {elapsed:.1f} s"
    assert response.json()["status"] == UploadStatus.QUEUED
    upload_id = browser.upload_pk
    Job.objects.filter(key=ingest_job_key(upload_id)).update(due_at=timezone.now())  # due now
    call_command("dispatch")
    upload = wait_finished(upload_id)
    assert upload.status == UploadStatus.DONE
    assert Job.objects.get(key=ingest_job_key(upload_id)).attempts == 2
