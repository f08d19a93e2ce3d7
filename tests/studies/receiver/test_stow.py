"""STOW-RS into a study through the test client: the PS3.18 answers, one upload per request,
the staged files, the ingest (run here synchronously; the real worker and a real client are in
``tests/integration/test_dicom_receiver.py``), and who may store."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pydicom import Dataset

from studies.models import Case, Instance, Upload, UploadStatus
from studies.phantom.case import make_case
from studies.receiver.verdict import CANNOT_UNDERSTAND, SOP_CLASS_NOT_SUPPORTED
from studies.uploads.ingest import upload_ingest
from studies.uploads.outbox import ingest_job_key
from studies.uploads.staging import staged_files
from tests.helpers.ingestdata import dicom_bytes, phantom_case_bytes
from vbqweb.jobs import job_for_key

pytestmark = pytest.mark.django_db(transaction=True)

BOUNDARY = "stow-test-boundary"
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def multipart(parts: list[bytes], part_type: str = "application/dicom") -> bytes:
    out = b""
    for part in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def ct_bytes() -> bytes:
    ds = make_case(7, 1).datasets[0]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "CT"
    return dicom_bytes(ds)


def stow(client, study, body: bytes, content_type: str = STOW_TYPE):
    url = reverse("studies:stow", kwargs={"pk": study.pk})
    return client.post(
        url, data=body, content_type=content_type, HTTP_ACCEPT="application/dicom+json"
    )


def answer(response) -> Dataset:
    assert response["Content-Type"] == "application/dicom+json"
    return Dataset.from_json(response.json())


def test_a_case_is_stored_ingested_and_answered_200(client, world):
    client.force_login(world.manager)
    files = phantom_case_bytes(7, 1)
    response = stow(client, world.study_a, multipart(list(files)))
    assert response.status_code == 200, response.content
    ds = answer(response)
    assert len(ds.ReferencedSOPSequence) == len(files)
    assert "FailedSOPSequence" not in ds
    upload = Upload.objects.get(study=world.study_a)
    assert response["Location"].endswith(
        reverse("studies:upload_report", kwargs={"public_id": upload.public_id})
    )
    assert upload.status == UploadStatus.QUEUED
    assert upload.files_total_expected == len(files)
    assert sorted(len(f) for f in files) == sorted(s.size for s in staged_files(upload).values())
    assert job_for_key(ingest_job_key(upload.pk)) is not None  # the one outbox
    upload_ingest(upload_id=upload.pk)
    upload.refresh_from_db()
    assert upload.status == UploadStatus.DONE, upload.message
    assert Instance.objects.filter(upload=upload).count() == len(files)
    assert Case.objects.filter(study=world.study_a).count() == 1
    sources = {item.ReferencedSOPInstanceUID for item in ds.ReferencedSOPSequence}
    stored = set(Instance.objects.values_list("sop_instance_uid", flat=True))
    assert not sources & stored  # de-identified: new UIDs
    assert all(uid.startswith("2.25.") for uid in stored)


def test_some_refused_is_202_with_their_reasons(client, world):
    client.force_login(world.manager)
    good = phantom_case_bytes(7, 2)[0]
    truncated = phantom_case_bytes(7, 2)[1][:5000]
    response = stow(client, world.study_a, multipart([good, ct_bytes(), truncated]))
    assert response.status_code == 202, response.content
    ds = answer(response)
    assert len(ds.ReferencedSOPSequence) == 1
    reasons = sorted(item.FailureReason for item in ds.FailedSOPSequence)
    assert reasons == sorted([SOP_CLASS_NOT_SUPPORTED, CANNOT_UNDERSTAND])
    upload = Upload.objects.get(study=world.study_a)
    assert len(staged_files(upload)) == 1  # nothing of the refused ones
    assert "2 refused at receipt" in upload.name


def test_none_taken_is_409_and_a_failed_upload_that_says_why(client, world):
    client.force_login(world.manager)
    response = stow(client, world.study_a, multipart([ct_bytes()]))
    assert response.status_code == 409
    assert answer(response).FailedSOPSequence[0].FailureReason == SOP_CLASS_NOT_SUPPORTED
    upload = Upload.objects.get(study=world.study_a)
    assert upload.status == UploadStatus.FAILED
    assert "MR images only" in upload.items.get().reason
    assert not staged_files(upload)
    assert not Instance.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/dicom", 415),
        (f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}', 415),
        ("multipart/related; type=application/dicom", 400),  # no boundary
    ],
)
def test_what_is_not_a_stow_request_is_refused_before_it_is_read(
    client, world, content_type, status
):
    client.force_login(world.manager)
    response = stow(client, world.study_a, multipart([phantom_case_bytes(7, 1)[0]]), content_type)
    assert response.status_code == status
    assert not Upload.objects.exists()


def test_a_malformed_body_keeps_nothing(client, world):
    client.force_login(world.manager)
    body = multipart([phantom_case_bytes(7, 1)[0]]).removesuffix(f"--{BOUNDARY}--\r\n".encode())
    body += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nno end".encode()
    response = stow(client, world.study_a, body)
    assert response.status_code == 400
    upload = Upload.objects.get()
    assert upload.status == UploadStatus.CANCELLED
    assert not staged_files(upload)


@pytest.mark.parametrize(
    ("role", "status"), [("reader", 403), ("manager_b", 404), ("outsider", 404)]
)
def test_only_the_studys_managers_store(client, world, role, status):
    client.force_login(getattr(world, role))
    response = stow(client, world.study_a, multipart([phantom_case_bytes(7, 1)[0]]))
    assert response.status_code == status
    assert not Upload.objects.exists()


def test_signed_out_script_gets_401(client, world):
    response = stow(client, world.study_a, multipart([phantom_case_bytes(7, 1)[0]]))
    assert response.status_code == 401
