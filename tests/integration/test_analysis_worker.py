"""Submitting readings makes the real worker score them and then recompute the agreement.

The recomputation is debounced (``VBQ_ANALYSIS_DELAY``, 1 s here) and sent by the outbox's
dispatcher, which Celery beat sends in its own process: the whole chain is real.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.urls import reverse

from readers.analysis import services as analytics
from readers.models import StudyAnalysis
from studies.models import Case
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_submissions_lead_to_a_fresh_agreement_through_the_worker(
    celery_worker, celery_beat, client, world, settings, tmp_path: Path
) -> None:
    settings.VBQ_ANALYSIS_DELAY = 1
    dirs = write_phantom(tmp_path / "p", cases=3, seed=21)
    case_set_import_trusted_files(
        study=world.study_a,
        name="p",
        cases=[(f"Case {i}", list(d.glob("*.dcm"))) for i, d in enumerate(dirs, 1)],
    )
    truths = {
        f"Case {i}": json.loads((d / "truth.json").read_text()) for i, d in enumerate(dirs, 1)
    }
    for reader in (world.reader, world.other_reader):
        client.force_login(reader)
        for case in Case.objects.filter(study=world.study_a):
            open_url = reverse("readers:open", kwargs={"case_pk": case.pk, "session": 1})
            detail = client.post(open_url).url
            client.post(detail, {"rois": json.dumps(truths[case.label]["rois"])})
            client.post(detail.rstrip("/") + "/submit/")
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
