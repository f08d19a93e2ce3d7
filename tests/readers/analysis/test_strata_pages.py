"""Strata and "precision so far" where a manager reads them (issue 14 items 3 and 4), and the
words of issue 13 item 9: the records carry each case's stratum values, the fingerprint moves
when they change, and the agreement page, the statistics CSV/JSON and the PDF carry the same
per-stratum figures as :func:`studies.stats.strata.stratify`, with the n < 10 note.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pypdf import PdfReader

from readers.analysis import services as analytics
from readers.analysis.artifacts import files_build
from readers.models import Reading, VbqResult
from studies.models import ReferenceStandard, Role
from studies.stats.planning import cases_needed
from studies.stats.strata import FIELD_STRENGTH, MANUFACTURER
from tests.helpers.factories import AssignmentFactory, CaseFactory, ReadingFactory, StudyFactory
from tests.helpers.strata_study import strata_study


@pytest.fixture
def study(db):
    return strata_study(target_ci_width=0.3)


def test_records_carry_the_case_strata_and_the_fingerprint_follows_them(study) -> None:
    study, _ = study
    records, fingerprint = analytics.study_records(study=study)
    first = next(r for r in records if r["case"] == "Case 001")
    assert first["strata"] == {FIELD_STRENGTH: "1.5 T", MANUFACTURER: "SIEMENS", "site": "Berlin"}
    last = next(r for r in records if r["case"] == "Case 025")
    assert last["strata"] == {FIELD_STRENGTH: "3 T", MANUFACTURER: "SIEMENS"}
    ReferenceStandard.objects.filter(case__label="Case 001").update(attributes={"site": "Bern"})
    assert analytics.study_fingerprint(study=study) != fingerprint


def test_page_csv_json_and_pdf_carry_the_strata(client, study) -> None:
    study, manager = study
    client.force_login(manager)
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    state = analytics.analysis_state(study=study)
    strata = analytics.analysis_document(state=state)["strata"]
    by_field = {s["value"]: s for s in strata["dimensions"][0]["strata"]}
    assert by_field["1.5 T"]["n"] == 20
    assert by_field["3 T"]["too_few"]
    icc2 = by_field["1.5 T"]["icc"]["ICC2"]["value"]

    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    assert 'id="strata"' in page
    assert f"{icc2:.3f}" in page
    assert "too few cases (n = 6) for a reliable estimate" in page
    assert "Limits of agreement: in 95 % of cases two readers" in page
    assert "stratum-1-loa-upper" in page  # the coloured plot, with the 3 T lines left out…
    assert "stratum-1" in page
    for name in ("Field strength", "Manufacturer", "site", "Berlin", "Basel"):
        assert name in page, name

    table = client.get(reverse("analytics:statistics_csv", kwargs={"pk": study.pk}))
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    icc_row = next(
        r
        for r in rows
        if r["section"] == "stratum: Field strength = 1.5 T" and r["statistic"] == "ICC2 (VBQ)"
    )
    assert float(icc_row["value"]) == pytest.approx(icc2)
    assert icc_row["n"] == "20"
    assert any(
        r["section"] == "stratum: Field strength = 3 T"
        and "too few cases (n = 6)" in r["statistic"]
        for r in rows
    )
    payload = client.get(reverse("analytics:statistics_json", kwargs={"pk": study.pk})).json()
    assert payload["agreement"]["strata"] == strata
    assert "strata" in payload["explanations"]
    assert "strata" in payload["records"][0]

    pdf = client.get(reverse("analytics:report_pdf", kwargs={"pk": study.pk}))
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.getvalue())).pages)
    assert "Agreement by group of cases" in text
    assert "too few cases (n = 6)" in text
    assert f"{icc2:.3f}" in text


def test_precision_so_far_uses_the_study_target(client, study) -> None:
    study, manager = study
    client.force_login(manager)
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    assert "Precision so far: the 95 % CI of ICC2 is" in page
    assert "0.30" in page  # the study's target width, not the default 0.2
    edit = client.get(reverse("studies:edit", kwargs={"pk": study.pk})).content.decode()
    assert 'name="planned_icc"' in edit
    assert 'name="target_ci_width"' in edit
    expected = cases_needed(study.planned_icc, 3, study.target_ci_width)
    assert f"<strong>{expected} cases</strong>" in edit


def test_the_words_of_the_page(client, study) -> None:
    study, manager = study
    client.force_login(manager)
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    assert "Two-way random effects, absolute agreement, single reader" in page
    assert "ICC(2,1)" in page
    assert "<th>ICC form</th>" not in page
    assert '<th class="num">n</th>' not in page


def test_an_empty_study_says_what_to_do_next(client, db) -> None:
    study = StudyFactory(name="Empty")
    manager = AssignmentFactory(study=study, role=Role.MANAGER).user
    client.force_login(manager)
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    assert "What to do next" in page
    assert reverse("studies:people", kwargs={"pk": study.pk}) in page
    assert "out of date since" not in page
    assert "—" not in page.split('id="analysis-status"')[1].split("</div>")[0]


def test_kappa_from_one_case_says_not_enough_data(client, db) -> None:
    study = StudyFactory(name="One case")
    study.thresholds.create(name="screening", value=2.95)
    manager = AssignmentFactory(study=study, role=Role.MANAGER).user
    case = CaseFactory(study=study)
    for vbq in (2.5, 3.5):  # the two readers disagree: Fleiss' kappa of one case is -1
        reader = AssignmentFactory(study=study, role=Role.READER).user
        reading = ReadingFactory(
            case=case, reader=reader, status=Reading.Status.SUBMITTED, roi_version=1
        )
        VbqResult.objects.create(
            reading=reading, roi_version=1, algorithm_version="t", status="ok", vbq=vbq
        )
    analytics.analysis_compute(study_pk=study.pk)
    client.force_login(manager)
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    page = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    kappa = page.split("Categorical agreement")[1].split("</table>")[0]
    assert "not enough data" in kappa
    assert "1.000" not in kappa  # Fleiss' kappa of one disagreeing case is −1: not shown
    report = client.get(reverse("analytics:report_html", kwargs={"pk": study.pk})).content.decode()
    kappa = report.split("categorical agreement (kappa per threshold)")[1].split("</table>")[0]
    assert "not enough data" in kappa
    assert "1.000" not in kappa


def test_the_reference_page_imports_case_attributes_and_documents_them(client, study) -> None:
    study, manager = study
    client.force_login(manager)
    url = reverse("studies:reference", kwargs={"pk": study.pk})
    assert "Case attributes" in client.get(url).content.decode()
    content = b"case,protocol,site\nCase 001,fast,\nCase 025,slow,Bern\n"
    response = client.post(url, {"file": SimpleUploadedFile("r.csv", content, "text/csv")})
    assert response.status_code == 302
    stored = dict(
        ReferenceStandard.objects.filter(case__study=study).values_list("case__label", "attributes")
    )
    assert stored["Case 001"] == {"protocol": "fast"}  # the empty cell cleared "site"
    assert stored["Case 025"] == {"protocol": "slow", "site": "Bern"}
    assert stored["Case 002"] == {"site": "Berlin"}  # not in the file: as it was
    page = client.get(url).content.decode()
    assert "<th>protocol</th>" in page
    assert "<th>site</th>" in page
    refused = b"case,manufacturer\nCase 001,GE\n"
    page = client.post(url, {"file": SimpleUploadedFile("r.csv", refused, "text/csv")})
    assert "taken from the images" in page.content.decode()
