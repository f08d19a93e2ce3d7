"""The site's Content-Security-Policy in a real browser (issue 12): the viewer works under it,
with no violation, and a violation would fail the browser tests.

``page.errors`` (``tests/browser/conftest.py``) collects console errors, and the conftest turns
every ``securitypolicyviolation`` event into one; every browser test asserts it is empty.
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from django.core.management import call_command
from django.urls import reverse
from pydicom.uid import JPEG2000Lossless

from readers import services
from readers.analysis.artifacts import files_build
from readers.management.commands.seed_demo import DEMO_STUDY
from readers.models import Reading, StudyAnalysis
from studies.models import Case, Study
from studies.phantom.writer import write_phantom
from studies.uploads.ingest import case_set_ingest_paths
from tests.helpers.browser import login_fast, open_viewer, wait_until
from vbqweb.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _directives(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (p.split() for p in header.split(";") if p.strip())}


def _jpeg_2000_phantom_case(study, tmp_path: Path) -> Case:
    """A phantom case stored as JPEG 2000, so that the viewer decodes it in its worker with a
    WebAssembly codec: the path that needs 'wasm-unsafe-eval' and worker-src."""
    [folder] = write_phantom(tmp_path / "p", cases=1, seed=33)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless)
        ds.save_as(path, enforce_file_format=True)
    upload = case_set_ingest_paths(study=study, paths=sorted(folder.glob("*.dcm")), name="j2k")
    assert upload.status == "done", upload.message
    case = Case.objects.get(study=study)
    assert case.reading_series is not None
    return case


def test_the_viewer_runs_under_the_content_security_policy(
    celery_worker, page, live_server, world, tmp_path
) -> None:
    case = _jpeg_2000_phantom_case(world.study_a, tmp_path)
    instance = case.reading_series.instances.first()
    stored = pydicom.dcmread(instance.file.path, stop_before_pixels=True)
    assert stored.file_meta.TransferSyntaxUID == JPEG2000Lossless
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    login_fast(page, live_server, world.reader)

    response = page.goto(f"/readings/{reading.public_id}/")
    csp = _directives(response.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert "'unsafe-inline'" not in csp["script-src"] + csp["style-src"]
    assert "no-store" in response.headers["cache-control"]
    # The first image is decoded (wasm, in the worker) and shown.
    open_viewer(page, reading.public_id)

    page.keyboard.press("p")  # an ROI for L1 at the centre of the view
    wait_until(page, "vbqViewer.roiJson().rois.length === 1")
    wait_until(page, "vbqViewer.saveState() === 'saved'")
    wait_until(
        page,
        "(() => { const s = vbqViewer.score(); "
        "return s && s.roi_version === vbqViewer.version(); })()",
        timeout=60_000,
    )
    reading = Reading.objects.get(pk=reading.pk)
    assert reading.roi_version == 1
    assert [r["label"] for r in reading.rois["rois"]] == ["L1"]
    assert page.errors == []


def test_a_csp_violation_fails_the_browser_tests(page, live_server, world) -> None:
    """The check above would see a violation: an inline script, as an injection would add."""
    login_fast(page, live_server, world.reader)
    page.goto("/")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
        }"""
    )
    for _ in range(50):  # the violation event reaches the console asynchronously
        if any("CSP violation" in error for error in page.errors):
            break
        page.wait_for_timeout(100)
    assert any("CSP violation: script-src-elem blocked inline" in e for e in page.errors)
    assert page.evaluate("window.injected") is None


def test_the_agreement_page_the_report_and_the_admin_run_under_the_policy(
    page, live_server, world
) -> None:
    """Figures (inline SVG, styled by attributes), the report's nonced <style>, the pages'
    scripts and Django's admin: no violation on any of them."""
    call_command("seed_demo", cases=2, seed=8, stdout=io.StringIO())
    study = Study.objects.get(name=DEMO_STUDY)
    # This test walks pages under the policy: the demo's agreement is computed (seed_demo does
    # it), so drop its queued recomputation, or a worker left running by an earlier test could
    # finish it mid-walk and the page's status poll would reload it under a navigation.
    Job.objects.filter(key=f"analysis:study:{study.pk}").delete()
    StudyAnalysis.objects.filter(study=study).update(claimed_at=None)
    # The figures and the report are built by the worker after the analysis (issue 13 item 8):
    # built here, so that the walk sees them rather than "preparing…".
    Job.objects.filter(key=f"files:study:{study.pk}").delete()
    files_build(study_pk=study.pk)
    manager = study.assignments.get(user__username="manager").user
    login_fast(page, live_server, manager)
    for name in ("study", "analytics:agreement", "studies:uploads", "analytics:report_html"):
        response = page.goto(reverse(name, kwargs={"pk": study.pk}))
        assert response.status == 200, name
        assert "content-security-policy" in response.headers, name
    assert page.locator("figure svg").count() > 0
    border = page.evaluate("getComputedStyle(document.querySelector('h2')).borderBottomStyle")
    assert border == "solid"  # the report's own <style> applies
    login_fast(page, live_server, world.admin)
    for url in ("/admin/", "/admin/studies/study/", "/admin/studies/study/add/"):
        assert page.goto(url).status == 200, url
    page.wait_for_timeout(300)  # a late violation event
    # The report (a standalone document, also the PDF's source) and the admin name no icon, so
    # Chromium asks for /favicon.ico, a 404: the one error that is not the page's.
    assert [e for e in page.errors if e != FAVICON_404] == []


FAVICON_404 = "Failed to load resource: the server responded with a status of 404 (Not Found)"
