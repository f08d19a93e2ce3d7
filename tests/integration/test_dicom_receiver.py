"""Cases received from a PACS, by senders nobody here wrote, ingested by a real worker.

dcmtk's ``storescu`` and Debian's Orthanc (told by its REST API to send a study to a modality,
as a PACS operator would) send a phantom case to ``manage.py dicom_receiver`` in its own
process, under the study's called AE title; the worker (real Celery on real Redis) ingests it:
the case appears de-identified with its upload report. Bad senders are refused with a reason
and nothing of theirs is stored: a wrong AE title (A-ASSOCIATE-RJ), a CT instance, and
truncated files (one cut before its pixel data, sent by storescu; one cut inside them, which
storescu would not send, sent byte for byte by pynetdicom). STOW-RS is driven by dicomweb-client
against the live server, as the study's manager, and refused for a reader; and against gunicorn
with a body over 1 MB, which dicomweb-client sends chunked (no Content-Length).
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from django.urls import reverse
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage  # type: ignore[attr-defined]

from studies.models import Case, Instance, Upload, UploadStatus
from studies.phantom.case import make_case
from studies.uploads.staging import staged_files, staging_entries
from tests.helpers.dicomnet import ReceiverProcess, free_port, orthanc
from tests.helpers.ingestdata import dicom_bytes, phantom_case_bytes
from tests.helpers.phi import assert_clean, phi_dataset
from tests.helpers.workers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FINISHED = (UploadStatus.DONE, UploadStatus.FAILED, UploadStatus.CANCELLED)


@pytest.fixture(scope="module")
def receiver(celery_processes, tmp_path_factory):
    process = ReceiverProcess(
        celery_processes.env, tmp_path_factory.mktemp("receiver") / "receiver.log"
    ).start()
    try:
        yield process
    finally:
        process.stop()


def write(folder: Path, files: list[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, data in enumerate(files):
        path = folder / f"IM{k:04d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def storescu(port: int, called: str, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    # --no-halt: go on after a refused instance, as a PACS sending a study does
    argv = ["storescu", "-v", "--no-halt", "-aet", "STORESCU", "-aec", called]
    argv += ["127.0.0.1", str(port)]
    return subprocess.run(
        [*argv, *map(str, paths)], capture_output=True, text=True, timeout=120, check=False
    )


def finished_upload(study, timeout: float = 120) -> Upload:
    def done() -> Upload | None:
        upload = Upload.objects.filter(study=study).first()
        return upload if upload is not None and upload.status in FINISHED else None

    return wait_until(done, timeout=timeout, what="the received upload finished")


def source_identifiers(files: list[bytes]) -> set[str]:
    """What of the sources must not survive: names, ids and every original UID."""
    out: set[str] = set()
    for data in files:
        ds = dcmread(io.BytesIO(data))
        out |= {str(ds.PatientName), str(ds.PatientID), ds.StudyInstanceUID}
        out |= {ds.SeriesInstanceUID, ds.SOPInstanceUID}
    return {value for value in out if value}


def assert_de_identified(upload: Upload, files: list[bytes]) -> None:
    instances = Instance.objects.filter(upload=upload)
    assert instances.count() == len(files)
    needles = source_identifiers(files)
    for instance in instances:
        assert instance.sop_instance_uid.startswith("2.25.")
        with instance.file.open("rb") as handle:
            stored = handle.read()
        assert_clean(stored, f"instance {instance.pk}")
        for needle in needles:
            assert needle.encode() not in stored, needle


def assert_report(client, world, upload: Upload) -> None:
    client.force_login(world.manager)
    url = reverse("studies:upload_report", kwargs={"public_id": upload.public_id})
    response = client.get(url)
    assert response.status_code == 200
    assert upload.message in response.content.decode()
    listing = client.get(reverse("studies:uploads", kwargs={"pk": upload.study_id}))
    assert upload.name in listing.content.decode()


def ct_bytes() -> bytes:
    ds = make_case(31, 1).datasets[0]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "CT"
    return dicom_bytes(ds)


def test_storescu_sends_a_phantom_case(client, world, receiver, celery_worker, tmp_path):
    files = [*phantom_case_bytes(31, 1), dicom_bytes(phi_dataset())]
    result = storescu(receiver.port, world.study_a.ae_title, write(tmp_path, files))
    assert result.returncode == 0, result.stderr
    upload = finished_upload(world.study_a)
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.name.startswith("DICOM from STORESCU")
    assert_de_identified(upload, files)
    assert Case.objects.filter(study=world.study_a).count() == 2  # the phantom, the PHI patient
    assert_report(client, world, upload)
    wait_until(lambda: str(upload.pk) not in staging_entries(), timeout=30, what="staging emptied")


def test_orthanc_sends_a_case_through_its_rest_api(
    client, world, receiver, celery_worker, tmp_path
):
    files = list(phantom_case_bytes(31, 2))
    with orthanc(tmp_path, called_aet=world.study_a.ae_title, receiver_port=receiver.port) as pacs:
        stored = [pacs.request("POST", "/instances", data) for data in files]
        study = stored[0]["ParentStudy"]  # type: ignore[index]
        job = pacs.request(
            "POST",
            "/modalities/vbq/store",
            f'{{"Resources": ["{study}"], "Synchronous": true}}'.encode(),
        )
        assert job is not None
    upload = finished_upload(world.study_a)
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.name.startswith("DICOM from TESTPACS")
    assert_de_identified(upload, files)
    assert_report(client, world, upload)


def test_a_wrong_called_ae_title_is_rejected(world, receiver, tmp_path):
    paths = write(tmp_path, [phantom_case_bytes(31, 1)[0]])
    result = storescu(receiver.port, "NOT-A-STUDY", paths)
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stdout + result.stderr
    time.sleep(1)  # nothing can be waited for: prove nothing arrived a moment later
    assert not Upload.objects.exists()


def test_non_mr_and_truncated_instances_are_refused_with_reasons(
    world, receiver, celery_worker, tmp_path
):
    phantom = phantom_case_bytes(31, 3)
    cut_before_pixels = phantom[1][: phantom[1].rfind(b"\xe0\x7f\x10\x00")]
    result = storescu(
        receiver.port, world.study_a.ae_title, write(tmp_path, [ct_bytes(), cut_before_pixels])
    )
    output = result.stdout + result.stderr
    assert "Refused: SOPClassNotSupported" in output
    assert "Error: CannotUnderstand" in output
    upload = finished_upload(world.study_a)
    assert upload.status == UploadStatus.FAILED
    reasons = list(upload.items.values_list("reason", flat=True))
    assert "MR images only" in reasons[0]
    assert "pixel data" in reasons[1]
    assert not staged_files(upload)
    Upload.objects.all().delete()

    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(phantom[2][: len(phantom[2]) // 2])
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", receiver.port, ae_title=world.study_a.ae_title)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(truncated)  # the file's bytes as they are, unparsed
    finally:
        assoc.release()
    assert status.Status == 0xC000
    assert "truncated" in status.ErrorComment
    upload = finished_upload(world.study_a)
    assert "truncated" in upload.items.get().reason
    assert not Instance.objects.exists()
    assert not Case.objects.exists()
    assert not staged_files(upload)


def _dicomweb(live_server, client, user, study) -> DICOMwebClient:
    client.force_login(user)
    session = requests.Session()
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    base = f"{live_server.url}/studies/{study.pk}/dicomweb"
    return DICOMwebClient(url=base, session=session, chunk_size=1 << 30)


def test_stow_rs_with_dicomweb_client(client, world, live_server, celery_worker):
    files = list(phantom_case_bytes(31, 4))
    datasets = [dcmread(io.BytesIO(data)) for data in files]
    web = _dicomweb(live_server, client, world.manager, world.study_a)
    answer = web.store_instances(datasets)
    assert len(answer.ReferencedSOPSequence) == len(files)
    assert "FailedSOPSequence" not in answer
    upload = finished_upload(world.study_a)
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.name.startswith("STOW-RS from manager")
    assert_de_identified(upload, files)

    refused = _dicomweb(live_server, client, world.reader, world.study_a)
    with pytest.raises(requests.HTTPError) as error:
        refused.store_instances(datasets[:1])
    assert error.value.response.status_code == 403
    assert Upload.objects.count() == 1


@pytest.fixture
def gunicorn(celery_processes, tmp_path):
    """The site in gunicorn on the test database, as served: a chunked body ends there."""
    port = free_port()
    env = {
        **celery_processes.env,
        "VBQ_UPLOAD_ROOT": str(settings.VBQ_UPLOAD_ROOT),
        "VBQ_BIND": f"127.0.0.1:{port}",
        "VBQ_WEB_WORKERS": "1",
        "VBQ_WEB_THREADS": "2",
        "VBQ_MFA_REQUIRED": "0",  # the test signs the manager in with force_login
    }
    with open(tmp_path / "gunicorn.log", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "vbqweb/gunicorn_conf.py"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(up, timeout=90, what=f"gunicorn up (log: {tmp_path / 'gunicorn.log'})")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_stow_rs_chunked_body_under_gunicorn(client, world, gunicorn, celery_worker):
    """dicomweb-client sends a body over 1 MB with chunked transfer encoding (no length)."""
    files = list(phantom_case_bytes(31, 5))
    assert sum(map(len, files)) > 1 << 20
    client.force_login(world.manager)
    session = requests.Session()
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    session.cookies.set(settings.SESSION_COOKIE_NAME, cookie)
    web = DICOMwebClient(url=f"{gunicorn}/studies/{world.study_a.pk}/dicomweb", session=session)
    answer = web.store_instances([dcmread(io.BytesIO(data)) for data in files])
    assert len(answer.ReferencedSOPSequence) == len(files)
    upload = finished_upload(world.study_a)
    assert upload.status == UploadStatus.DONE, upload.message
    assert_de_identified(upload, files)
