"""Reusing a case set of another study, copied by a real Celery worker on real Redis: the page
answers at once, the worker copies case by case, and the progress page's JSON shows it.

The session's worker rests for this test; one started with ``VBQ_TEST_PAUSE=attach=1`` pauses a
second after each case, so that the progress between two cases is seen deterministically.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.urls import reverse

from studies.casesets import attach_job_key
from studies.models import AttachStatus, Case, CaseSetAttach, Instance, Role
from studies.uploads.ingest import case_set_ingest_paths
from tests.helpers import factories
from tests.helpers.ingestdata import phantom_case_bytes, write_files
from tests.helpers.workers import CeleryWorker, Processes, wait_until
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def slow_worker(celery_processes: Processes, celery_worker: CeleryWorker) -> Iterator[CeleryWorker]:
    celery_worker.stop()
    worker = celery_processes.worker("attach", VBQ_TEST_PAUSE="attach=1").start()
    try:
        yield worker
    finally:
        worker.stop()
        celery_worker.start()


def _source(world, tmp_path: Path):
    folders = []
    for index in (1, 2):
        folder = tmp_path / f"case-{index}"
        write_files(folder, {f"{k}.dcm": d for k, d in enumerate(phantom_case_bytes(43, index))})
        folders.append(folder)
    return case_set_ingest_paths(study=world.study_a, paths=folders, name="Site 1").case_set


def test_an_attach_is_copied_by_the_worker_with_its_progress_visible(
    slow_worker, client, world, tmp_path
) -> None:
    source = _source(world, tmp_path)
    both = factories.UserFactory(username="both")
    for study in (world.study_a, world.study_b):
        factories.AssignmentFactory(study=study, user=both, role=Role.MANAGER)
    client.force_login(both)
    response = client.post(
        reverse("studies:case_set_attach", kwargs={"pk": world.study_b.pk}),
        {"case_set": source.pk},
    )
    assert response.status_code == 302
    attach = CaseSetAttach.objects.get()
    status_url = reverse("studies:case_set_attach_status", kwargs={"public_id": attach.public_id})

    seen: list[tuple[str, str]] = []

    def finished() -> dict | None:
        state = client.get(status_url).json()
        if not seen or seen[-1] != (state["status"], state["text"]):
            seen.append((state["status"], state["text"]))
        return state if state["finished"] else None

    state = wait_until(finished, timeout=60, what="the attach finished by the worker")
    assert ("copying", "1 of 2 cases copied") in seen  # between the two cases
    assert (state["status"], state["text"]) == (AttachStatus.DONE, "2 of 2 cases copied")
    assert Case.objects.filter(study=world.study_b).count() == 2
    assert state["instances"] == Instance.objects.filter(series__case__study=world.study_b).count()
    job = Job.objects.get(key=attach_job_key(attach.pk))
    wait_until(lambda: Job.objects.get(pk=job.pk).state == Job.State.DONE, timeout=10, what="done")
    assert Job.objects.get(pk=job.pk).worker == slow_worker.hostname
    page = client.get(
        reverse("studies:case_set_attach_progress", kwargs={"public_id": attach.public_id})
    )
    assert "2 cases attached as “Site 1”" in page.content.decode()
