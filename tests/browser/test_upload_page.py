"""The manager's upload page in a real browser: choose files, watch both progress bars, read the
report; a connection lost mid-transfer; a reload while the upload waits for the worker; cancel.

``static/js/upload.js`` is what a manager uses for several-GB case sets: these tests drive it in
Chromium against a live server (``tests/test_upload.py`` checks the same protocol from Python).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from studies.models import Instance, ItemStatus, Upload, UploadStatus
from studies.uploads.ingest import upload_ingest
from studies.uploads.staging import staging_exists
from tests.helpers.brokers import broker_down
from tests.helpers.browser import login_fast, wait_until
from tests.helpers.ingestdata import phantom_case_bytes, write_files

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Record every value the two bars take, so a test can say the progress moved, not only ended.
WATCH_BARS = """() => {
  window.bars = {transfer: [], processing: []};
  for (const [key, id] of [["transfer", "transfer-bar"], ["processing", "processing-bar"]]) {
    const bar = document.getElementById(id);
    new MutationObserver(() => window.bars[key].push([bar.value, bar.max]))
      .observe(bar, {attributes: true});
  }
}"""


def _files(tmp_path: Path, cases: int = 2) -> list[Path]:
    """Phantom cases as loose files in folders, plus a note that is not DICOM."""
    files = {
        f"case{i}/IM{k:04d}.dcm": data
        for i in range(1, cases + 1)
        for k, data in enumerate(phantom_case_bytes(51, i))
    }
    files["notes-for-PATIENT-SMITH.txt"] = b"exported from the PACS by Dr Who"
    return write_files(tmp_path / "chosen", files)


def _open(page, live_server, world) -> None:
    login_fast(page, live_server, world.manager)
    page.goto(f"/studies/{world.study_a.pk}/uploads/")
    page.evaluate(WATCH_BARS)


def _choose_and_start(page, paths: list[Path], name: str = "Site A, batch 1") -> None:
    page.set_input_files("#pick-files", [str(p) for p in paths])
    wait_until(page, "!document.querySelector('#start').disabled")
    page.fill("#upload-name", name)
    page.click("#start")


def _latest() -> Upload:
    return Upload.objects.order_by("-pk").first()


def test_upload_shows_transfer_and_processing_progress_then_the_report(
    celery_worker, page, live_server, world, tmp_path, settings
):
    settings.VBQ_UPLOAD_CHUNK_BYTES = 256 * 1024  # several chunks for a few MB
    paths = _files(tmp_path)
    total = sum(p.stat().st_size for p in paths)
    _open(page, live_server, world)
    _choose_and_start(page, paths)
    page.wait_for_selector("#report-slot table", timeout=60_000)

    upload = _latest()
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.bytes_received == total
    assert upload.instances_stored == len(paths) - 1
    bars = page.evaluate("window.bars")
    sent = [value for value, _ in bars["transfer"]]
    assert len({v for v in sent if 0 < v < total}) >= 3, sent  # it moved, chunk by chunk
    assert bars["transfer"][-1] == [total, total]
    value, maximum = bars["processing"][-1]
    assert value == maximum == len(paths)
    assert page.inner_text("#transfer-text").endswith(f"{len(paths)} of {len(paths)} files")
    report = page.inner_text("#report-slot")
    assert "Case 001" in report
    assert "Case 002" in report
    assert "not a DICOM file" in report
    # The rejected file's name is shown by this browser, which still holds the files ...
    assert "notes-for-PATIENT-SMITH.txt" in report
    # ... and never reached the server.
    for item in upload.items.all():
        assert "SMITH" not in item.reason
    assert "SMITH" not in upload.name + upload.message
    assert page.errors == []


def test_a_connection_lost_mid_transfer_resumes_and_loses_nothing(
    celery_worker, page, live_server, world, tmp_path, settings
):
    settings.VBQ_UPLOAD_CHUNK_BYTES = 128 * 1024
    paths = _files(tmp_path, cases=1)
    _open(page, live_server, world)
    chunks = {"seen": 0, "dropped": 0}

    def flaky(route) -> None:
        chunks["seen"] += 1
        if chunks["seen"] in (3, 4):  # two chunks in a row die on the wire
            chunks["dropped"] += 1
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/chunk", flaky)
    _choose_and_start(page, paths)
    page.wait_for_selector("#report-slot table", timeout=90_000)
    page.unroute_all(behavior="ignoreErrors")
    upload = _latest()
    assert chunks["dropped"] == 2
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.instances_stored == len(paths) - 1 == Instance.objects.count()
    assert upload.items.filter(status=ItemStatus.ACCEPTED).count() == len(paths) - 1
    assert not staging_exists(upload)


def test_reload_while_waiting_for_the_worker_then_progress_continues(
    page, live_server, world, tmp_path
):
    """The broker is down when the transfer ends: the page says the upload is kept; after a
    reload it still does, and it follows the processing once the work runs (here the task
    itself, in this process), without another reload."""
    paths = _files(tmp_path, cases=1)
    with broker_down():
        _open(page, live_server, world)
        _choose_and_start(page, paths)
        wait_until(
            page,
            "document.querySelector('#progress-message').textContent.includes('cannot be reached')",
        )
        upload = _latest()
        assert upload.status == UploadStatus.QUEUED
        page.reload()
        message = page.inner_text("#progress-message")
        assert "Waiting for the worker" in message
        assert "kept safely" in message
        transfer = page.evaluate("[document.querySelector('#transfer-bar').value, "
                                 "document.querySelector('#transfer-bar').max]")  # fmt: skip
        assert transfer[0] == transfer[1] == upload.bytes_total_expected > 0
        upload_ingest(upload_id=upload.pk)
    page.wait_for_selector("#report-slot table", timeout=30_000)
    assert "Case 001" in page.inner_text("#report-slot")
    processing = page.evaluate("[document.querySelector('#processing-bar').value, "
                               "document.querySelector('#processing-bar').max]")  # fmt: skip
    assert processing == [len(paths), len(paths)]


def test_cancel_during_the_transfer_deletes_the_files(page, live_server, world, tmp_path, settings):
    settings.VBQ_UPLOAD_CHUNK_BYTES = 64 * 1024
    paths = _files(tmp_path, cases=1)
    _open(page, live_server, world)
    seen = {"n": 0}

    def slow(route) -> None:
        seen["n"] += 1
        time.sleep(0.15)  # a slow line, so that Cancel lands mid-transfer
        route.continue_()

    page.route("**/chunk", slow)
    page.on("dialog", lambda dialog: dialog.accept())  # "Cancel this upload?"
    _choose_and_start(page, paths)
    wait_until(page, "window.bars.transfer.some(([v]) => v > 0)")
    page.click("#cancel")
    wait_until(
        page,
        "document.querySelector('#progress-message').textContent.toLowerCase().includes('cancel')",
    )
    page.unroute_all(behavior="ignoreErrors")  # chunks still in flight end with the test
    upload = _latest()
    assert upload.status == UploadStatus.CANCELLED
    assert 0 < upload.bytes_received < upload.bytes_total_expected
    assert not staging_exists(upload)
    assert not Instance.objects.exists()
