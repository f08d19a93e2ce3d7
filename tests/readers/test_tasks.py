"""The project's task options, and a broker that is down or hung never fails a request."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.urls import reverse

from readers import services
from readers.selectors import score_job_key
from readers.tasks import compute_reading_vbq
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.brokers import broker_down, broker_hung
from tests.helpers.factories import case_set_import_trusted_files
from vbqweb.models import Job


def test_tasks_ack_late_requeue_on_worker_loss_and_have_time_limits(settings) -> None:
    """The broker's redelivery is a backstop above the longest task; the outbox recovers lost
    work within each work's own deadline (tests/vbqweb/test_jobs.py)."""
    assert compute_reading_vbq.acks_late is True
    assert compute_reading_vbq.reject_on_worker_lost is True
    assert compute_reading_vbq.time_limit == settings.VBQ_TASK_TIME_LIMIT
    assert compute_reading_vbq.soft_time_limit < compute_reading_vbq.time_limit
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > compute_reading_vbq.time_limit
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


@pytest.fixture
def reading_with_truth(world, tmp_path: Path):
    case_dir = write_phantom(tmp_path / "p", cases=1, seed=9)[0]
    case_set_import_trusted_files(
        study=world.study_a, name="p", cases=[("Case 1", list(case_dir.glob("*.dcm")))]
    )
    case = Case.objects.get(study=world.study_a)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    return reading, json.loads((case_dir / "truth.json").read_text())["rois"]


def _save_through_the_page(client, world, reading, rois) -> tuple[int, float]:
    client.force_login(world.reader)
    started = time.monotonic()
    response = client.post(
        reverse("readers:detail", kwargs={"public_id": reading.public_id}),
        {"rois": json.dumps(rois)},
    )
    return response.status_code, time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_broker_down_the_rois_are_saved_and_the_score_stays_pending(
    client, world, reading_with_truth
) -> None:
    reading, rois = reading_with_truth
    with broker_down():
        status, _ = _save_through_the_page(client, world, reading, rois)
    assert status == 302
    reading.refresh_from_db()
    assert reading.roi_version == 1
    payload = client.get(reverse("readers:score", kwargs={"public_id": reading.public_id})).json()
    assert payload == {"status": "pending", "roi_version": 1, "waiting_for_worker": True}
    # The work is kept in the outbox, with the reason it waits, for the dispatcher to send.
    job = Job.objects.get(key=score_job_key(reading_pk=reading.pk, roi_version=1))
    assert job.state == Job.State.WAITING
    assert job.kwargs == {"reading_pk": reading.pk, "roi_version": 1}
    assert "could not be reached" in job.error


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_hung_broker_does_not_hang_the_request(client, world, reading_with_truth) -> None:
    """A broker that accepts connections but never answers: the request still returns."""
    reading, rois = reading_with_truth
    with broker_hung():
        status, elapsed = _save_through_the_page(client, world, reading, rois)
    assert status == 302
    assert elapsed < 30, f"the request took {elapsed:.1f} s"
    reading.refresh_from_db()
    assert reading.roi_version == 1
