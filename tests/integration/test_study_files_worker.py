"""After submissions, the real worker computes the agreement and then builds the study's files
(figures, report, PDF, SR zip: issue 13 item 8), which the views then serve at once.

The chain is the product's: a submission's score asks for the analysis (debounced, sent by the
dispatcher that Celery beat runs), the analysis asks for the files through the outbox.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from readers.analysis import artifacts
from readers.analysis import services as analytics
from tests.helpers.readings import submit_phantom_readings
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_worker_builds_the_files_after_the_analysis(
    celery_worker, celery_beat, client, world, settings, tmp_path: Path
) -> None:
    settings.VBQ_ANALYSIS_DELAY = 1
    readers = [world.reader, world.other_reader]
    submit_phantom_readings(client, world.study_a, readers, tmp_path, cases=2, seed=22)
    deadline = time.monotonic() + 120
    status: dict[str, artifacts.FileStatus] = {}
    while time.monotonic() < deadline:
        state = analytics.analysis_state(study=world.study_a)
        if len(state.records or []) == 4:
            status = artifacts.files_status(study=world.study_a, state=state)
            if all(s.ready for s in status.values()):
                break
        time.sleep(0.5)
    assert status, "the worker never computed the analysis of the four readings"
    assert all(s.ready for s in status.values()), status
    assert Job.objects.get(key=analytics.files_job_key(world.study_a.pk)).state == Job.State.DONE
    # Each reading's SR is kept for the next zip, which then builds only new readings' SRs.
    kept = artifacts.file_storage().listdir(f"generated/study-{world.study_a.pk}/sr")[1]
    assert len(kept) == 4

    client.force_login(world.manager)
    started = time.perf_counter()
    pdf = client.get(reverse("analytics:report_pdf", kwargs={"pk": world.study_a.pk}))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.getvalue().startswith(b"%PDF")
    archive = client.get(reverse("analytics:study_srs", kwargs={"pk": world.study_a.pk}))
    assert len(zipfile.ZipFile(io.BytesIO(archive.getvalue())).namelist()) == 4
    page = client.get(reverse("analytics:agreement", kwargs={"pk": world.study_a.pk}))
    assert "Inter-reader agreement" in page.content.decode()
    assert time.perf_counter() - started < 5  # served as built (generous for a shared machine)
