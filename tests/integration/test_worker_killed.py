"""A worker killed with SIGKILL in the middle of a task: the work completes on another worker
within two minutes, and nothing is duplicated.

Real processes only. The session's worker is stopped for these tests, so that the test decides
who takes the task: a "victim" worker (started with ``VBQ_TEST_PAUSE``, so that it stops inside
the task, deterministically: after claiming the scoring job; after storing part of an upload)
picks it up alone; a second worker is started; then the victim's whole process group is killed,
as a machine or container dies. Its message stays unacknowledged in Redis for the broker's
visibility timeout (over an hour), so the recovery seen here is the outbox's: the job's run
stops beating, the dispatcher (beat, every second) sends it again after the work's deadline
(scoring 30 s, ingest 60 s), and the other worker runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from readers import services
from readers.models import VbqResult
from readers.selectors import score_job_key
from studies.models import Case, CaseSet, Instance, Series, Upload, UploadItem, UploadStatus
from studies.uploads.outbox import ingest_job_key
from studies.uploads.staging import staging_exists
from tests.helpers.ingestdata import phantom_case_bytes
from tests.helpers.readings import phantom_case, wait_scored
from tests.helpers.uploads import Browser
from tests.helpers.workers import CeleryWorker, Processes, wait_until
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WITHIN = 120  # seconds after the kill


@pytest.fixture
def workers(
    celery_processes: Processes, celery_worker: CeleryWorker, celery_beat
) -> Iterator[Callable[..., CeleryWorker]]:
    """Start workers for this test; the session's worker rests meanwhile (and comes back)."""
    celery_worker.stop()
    started: list[CeleryWorker] = []

    def start(name: str, **env: str) -> CeleryWorker:
        worker = celery_processes.worker(name, **env).start()
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        celery_worker.start()


def _job(key: str) -> Job | None:
    return Job.objects.filter(key=key).first()


def _running_on(key: str, worker: CeleryWorker) -> bool:
    job = _job(key)
    return job is not None and job.state == Job.State.RUNNING and job.worker == worker.hostname


def test_a_worker_killed_mid_score_the_other_worker_scores_it(workers, world, tmp_path) -> None:
    case, _, truth = phantom_case(world.study_a, tmp_path, seed=61)
    victim = workers("victim-score", VBQ_TEST_PAUSE="score=600")
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    key = score_job_key(reading_pk=reading.pk, roi_version=reading.roi_version)
    wait_until(lambda: _running_on(key, victim), timeout=60, what="the victim scoring")
    wait_until(lambda: "at 'score'" in victim.log(), timeout=60, what="the victim mid-task")
    survivor = workers("survivor")
    victim.kill()
    killed = time.monotonic()
    result = wait_scored(reading, timeout=WITHIN)
    print(f"scored {time.monotonic() - killed:.1f} s after the kill")
    assert victim.poll() is not None
    assert result.status == VbqResult.Status.OK
    assert VbqResult.objects.filter(reading=reading).count() == 1
    job = wait_until(
        lambda: (j := _job(key)) and j.state == Job.State.DONE and j, timeout=30, what="job done"
    )
    assert (job.runs, job.worker) == (2, survivor.hostname)


def test_a_worker_killed_mid_ingest_the_other_worker_ingests_it_once(
    workers, client, world
) -> None:
    files = [data for index in (1, 2, 3) for data in phantom_case_bytes(62, index)]
    victim = workers("victim-ingest", VBQ_TEST_PAUSE="ingest=600")
    client.force_login(world.manager)
    browser = Browser(client, world.study_a)
    browser.create(files, name="Killed midway")
    browser.send(files)
    assert browser.finish().status_code == 200
    upload_id = browser.upload_pk
    key = ingest_job_key(upload_id)
    wait_until(lambda: _running_on(key, victim), timeout=60, what="the victim ingesting")
    wait_until(lambda: "at 'ingest'" in victim.log(), timeout=90, what="the victim mid-ingest")
    midway = Upload.objects.get(pk=upload_id)
    assert midway.status == UploadStatus.PROCESSING
    assert 0 < midway.instances_stored < len(files)  # part of it stored by the victim
    assert 0 < Instance.objects.count() < len(files)
    survivor = workers("survivor")
    victim.kill()
    killed = time.monotonic()
    upload = wait_until(
        lambda: (u := Upload.objects.get(pk=upload_id)).is_finished and u,
        timeout=WITHIN,
        what="the upload finished by the survivor",
    )
    print(f"ingested {time.monotonic() - killed:.1f} s after the kill")
    assert upload.status == UploadStatus.DONE, upload.message
    assert upload.attempts == 2  # the victim's run, then the survivor's from scratch
    # One set: every file once, three cases in one case set, one report row per file.
    assert upload.instances_stored == len(files) == Instance.objects.count()
    assert upload.cases_created == 3 == Case.objects.filter(study=world.study_a).count()
    assert CaseSet.objects.filter(study=world.study_a).count() == 1
    assert Series.objects.count() == 3
    assert UploadItem.objects.filter(upload=upload).count() == len(files)
    job = wait_until(
        lambda: (j := _job(key)) and j.state == Job.State.DONE and j, timeout=30, what="job done"
    )
    assert (job.runs, job.worker) == (2, survivor.hostname)
    wait_until(lambda: not staging_exists(upload), timeout=30, what="the files deleted")
