"""The "preparing…" page of a generated download in Chromium (issue 13 item 8): it shows the
progress while the file is not built for the current analysis, then starts the download by
itself once it is, under the site's Content-Security-Policy (static/js/preparing.js).

The build is made here, in the test process, exactly as the worker makes it
(``files_build``); the study's files job is held "running" meanwhile so that no worker of the
package builds first: the page must be seen waiting.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from readers.analysis import services as analytics
from readers.analysis.artifacts import files_build
from tests.helpers.browser import login_fast
from tests.helpers.strata_study import strata_study
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _study_with_its_build_held(page, live_server, name: str):
    """A study whose files job is held "running" (no worker builds it), its manager signed in."""
    with transaction.atomic():
        study, manager = strata_study(name=name)
        now = timezone.now()
        Job.objects.filter(key=analytics.files_job_key(study.pk)).update(
            state=Job.State.RUNNING, heartbeat_at=now, due_at=now + timedelta(hours=1)
        )
    login_fast(page, live_server, manager)
    return study


def test_preparing_then_the_download_starts_by_itself(page, live_server) -> None:
    study = _study_with_its_build_held(page, live_server, "Files in the browser")
    page.goto(f"/studies/{study.pk}/report.pdf")
    box = page.locator("#preparing")
    assert "Waiting for the worker" in box.inner_text()
    assert "0 of 3" in box.inner_text()
    with page.expect_download(timeout=60_000) as download:
        files_build(study_pk=study.pk)
    assert download.value.suggested_filename == f"study-{study.pk}-agreement-report.pdf"
    with open(download.value.path(), "rb") as fh:
        assert fh.read(4) == b"%PDF"
    assert page.errors == []


def test_preparing_says_when_the_build_gave_up(page, live_server) -> None:
    """The worker gives up while the page waits: the page says so and offers a recomputation
    instead of "Waiting for the worker…" for ever."""
    study = _study_with_its_build_held(page, live_server, "Files that fail")
    page.goto(f"/studies/{study.pk}/report.pdf")
    failed = page.locator("#preparing .failed")
    assert failed.is_hidden()
    Job.objects.filter(key=analytics.files_job_key(study.pk)).update(state=Job.State.FAILED)
    failed.wait_for(state="visible", timeout=15_000)
    assert "could not be built" in failed.inner_text()
    assert page.locator("#preparing .waiting").is_hidden()  # no progress bar for ever
    assert page.locator("#preparing .failed button").inner_text() == "Recompute and try again"
    assert page.errors == []
