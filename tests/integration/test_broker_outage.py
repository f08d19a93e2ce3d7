"""Redis really stops (the server process the fixture started) while a reader saves or submits,
then starts again on the same port, empty (no persistence, as after a crash): the reading is
scored within 60 s of Redis returning, once. Real worker, real beat, real Redis; nothing mocked.

Before the outbox, the save's enqueue was logged and dropped, and the reading stayed pending for
good: the first test failed on that code (``scored: not after 60 s``).
"""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from readers import services
from readers.analysis import services as analytics
from readers.models import Reading, StudyAnalysis, VbqResult
from readers.selectors import score_job_key
from tests.helpers.readings import phantom_case, wait_scored
from tests.helpers.workers import wait_until
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BACK_WITHIN = 60  # seconds after Redis returns


def _job(reading: Reading) -> Job:
    reading.refresh_from_db()
    return Job.objects.get(
        key=score_job_key(reading_pk=reading.pk, roi_version=reading.roi_version)
    )


def _without_l4(rois: dict) -> dict:
    changed = dict(rois)
    changed["rois"] = [r for r in rois["rois"] if r["label"] != "L4"] + [
        {"label": "L4", "excluded": True, "reason": "fracture"}
    ]
    return changed


@pytest.fixture
def reading_and_rois(world, tmp_path):
    case, _, truth = phantom_case(world.study_a, tmp_path, seed=51)
    return services.reading_open(reader=world.reader, case=case, session=1), truth["rois"]


def test_a_reading_saved_while_redis_is_down_is_scored_once_it_returns(
    redis_server, celery_worker, celery_beat, client, world, reading_and_rois
):
    reading, rois = reading_and_rois
    client.force_login(world.reader)
    score_url = reverse("readers:score", kwargs={"public_id": reading.public_id})
    redis_server.stop()
    try:
        started = time.monotonic()
        response = client.post(
            reverse("readers:detail", kwargs={"public_id": reading.public_id}),
            {"rois": json.dumps(rois)},
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 302
        assert elapsed < 5, f"the save took {elapsed:.1f} s with Redis down"
        payload = client.get(score_url).json()
        assert payload == {"status": "pending", "roi_version": 1, "waiting_for_worker": True}
        page = client.get(reverse("readers:detail", kwargs={"public_id": reading.public_id}))
        assert "waiting for the worker" in page.content.decode().lower()
        job = _job(reading)
        assert job.state == Job.State.WAITING
        assert "could not be reached" in job.error
    finally:
        redis_server.start()
    back = time.monotonic()
    result = wait_scored(reading, timeout=BACK_WITHIN)
    print(f"scored {time.monotonic() - back:.1f} s after Redis returned")
    assert result.status == VbqResult.Status.OK
    assert VbqResult.objects.filter(reading=reading).count() == 1
    assert wait_until(lambda: _job(reading).state == Job.State.DONE, timeout=30, what="job done")
    assert client.get(score_url).json()["status"] == "ok"


def test_a_submit_while_redis_is_down_is_scored_and_analysed_once_it_returns(
    redis_server, celery_worker, celery_beat, client, world, reading_and_rois
):
    """The viewer's Submit: the last edits are saved (rois.json), then submit.json, both with
    Redis down; the first version was scored before the outage."""
    reading, rois = reading_and_rois
    client.force_login(world.reader)
    save_url = reverse("readers:rois", kwargs={"public_id": reading.public_id})
    submit_url = reverse("readers:submit_json", kwargs={"public_id": reading.public_id})
    assert client.post(save_url, rois, content_type="application/json").status_code == 200
    wait_scored(reading, timeout=60)
    redis_server.stop()
    try:
        saved = client.post(save_url, _without_l4(rois), content_type="application/json")
        assert saved.json() == {"status": "saved", "roi_version": 2}
        submitted = client.post(submit_url, {}, content_type="application/json")
        assert submitted.json() == {"status": "submitted", "roi_version": 2}
        assert _job(reading).state == Job.State.WAITING
    finally:
        redis_server.start()
    back = time.monotonic()
    result = wait_scored(reading, timeout=BACK_WITHIN)
    print(f"scored {time.monotonic() - back:.1f} s after Redis returned")
    assert result.roi_version == 2
    assert result.detail["levels"]["L4"] == {"excluded": True, "reason": "fracture"}
    assert VbqResult.objects.filter(reading=reading, roi_version=2).count() == 1
    assert VbqResult.objects.filter(reading=reading).count() == 2  # v1's stays, not current
    # The worker asked for the agreement when it scored the submitted reading.
    state = wait_until(
        lambda: (
            (s := StudyAnalysis.objects.filter(study=world.study_a).first())
            and s.computed_at
            and s.claimed_at is None
            and s
        ),
        timeout=60,
        what="the agreement recomputed",
    )
    assert not analytics.analysis_is_stale(state=state)
    assert "at least two readers" in state.error  # one reader so far: computed, and says so
