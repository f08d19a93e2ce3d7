"""Submitting readings makes the real worker score them and then recompute the agreement.

The recomputation is debounced (``VBQ_ANALYSIS_DELAY``, 1 s here) and sent by the outbox's
dispatcher, which Celery beat sends in its own process: the whole chain is real.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from readers.analysis import services as analytics
from readers.models import StudyAnalysis
from tests.helpers.readings import submit_phantom_readings
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_submissions_lead_to_a_fresh_agreement_through_the_worker(
    celery_worker, celery_beat, client, world, settings, tmp_path: Path
) -> None:
    settings.VBQ_ANALYSIS_DELAY = 1
    readers = [world.reader, world.other_reader]
    submit_phantom_readings(client, world.study_a, readers, tmp_path, cases=3, seed=21)
    deadline = time.monotonic() + 90
    state = None
    while time.monotonic() < deadline:
        state = StudyAnalysis.objects.filter(study=world.study_a).first()
        if state and state.records and len(state.records) == 6 and state.claimed_at is None:
            break
        time.sleep(0.3)
    assert state is not None, "the worker never recomputed"
    assert len(state.records) == 6, "the worker never recomputed with every reading"
    assert not analytics.analysis_is_stale(state=state)
    assert state.analysis["inter_reader"]["n"] == 3
    assert state.analysis["readers"] == sorted([world.reader.username, world.other_reader.username])
    job = Job.objects.get(key=f"analysis:study:{world.study_a.pk}")
    assert job.state == Job.State.DONE
