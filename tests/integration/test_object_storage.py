"""With ``VBQ_STORAGE=s3`` the site keeps every byte in a real S3 server, and survives its outage.

Real processes only: SeaweedFS (``tests/helpers/s3.py``), Redis, Celery beat and a Celery worker
started with the S3 settings. The test process is the web side: it serves the chunked upload,
DICOMweb, the reading's saves and the report through Django's test client, with the same S3
settings. Web and worker are each given empty ``MEDIA_ROOT`` and ``VBQ_UPLOAD_ROOT`` folders of
their own (and the worker a temporary folder of its own): they share nothing but the database,
Redis and the bucket, and the folders are still empty at the end.

The outage: SeaweedFS is stopped while an upload is queued; the worker picks the ingest up, finds
the store unreachable, and puts the upload back in the queue, with a message, again and again
without using up its attempts; once SeaweedFS is back the upload is ingested, once. And
DICOMweb, with no store listening at all, answers 503 with ``Retry-After``, not 500.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.urls import reverse
from pypdf import PdfReader

from readers.measurement.rois import remap_uids
from readers.models import Reading, StudyAnalysis, VbqResult
from studies.models import Case, Instance, Upload, UploadStatus
from studies.phantom.case import make_case
from studies.phantom.writer import write_phantom
from studies.uploads.config import deid_uid
from studies.uploads.ingest import WAITING_FOR_STORAGE
from studies.uploads.outbox import ingest_job_key
from studies.uploads.staging import staging_exists
from tests.helpers.factories import case_set_import_trusted_files
from tests.helpers.ingestdata import dicom_bytes, phantom_case_bytes
from tests.helpers.readings import wait_scored
from tests.helpers.s3 import SeaweedS3, seaweed, site_storages  # noqa: F401 (fixture)
from tests.helpers.uploads import Browser
from tests.helpers.workers import CeleryWorker, Processes, wait_until
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHUNK = 64 * 1024  # small chunks: the phantom's files travel as several pieces each


@dataclass
class S3Site:
    server: SeaweedS3
    worker: CeleryWorker
    local: dict[str, Path]
    """The folders web and worker would write to on local disk: they must stay empty."""

    def local_files(self) -> dict[str, list[str]]:
        """What was written to the local folders (none expected), by folder."""
        found = {
            name: sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
            for name, folder in self.local.items()
            if name != "worker temp"
        }
        return {name: files for name, files in found.items() if files}

    def worker_leftovers(self) -> list[str]:
        """The ingest's temporary copies the worker has not deleted."""
        return sorted(p.name for p in self.local["worker temp"].glob("vbq-ingest-*"))


@pytest.fixture
def s3_site(
    seaweed: SeaweedS3,  # noqa: F811
    settings,
    tmp_path: Path,
    celery_processes: Processes,
    celery_worker: CeleryWorker,
    celery_beat,
) -> Iterator[S3Site]:
    local = {
        name: tmp_path / name.replace(" ", "-")
        for name in ("web media", "web uploads", "worker media", "worker uploads", "worker temp")
    }
    for folder in local.values():
        folder.mkdir()
    settings.STORAGES = site_storages(seaweed.environ())
    settings.MEDIA_ROOT = str(local["web media"])
    settings.VBQ_UPLOAD_ROOT = local["web uploads"]
    settings.VBQ_UPLOAD_CHUNK_BYTES = CHUNK
    celery_worker.stop()  # the session's worker has local storage: it rests meanwhile
    worker = celery_processes.worker(
        "s3",
        **seaweed.environ(),
        VBQ_MEDIA_ROOT=str(local["worker media"]),
        VBQ_UPLOAD_ROOT=str(local["worker uploads"]),
        VBQ_STORAGE_RETRY_AFTER="2",
        TMPDIR=str(local["worker temp"]),
    )
    try:
        yield S3Site(seaweed, worker.start(), local)
    finally:
        worker.stop()
        if not seaweed.answering():
            seaweed.start()
        celery_worker.start()


def _phantom(seed: int) -> tuple[list[bytes], dict]:
    """A phantom case's files and its truth ROIs, remapped to the UIDs the ingest gives them."""
    case = make_case(seed, 1)
    return [dicom_bytes(ds) for ds in case.datasets], remap_uids(case.truth["rois"], deid_uid)


def _finished(upload_id: int) -> Upload | None:
    upload = Upload.objects.get(pk=upload_id)
    return upload if upload.is_finished else None


def test_ingest_read_score_report_with_everything_in_s3(client, world, s3_site: S3Site) -> None:
    server = s3_site.server
    files, rois = _phantom(81)
    client.force_login(world.manager)
    browser = Browser(client, world.study_a)
    browser.create(files, name="In the bucket")
    upload_id = browser.upload_pk
    first = next(browser.chunks(files, {}, CHUNK, 100))
    assert browser.post_chunk(first).status_code == 200
    assert server.keys(f"staging/{upload_id}/"), "the first chunk is not in the bucket"
    browser.send(files, chunk_bytes=CHUNK)  # resumes from the server's state, as after a reload
    assert browser.status()["transfer"] == {"complete": [[0, len(files) - 1]], "partial": {}}
    assert browser.finish().status_code == 200

    upload = wait_until(lambda: _finished(upload_id), timeout=120, what="the ingest")
    assert upload.status == UploadStatus.DONE, upload.message
    instances = list(Instance.objects.filter(upload=upload))
    assert len(instances) == len(files) == upload.instances_stored
    in_bucket = set(server.keys("media/"))
    assert {f"media/{i.file.name}" for i in instances} <= in_bucket
    wait_until(lambda: not server.keys(f"staging/{upload_id}/"), timeout=30, what="staging gone")
    assert not staging_exists(upload)

    # Read: the series through the access-checked DICOMweb view, as the viewer does.
    case = Case.objects.get(pk=upload.items.exclude(case=None).values("case").first()["case"])
    series = case.reading_series
    assert series is not None, "the phantom's series is eligible"
    client.force_login(world.reader)
    uids = {"study_uid": case.study_instance_uid, "series_uid": series.series_instance_uid}
    metadata = client.get(reverse("dicomweb:series_metadata", kwargs=uids))
    assert metadata.status_code == 200
    assert len(json.loads(metadata.content)) == len(files)
    sop = instances[0].sop_instance_uid
    frame = client.get(
        reverse("dicomweb:frames", kwargs={**uids, "sop_uid": sop, "frame_list": "1"}),
        headers={"Accept": 'multipart/related; type="application/octet-stream"'},
    )
    assert frame.status_code == 200
    assert len(frame.content) >= instances[0].rows * instances[0].columns * 2
    whole = client.get(reverse("dicomweb:instance", kwargs={**uids, "sop_uid": sop}))
    assert whole.status_code == 200
    body = b"".join(whole.streaming_content) if whole.streaming else whole.content
    assert body[128:132] == b"DICM"

    # Two readers save, the worker scores from the bucket, they submit.
    readings = {}
    for reader in (world.reader, world.other_reader):
        client.force_login(reader)
        url = client.post(reverse("readers:open", kwargs={"case_pk": case.pk, "session": 1})).url
        assert client.post(url, {"rois": json.dumps(rois)}).status_code in (200, 302)
        readings[url] = Reading.objects.get(reader=reader, case=case)
    for url, reading in readings.items():
        result = wait_scored(reading, timeout=90)
        assert result.status == VbqResult.Status.OK, result.message
        client.force_login(reading.reader)
        assert client.post(url.rstrip("/") + "/submit/").status_code in (200, 302)
        reading.refresh_from_db()
        assert reading.status == Reading.Status.SUBMITTED

    # The report, as a PDF, for the manager, once the worker has computed the agreement.
    wait_until(
        lambda: (a := StudyAnalysis.objects.filter(study=world.study_a).first()) and a.analysis,
        timeout=90,
        what="the agreement computed",
    )
    # The worker then builds the report's files (issue 13 item 8), into S3 too; until then the
    # URL answers "preparing…".
    client.force_login(world.manager)
    url = reverse("analytics:report_pdf", kwargs={"pk": world.study_a.pk})
    pdf = wait_until(
        lambda: (r := client.get(url))["Content-Type"] == "application/pdf" and r,
        timeout=120,
        what="the PDF built by the worker",
    )
    assert pdf.status_code == 200
    assert len(PdfReader(io.BytesIO(b"".join(pdf.streaming_content))).pages) >= 1
    assert s3_site.server.keys(f"media/generated/study-{world.study_a.pk}/")

    assert s3_site.local_files() == {}
    assert s3_site.worker_leftovers() == []


def test_s3_down_during_ingest_the_upload_waits_queued_and_completes_when_it_returns(
    client, world, s3_site: S3Site
) -> None:
    server, worker = s3_site.server, s3_site.worker
    files, _ = _phantom(82)
    client.force_login(world.manager)
    browser = Browser(client, world.study_a)
    browser.create(files, name="Through an outage")
    browser.send(files, chunk_bytes=CHUNK)
    upload_id = browser.upload_pk
    worker.stop()  # the upload is queued while the store goes down
    assert browser.finish().json()["status"] == UploadStatus.QUEUED
    server.stop()
    worker.start()

    def waited(times: int) -> bool:
        return worker.log().count("the file store cannot be reached") >= times

    # More times than an ingest's attempts (2) and its job's runs (3): an outage uses up neither.
    wait_until(lambda: waited(4), timeout=120, what="the worker waiting for the store, 4 times")
    status = browser.status()
    assert status["status"] == UploadStatus.QUEUED
    assert status["message"] == WAITING_FOR_STORAGE
    upload = Upload.objects.get(pk=upload_id)
    assert upload.attempts == 0
    assert not Instance.objects.filter(upload=upload).exists()
    assert Job.objects.get(key=ingest_job_key(upload_id)).state != Job.State.FAILED

    server.start()
    upload = wait_until(lambda: _finished(upload_id), timeout=90, what="the ingest after")
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.attempts == 1
    assert upload.instances_stored == len(files) == Instance.objects.filter(upload=upload).count()
    assert Case.objects.filter(study=world.study_a).count() == 1
    assert {f"media/{n}" for n in Instance.objects.values_list("file", flat=True)} <= set(
        server.keys("media/")
    )
    wait_until(lambda: not staging_exists(upload), timeout=30, what="staging gone")
    job = wait_until(
        lambda: (j := Job.objects.get(key=ingest_job_key(upload_id))).state == Job.State.DONE and j,
        timeout=30,
        what="the job done",
    )
    assert job.runs == 1  # the outage's runs were not counted
    assert s3_site.local_files() == {}
    assert s3_site.worker_leftovers() == []


def test_dicomweb_answers_503_while_the_store_cannot_be_reached(
    client, world, settings, tmp_path: Path
) -> None:
    """An outage is not a broken image: the viewer gets a 503 it may retry, not a 500."""
    [folder] = write_phantom(tmp_path / "p", cases=1, seed=83)
    case_set_import_trusted_files(
        study=world.study_a, name="p", cases=[("Case 1", list(folder.glob("*.dcm")))]
    )
    case = Case.objects.get(study=world.study_a)
    series = case.reading_series
    sop = series.instances.order_by("instance_number").first().sop_instance_uid
    with socket.socket() as s:  # a port nothing listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    environ = {**SeaweedS3.unstarted_environ(), "VBQ_S3_ENDPOINT_URL": f"http://127.0.0.1:{closed}"}
    settings.STORAGES = site_storages(environ)
    client.force_login(world.reader)
    uids = {"study_uid": case.study_instance_uid, "series_uid": series.series_instance_uid}
    for url in (
        reverse("dicomweb:series_metadata", kwargs=uids),
        reverse("dicomweb:frames", kwargs={**uids, "sop_uid": sop, "frame_list": "1"}),
        reverse("dicomweb:instance", kwargs={**uids, "sop_uid": sop}),
    ):
        response = client.get(url)
        assert response.status_code == 503, url
        assert response["Retry-After"] == "5"
        assert "Cache-Control" in response
        assert "immutable" not in response["Cache-Control"]


def test_an_upload_answers_503_while_the_store_cannot_be_reached(
    world, settings, tmp_path: Path
) -> None:
    """The upload page retries a 5xx: what it sends during an outage (the announcement, a
    chunk) gets a 503 that says the store is away (vbqweb.faults), not a 500."""
    from django.test import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    environ = {**SeaweedS3.unstarted_environ(), "VBQ_S3_ENDPOINT_URL": f"http://127.0.0.1:{closed}"}
    client = Client(raise_request_exception=False)  # as the browser sees it
    client.force_login(world.manager)
    browser = Browser(client, world.study_a)
    data = phantom_case_bytes(seed=5, index=1)[0]
    browser.create([data])  # the store is there when the upload is announced ...
    settings.STORAGES = site_storages(environ)  # ... and gone when its chunk arrives
    for response in (
        browser.post_chunk([(0, 0, data, len(data))]),
        client.post(
            reverse("studies:upload_create", kwargs={"pk": world.study_a.pk}),
            data=json.dumps({"name": "Again", "files": 1, "bytes": len(data)}),
            content_type="application/json",
        ),
    ):
        assert response.status_code == 503, response.content
        assert response.json()["error"] == "storage_unavailable"
        assert response["Retry-After"] == "5"
    assert Upload.objects.get(study=world.study_a, name="Batch").status == UploadStatus.RECEIVING
