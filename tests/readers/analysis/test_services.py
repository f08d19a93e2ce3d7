"""Agreement analytics on the site: stored analysis, staleness, coalescing, downloads, pages."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pydicom
import pytest
from django.core.management import call_command
from django.urls import reverse

from readers import services
from readers.analysis import services as analytics
from readers.analysis.artifacts import files_build
from readers.management.commands.seed_demo import DEMO_STUDY
from readers.models import Reading, StudyAnalysis, StudyAnalysisDetail
from studies.models import Study
from studies.stats.agreement import analyse
from studies.stats.strata import stratify
from vbqweb.models import Job
from vbqweb.tasks import ANALYSE_STUDY


@pytest.fixture
def demo(db):
    call_command("seed_demo", cases=4, seed=8, stdout=io.StringIO())
    study = Study.objects.get(name=DEMO_STUDY)
    users = {a.user.username: a.user for a in study.assignments.select_related("user")}
    return study, users


def test_the_stored_analysis_is_the_pure_analysis_of_the_submitted_readings(demo) -> None:
    study, _ = demo
    state = study.analysis
    records, fingerprint = analytics.study_records(study=study)
    assert state.fingerprint == fingerprint
    assert state.records == records
    assert len(records) == 3 * 2 * 4 - 2
    thresholds = {t.name: t.value for t in study.thresholds.all()}
    # Stored: the summary (no per-pair figures); the whole document is built when asked for.
    assert state.analysis == json.loads(json.dumps(analyse(records, thresholds, pairs=False)))
    assert "pairs" not in state.analysis["inter_reader"]
    assert set(state.analysis["inter_reader"]["kappa"]) == set(thresholds)
    assert not analytics.analysis_is_stale(state=state)
    whole = json.loads(json.dumps(analyse(records, thresholds)))
    document = analytics.analysis_document(state=state)
    # The site adds the strata (issue 14) beside the spec's document, from the same records.
    assert document.pop("strata") == stratify(records)
    assert document == whole
    assert len(whole["inter_reader"]["pairs"]) == 3


def test_the_per_pair_detail_is_built_once_per_set_of_rows(demo) -> None:
    """Asked twice, built once (kept under the fingerprint); a recomputation over new rows
    leaves the old detail, which is built again for the new rows when next asked for."""
    study, _ = demo
    state = analytics.analysis_state(study=study)
    assert not StudyAnalysisDetail.objects.exists()
    first = analytics.analysis_document(state=state)
    detail = StudyAnalysisDetail.objects.get(state=state)
    StudyAnalysisDetail.objects.filter(pk=detail.pk).update(document={"marker": True})
    assert analytics.analysis_document(state=state) == {"marker": True}  # not rebuilt
    StudyAnalysis.objects.filter(pk=state.pk).update(fingerprint="changed")
    state.refresh_from_db()
    assert analytics.analysis_document(state=state) == first  # rebuilt for the new rows
    assert StudyAnalysisDetail.objects.get(state=state).fingerprint == "changed"


def test_a_recomputation_over_the_same_rows_writes_nothing(demo) -> None:
    study, _ = demo
    computed_at = study.analysis.computed_at
    analytics.analysis_request(study=study)
    state = analytics.analysis_compute(study_pk=study.pk)
    assert state.computed_at == computed_at
    assert state.claimed_at is None


def test_a_new_submission_makes_the_analysis_stale_until_recomputed(demo) -> None:
    study, users = demo
    case = study.cases.order_by("label").last()
    reading = services.reading_open(reader=users["reader3"], case=case, session=2)
    source = Reading.objects.get(reader=users["reader3"], case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=source.rois)
    services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    services.reading_submit(reading=reading)
    state = analytics.analysis_state(study=study)
    assert analytics.analysis_is_stale(state=state)
    analytics.analysis_compute(study_pk=study.pk)
    state.refresh_from_db()
    assert not analytics.analysis_is_stale(state=state)
    assert state.claimed_at is None


def test_a_burst_of_requests_is_one_debounced_job(
    demo, settings, django_capture_on_commit_callbacks
) -> None:
    """Five submissions in a row: one job, sent by the dispatcher once the delay after the
    last of them has passed (nothing is sent at commit)."""
    study, _ = demo
    settings.VBQ_ANALYSIS_DELAY = 30
    StudyAnalysis.objects.filter(study=study).update(claimed_at=None)
    Job.objects.all().delete()
    with django_capture_on_commit_callbacks() as callbacks:
        for _ in range(5):
            analytics.analysis_request(study=study)
    assert callbacks == []
    [job] = Job.objects.all()
    assert (job.work, job.kwargs) == (ANALYSE_STUDY.name, {"study_pk": study.pk})
    assert job.state == Job.State.WAITING
    assert job.generation == 5
    assert 29 < (job.not_before - job.requested_at).total_seconds() <= 30
    assert StudyAnalysis.objects.get(study=study).claimed_at is not None  # the page: pending


def test_agreement_with_one_reader_is_a_clear_message_not_a_crash(db, world) -> None:
    state = analytics.analysis_compute(study_pk=world.study_a.pk)
    assert "at least two readers" in state.error
    assert state.analysis == {}


def test_manager_pages_and_downloads(client, demo) -> None:
    study, users = demo
    client.force_login(users["manager"])
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk}))
    assert page.status_code == 200
    body = page.content.decode()
    for text in ("ICC2", "Reader pairs", "screening", "Intra-reader", "AUC", "up to date"):
        assert text in body

    response = client.get(reverse("analytics:measurements_csv", kwargs={"pk": study.pk}))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == (3 * 2 * 4 - 2) * 5
    first = rows[0]
    assert {"median", "mean", "sd", "area_mm2", "rois", "field_strength_t", "csf_level"} <= set(
        first
    )
    csf = next(r for r in rows if r["level"] == "CSF")
    assert csf["csf_level"] == "L3"
    excluded = [r for r in rows if r["excluded"] == "True"]
    assert [(r["reader"], r["case"], r["level"], r["reason"]) for r in excluded] == [
        ("reader3", "Case 002", "L4", "hemangioma")
    ]

    stats = client.get(reverse("analytics:statistics_json", kwargs={"pk": study.pk})).json()
    assert stats["agreement"] == analytics.analysis_document(state=study.analysis)
    assert len(stats["agreement"]["inter_reader"]["pairs"]) == 3
    assert stats["study"]["thresholds"]["screening"] == 2.95
    table = client.get(reverse("analytics:statistics_csv", kwargs={"pk": study.pk}))
    stat_rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    icc2 = next(r for r in stat_rows if r["statistic"] == "ICC2 (VBQ)" and r["session"] == "1")
    expected = study.analysis.analysis["inter_reader"]["icc"]["ICC2"]["value"]
    assert float(icc2["value"]) == pytest.approx(expected)


def test_dicom_sr_per_reading_and_for_the_study(client, demo) -> None:
    study, users = demo
    client.force_login(users["manager"])
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    reading = Reading.objects.filter(case__study=study).first()
    url = reverse(
        "analytics:reading_sr", kwargs={"pk": study.pk, "reading_public_id": reading.public_id}
    )
    response = client.get(url)
    assert response.status_code == 200
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    for username in ("reader1", "reader2", "reader3"):  # pseudonyms, never account names
        assert username.encode() not in response.content
    archive = client.get(reverse("analytics:study_srs", kwargs={"pk": study.pk}))
    names = zipfile.ZipFile(io.BytesIO(archive.getvalue())).namelist()
    assert len(names) == 3 * 2 * 4 - 2
    assert not [n for n in names if any(u in n for u in ("reader1", "reader2", "reader3"))]


def test_readers_never_reach_agreement_or_downloads(client, demo) -> None:
    study, users = demo
    client.force_login(users["reader1"])
    for name in ("agreement", "measurements_csv", "statistics_json", "report_pdf", "study_srs"):
        response = client.get(reverse(f"analytics:{name}", kwargs={"pk": study.pk}))
        assert response.status_code == 403, name
    study_page = client.get(reverse("study", kwargs={"pk": study.pk})).content.decode()
    assert "ICC" not in study_page
    assert "Agreement" not in study_page


def test_changing_the_roi_statistic_rescores_every_reading(demo) -> None:
    from django.utils import timezone

    from readers.selectors import score_job_key
    from studies.services import study_update
    from vbqweb.models import Job

    study, _ = demo
    readings = list(Reading.objects.filter(case__study=study))
    before = timezone.now()
    study_update(study=study, roi_statistic="mean")
    keys = [score_job_key(reading_pk=r.pk, roi_version=r.roi_version) for r in readings]
    requested = Job.objects.filter(key__in=keys, requested_at__gte=before)
    assert requested.count() == len(readings)  # one scoring job per reading, requested again
    reading = readings[0]
    result = services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    assert result.method["roi_statistic"] == "mean"
    assert result.detail["levels"]["L1"]["si"] == result.detail["levels"]["L1"]["mean"]
    assert reading.results.count() == 1  # rewritten in place, not duplicated


def test_a_threshold_change_makes_the_analysis_stale(demo) -> None:
    from studies.services import thresholds_replace

    study, _ = demo
    thresholds_replace(study=study, thresholds={"screening": 3.1})
    state = analytics.analysis_state(study=study)
    assert analytics.analysis_is_stale(state=state)
    analytics.analysis_compute(study_pk=study.pk)
    state.refresh_from_db()
    assert not analytics.analysis_is_stale(state=state)
    assert set(state.analysis["inter_reader"]["kappa"]) == {"screening"}


def test_the_report_renders_as_html_and_pdf_for_managers(client, demo) -> None:
    from pypdf import PdfReader

    study, users = demo
    client.force_login(users["manager"])
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    html = client.get(reverse("analytics:report_html", kwargs={"pk": study.pk}))
    assert html.status_code == 200
    assert "ICC2" in html.content.decode()
    response = client.get(reverse("analytics:report_pdf", kwargs={"pk": study.pk}))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    pages = PdfReader(io.BytesIO(response.getvalue())).pages
    text = "\n".join(page.extract_text() for page in pages)
    for expected in (DEMO_STUDY, "ICC2", "Bland", "screening", "DeLong"):
        assert expected in text, expected
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    assert page.count("<svg") >= 6  # Bland-Altman and scatter per pair, intra-reader, ROC
