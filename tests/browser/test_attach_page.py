"""Reusing a case set of another study in a real browser: the attach page answers at once, the
progress page's script (``static/js/attach.js``, no inline script: CSP) follows the copy and
shows the result when it ends, without a reload by hand.

The broker is down while the manager attaches, so the copy waits; the test then runs the task
itself, in this process, as the worker would, and the page that was waiting takes it up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.casesets import case_set_attach_run
from studies.models import AttachStatus, Case, CaseSetAttach, Role
from studies.uploads.ingest import case_set_ingest_paths
from tests.helpers import factories
from tests.helpers.brokers import broker_down
from tests.helpers.browser import login_fast
from tests.helpers.ingestdata import phantom_case_bytes, write_files

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_progress_page_follows_the_copy_to_its_end(page, live_server, world, tmp_path):
    folders: list[Path] = []
    for index in (1, 2):
        folder = tmp_path / f"case-{index}"
        write_files(folder, {f"{k}.dcm": d for k, d in enumerate(phantom_case_bytes(44, index))})
        folders.append(folder)
    case_set_ingest_paths(study=world.study_a, paths=folders, name="Site 1")
    both = factories.UserFactory(username="both")
    for study in (world.study_a, world.study_b):
        factories.AssignmentFactory(study=study, user=both, role=Role.MANAGER)
    login_fast(page, live_server, both)

    with broker_down():
        page.goto(f"/studies/{world.study_b.pk}/cases/attach/")
        page.get_by_role("button", name=f"Attach to {world.study_b.name}").click()
        page.wait_for_selector("#attach")
        attach = CaseSetAttach.objects.get()
        assert attach.status == AttachStatus.QUEUED
        assert page.url.endswith(f"/studies/cases/attach/{attach.public_id}/")
        assert "0 of 2 cases copied" in page.inner_text("#attach .progress")
        assert "Waiting for the worker" in page.inner_text("#attach .state")
        case_set_attach_run(attach_id=attach.pk)
    page.wait_for_selector("#attach .done", state="visible")  # the script reloads the page
    assert "2 cases attached as “Site 1”" in page.inner_text("#attach .done")
    assert "2 of 2 cases copied" in page.inner_text("#attach .progress")
    assert Case.objects.filter(study=world.study_b).count() == 2
    assert page.errors == []  # type: ignore[attr-defined]
