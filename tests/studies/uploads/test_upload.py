"""The upload's transfer protocol and outbox, through the views (no worker needed here).

Chunks of many small files and pieces of large ones, resume after a disconnect, the limits,
cancel, the page after a reload, and a broker that is down or hung when the upload finishes.
The real worker runs the same uploads in ``tests/integration/test_ingest_worker.py``.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from studies.models import Case, Instance, Upload, UploadStatus
from studies.uploads import transfer
from studies.uploads.housekeeping import uploads_tidy
from studies.uploads.ingest import upload_ingest
from studies.uploads.outbox import ingest_job_key
from studies.uploads.staging import staging_exists, staging_storage
from studies.uploads.transfer import Piece, upload_receive_chunk
from tests.helpers.brokers import broker_down, broker_hung
from tests.helpers.phi import phi_dataset
from tests.helpers.uploads import Browser
from vbqweb.jobs import SEND_TIMEOUT
from vbqweb.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def small_files(n: int, *, series: int = 1) -> list[bytes]:
    """``n`` tiny MR instances of one patient (distinct SOP UIDs, positions along x)."""
    out = []
    for index in range(1, n + 1):
        buffer = io.BytesIO()
        phi_dataset(index=index, series=series).save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


@pytest.fixture
def browser(client, world) -> Browser:
    client.force_login(world.manager)
    return Browser(client, world.study_a)


def test_many_files_travel_in_batches_under_djangos_limits(browser, settings):
    """130 files (> DATA_UPLOAD_MAX_NUMBER_FILES) in chunks of at most 50 pieces / 64 kB."""
    files = small_files(130)
    settings.VBQ_UPLOAD_CHUNK_BYTES = 64 * 1024
    settings.VBQ_UPLOAD_CHUNK_PIECES = 50
    assert len(files) > settings.DATA_UPLOAD_MAX_NUMBER_FILES
    browser.create(files)
    n_chunks = browser.send(files, chunk_bytes=64 * 1024, max_pieces=50)
    assert n_chunks >= 3
    status = browser.status()
    assert (status["files_received"], status["bytes_received"]) == (130, sum(map(len, files)))
    assert status["transfer"] == {"complete": [[0, 129]], "partial": {}}
    upload = Upload.objects.get(public_id=status["id"])
    names = staging_storage().listdir(str(upload.pk))[1]
    assert len(names) >= 130  # a file cut between two chunks is two pieces
    assert all(re.fullmatch(r"\d{6}-\d+-\d{15}-\d+\.part", name) for name in names)
    with broker_down():
        assert browser.finish().status_code == 200
    assert upload_ingest(upload_id=upload.pk) == UploadStatus.DONE
    upload.refresh_from_db()
    assert upload.instances_stored == 130
    assert sorted(upload.items.values_list("file_index", flat=True)) == list(range(130))
    assert not staging_exists(upload)


def test_a_large_file_is_cut_into_chunks_and_resumes_after_a_disconnect(browser, settings):
    files = small_files(3)
    big = files[1]
    browser.create(files)
    upload = Upload.objects.get(public_id=browser.payload["id"])
    # The connection breaks in the middle of file 1: the server keeps what arrived.
    half = len(big) // 2
    upload_receive_chunk(
        upload=upload,
        pieces=[Piece(0, 0, len(files[0]), len(files[0])), Piece(1, 0, len(big), len(big))],
        stream=io.BytesIO(files[0] + big[:half]),
    )
    state = browser.status()["transfer"]
    assert state == {"complete": [[0, 0]], "partial": {"1": half}}
    # A piece that skips ahead is refused with where to resume.
    response = browser.post_chunk([(1, half + 10, big[half + 10 :], len(big))])
    assert response.status_code == 409
    assert response.json()["state"]["have"] == half
    # A file of another size under the same index: restart cleanly.
    response = browser.post_chunk([(1, half, b"x", half + 1)])
    assert response.status_code == 409
    assert "differs" in response.json()["error"]
    # Resuming from the server's state completes it (in 1 kB chunks).
    browser.send(files, chunk_bytes=1024)
    assert browser.status()["files_received"] == 3
    # A retried piece of a complete file changes nothing.
    assert browser.post_chunk([(0, 0, files[0], len(files[0]))]).status_code == 200
    assert browser.status()["bytes_received"] == sum(map(len, files))


def test_a_retried_piece_rewrites_from_its_offset(browser):
    files = small_files(1)
    browser.create(files)
    data = files[0]
    assert browser.post_chunk([(0, 0, data[:100], len(data))]).status_code == 200
    assert browser.post_chunk([(0, 0, data[:100], len(data))]).status_code == 200  # again
    assert browser.status()["bytes_received"] == 100
    assert browser.post_chunk([(0, 100, data[100:], len(data))]).status_code == 200
    assert browser.status()["transfer"]["complete"] == [[0, 0]]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("too_big", "A chunk is at most"),
        ("too_many_pieces", "pieces of files"),
        ("length_mismatch", "do not add up"),
        ("not_announced", "was not announced"),
        ("past_end", "runs past the file's size"),
        ("no_header", "Bad X-Upload-Pieces"),
        ("more_than_announced", "More bytes were sent"),
    ],
)
def test_malformed_chunks_are_refused(browser, settings, case, message):
    settings.VBQ_UPLOAD_CHUNK_BYTES = 1000
    settings.VBQ_UPLOAD_CHUNK_PIECES = 3
    browser.create([b"a" * 10, b"b" * 10])
    url = browser.payload["urls"]["chunk"]
    body, header = b"a" * 10, "0:0:10:10"
    if case == "too_big":
        body, header = b"a" * 1001, "0:0:1001:2000"
    elif case == "too_many_pieces":
        body, header = b"abcd", "0:0:1:10,1:0:1:10,2:0:1:10,3:0:1:10"
    elif case == "length_mismatch":
        header = "0:0:9:10"
    elif case == "not_announced":
        header = "5:0:10:10"
    elif case == "past_end":
        header = "0:5:10:10"
    elif case == "no_header":
        header = ""
    elif case == "more_than_announced":
        body, header = b"a" * 30, "0:0:30:30"
    response = browser.client.post(
        url, data=body, content_type="application/octet-stream", headers={"X-Upload-Pieces": header}
    )
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_announcements_are_checked(browser, settings):
    url = reverse("studies:upload_create", kwargs={"pk": browser.study.pk})

    def announce(files: int, size: int):
        return browser.client.post(
            url, data=json.dumps({"files": files, "bytes": size}), content_type="application/json"
        )

    response = announce(0, 0)
    assert response.status_code == 400
    assert "The upload is empty" in response.json()["error"]
    settings.VBQ_INGEST_LIMITS = {"max_files": 10, "max_total_bytes": 1000}
    assert "more than the limit of 10" in announce(11, 10).json()["error"]
    assert "per upload" in announce(2, 5000).json()["error"]
    assert browser.client.post(url, data="{", content_type="application/json").status_code == 400
    assert not Upload.objects.exists()


def test_finish_needs_every_file(browser):
    files = small_files(2)
    browser.create(files)
    browser.post_chunk([(0, 0, files[0], len(files[0]))])
    response = browser.finish()
    assert response.status_code == 409
    assert "1 of 2 files have arrived" in response.json()["error"]
    assert response.json()["state"]["complete"] == [[0, 0]]


def test_cancel_deletes_the_temporary_files(browser):
    files = small_files(2)
    browser.create(files)
    browser.post_chunk([(0, 0, files[0], len(files[0]))])
    upload = Upload.objects.get(public_id=browser.payload["id"])
    assert staging_exists(upload)
    response = browser.client.post(
        browser.payload["urls"]["cancel"], headers={"Accept": "application/json"}
    )
    assert response.json()["status"] == UploadStatus.CANCELLED
    assert not staging_exists(upload)
    after = browser.post_chunk([(1, 0, files[1], len(files[1]))])
    assert after.status_code == 409
    assert not staging_exists(upload)
    # The plain form (no script) redirects back to the upload page.
    response = browser.client.post(browser.payload["urls"]["cancel"])
    assert response.status_code == 302


def test_a_chunk_arriving_while_the_files_are_deleted_cannot_keep_any(browser, monkeypatch):
    """A chunk request that comes in while a cancel deletes the staged files finds the upload
    cancelled (the cancel committed under the upload's row lock before deleting) and stores
    nothing, so nothing is left behind. (A lock file in the upload's folder used to re-create
    the folder being deleted.)"""
    files = small_files(2)
    browser.create(files)
    browser.post_chunk([(0, 0, files[0], len(files[0]))])
    upload = Upload.objects.get(public_id=browser.payload["id"])
    late: list[int] = []
    real_remove = transfer.staging_remove

    def remove_with_a_late_chunk(upload):
        late.append(browser.post_chunk([(1, 0, files[1], len(files[1]))]).status_code)
        return real_remove(upload)

    monkeypatch.setattr(transfer, "staging_remove", remove_with_a_late_chunk)
    response = browser.client.post(
        browser.payload["urls"]["cancel"], headers={"Accept": "application/json"}
    )
    assert response.json()["status"] == UploadStatus.CANCELLED
    assert late == [409]
    assert not staging_exists(upload)


def test_broker_down_the_upload_is_kept_queued_and_the_page_says_so(browser):
    files = small_files(2)
    browser.create(files)
    browser.send(files)
    with broker_down():
        started = time.monotonic()
        response = browser.finish()
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        # A refused connection fails at once; the margin is for a loaded 2-core CI machine.
        assert elapsed < 5, f"finish took {elapsed:.1f} s"
        payload = response.json()
        assert payload["status"] == UploadStatus.QUEUED
        assert payload["waiting_for_worker"] is True
        assert payload["sent_to_worker"] is False
        assert "could not be reached" in payload["dispatch_error"]
        # Polling does not hammer the broker: sending is the outbox dispatcher's.
        browser.status()
        upload = Upload.objects.get(public_id=payload["id"])
        job = Job.objects.get(key=ingest_job_key(upload.pk))
        assert (job.state, job.attempts) == (Job.State.WAITING, 1)
        page = browser.client.get(reverse("studies:uploads", kwargs={"pk": browser.study.pk}))
        report = browser.client.get(payload["urls"]["report"])
    assert '"status": "queued"' in page.content.decode()  # the script resumes from this
    assert "Waiting for the worker" in report.content.decode()
    assert staging_exists(upload)  # the files wait for the worker


@pytest.mark.integration
def test_hung_broker_the_finish_request_still_answers_within_seconds(browser, settings):
    files = small_files(1)
    browser.create(files)
    browser.send(files)
    with broker_hung():
        started = time.monotonic()
        response = browser.finish()
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    # Bounded by the outbox's send timeout (1 s), not by the broker: a few seconds of margin
    # for a loaded CI machine, far from the "indefinitely" of an unbounded .delay().
    assert elapsed < SEND_TIMEOUT + 5, f"finish took {elapsed:.1f} s"
    assert response.json()["status"] == UploadStatus.QUEUED
    assert "could not be reached" in response.json()["dispatch_error"]
    job = Job.objects.get(key=ingest_job_key(browser.upload_pk))
    assert (job.state, job.sends) == (Job.State.WAITING, 0)


def test_the_task_runs_once_however_often_it_is_delivered(browser):
    files = small_files(3)
    browser.create(files)
    browser.send(files)
    with broker_down():
        browser.finish()
    upload_id = browser.upload_pk
    assert upload_ingest(upload_id=upload_id) == UploadStatus.DONE
    assert upload_ingest(upload_id=upload_id) == "not claimed"
    upload = Upload.objects.get(pk=upload_id)
    assert upload.attempts == 1
    assert Instance.objects.count() == 3
    assert Case.objects.count() == 1


def test_page_after_a_reload_shows_the_interrupted_upload(browser):
    files = small_files(2)
    browser.create(files, name="Interrupted batch")
    browser.post_chunk([(0, 0, files[0], len(files[0]))])
    page = browser.client.get(reverse("studies:uploads", kwargs={"pk": browser.study.pk}))
    html = page.content.decode()
    assert "Interrupted batch" in html
    payload = json.loads(re.search(r'id="current-upload"[^>]*>(.*?)</script>', html).group(1))
    assert payload["status"] == "receiving"
    assert payload["transfer"]["complete"] == [[0, 0]]


def test_upload_page_and_report_render(browser):
    files = small_files(2)
    browser.create(files, name="Rendered")
    browser.send(files)
    with broker_down():
        browser.finish()
    upload_ingest(upload_id=browser.upload_pk)
    page = browser.client.get(reverse("studies:uploads", kwargs={"pk": browser.study.pk}))
    assert page.status_code == 200
    assert "Last upload: Rendered" in page.content.decode()
    report = browser.client.get(browser.payload["urls"]["report"])
    html = report.content.decode()
    assert "Case 001" in html
    assert "2 files stored" in html
    partial = browser.client.get(browser.payload["urls"]["report"] + "?partial=1")
    assert "<html" not in partial.content.decode()


def test_the_upkeep_fails_dead_ingests_and_expires_abandoned_transfers(
    browser, settings, upload_root
):
    """The safety net behind the outbox: an ingest with no progress for longer than its time
    limit (its job given up) fails; a live one (progress a second ago) is left alone."""
    files = small_files(1)
    long_ago = timezone.now() - timedelta(seconds=settings.VBQ_INGEST_TIME_LIMIT + 120)
    browser.create(files, name="dead")
    dead = Upload.objects.get(public_id=browser.payload["id"])
    browser.create(files, name="alive")
    browser.send(files)
    alive = Upload.objects.get(public_id=browser.payload["id"])
    Upload.objects.filter(pk__in=[dead.pk, alive.pk]).update(
        status=UploadStatus.PROCESSING, started_at=long_ago, heartbeat_at=long_ago, attempts=1
    )
    Upload.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now())
    # A transfer abandoned a day ago, and a folder nobody owns any more.
    browser.create(files, name="abandoned")
    abandoned = Upload.objects.get(public_id=browser.payload["id"])
    Upload.objects.filter(pk=abandoned.pk).update(updated_at=timezone.now() - timedelta(days=2))
    orphan = upload_root / "987654"
    orphan.mkdir()
    half_removed = upload_root / ".987655.removing-0123abcd"  # a deletion cut short
    (half_removed / "files").mkdir(parents=True)
    old = time.time() - 7200
    for folder in (orphan, half_removed):
        os.utime(folder, (old, old))
    # An upload queued before the outbox existed: no job; the upkeep records one.
    browser.create(files, name="queued long ago")
    jobless = Upload.objects.get(public_id=browser.payload["id"])
    Upload.objects.filter(pk=jobless.pk).update(status=UploadStatus.QUEUED)
    with broker_down():
        report = uploads_tidy()
    assert report["queued"] == 1
    assert Job.objects.get(key=ingest_job_key(jobless.pk)).kwargs == {"upload_id": jobless.pk}
    assert report["failed"] == 1
    assert report["expired"] == 1
    assert report["swept"] >= 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    abandoned.refresh_from_db()
    assert dead.status == UploadStatus.FAILED
    assert "The ingest stopped" in dead.message
    assert not staging_exists(dead)
    assert alive.status == UploadStatus.PROCESSING
    assert staging_exists(alive)
    assert abandoned.status == UploadStatus.CANCELLED
    assert "no file arrived for a day" in abandoned.message
    assert not staging_exists(abandoned)
    assert not orphan.exists()
    assert not half_removed.exists()
