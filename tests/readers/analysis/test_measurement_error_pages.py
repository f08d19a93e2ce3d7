"""Issue 14's figures where a manager reads them: the agreement page, the statistics CSV and
JSON, and the report (HTML and PDF) carry SEM, SDC, AC1, percent agreement, Fleiss' CI and the
weighted kappas, each with its one-line explanation, and the numbers are the analysis' own.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from readers.analysis import services as analytics
from readers.analysis.artifacts import files_build
from readers.management.commands.seed_demo import DEMO_STUDY
from studies.models import Study
from studies.services import thresholds_replace


@pytest.fixture
def demo(db):
    call_command("seed_demo", cases=4, seed=8, stdout=io.StringIO())
    study = Study.objects.get(name=DEMO_STUDY)
    # Two thresholds: the ordered categories get weighted kappas too.
    thresholds_replace(study=study, thresholds={"screening": 2.95, "high": 3.3})
    analytics.analysis_compute(study_pk=study.pk)
    users = {a.user.username: a.user for a in study.assignments.select_related("user")}
    client_user = users["manager"]
    return study, client_user


def test_the_agreement_page_answers_is_this_change_real(client, demo) -> None:
    study, manager = demo
    client.force_login(manager)
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    body = client.get(reverse("analytics:agreement", kwargs={"pk": study.pk})).content.decode()
    document = analytics.analysis_document(state=analytics.analysis_state(study=study))
    sdc = document["inter_reader"]["sdc"]["agreement"]
    assert f"smaller than {sdc:.2f} may be measurement error" in body
    for text in ("Measurement error", "SEM", "SDC", "Gwet AC1", "All readers agree", "Weighted κ"):
        assert text in body, text
    assert "de Vet et al." in body
    assert "Precision so far" in body


def test_the_statistics_downloads_carry_the_new_figures(client, demo) -> None:
    study, manager = demo
    client.force_login(manager)
    document = analytics.analysis_document(state=analytics.analysis_state(study=study))
    table = client.get(reverse("analytics:statistics_csv", kwargs={"pk": study.pk}))
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))

    def row(statistic: str, section: str = "inter-reader", session: str = "1") -> dict[str, str]:
        return next(
            r
            for r in rows
            if r["statistic"].startswith(statistic)
            and r["section"] == section
            and r["session"] == session
        )

    inter = document["inter_reader"]
    sdc = row("SDC, agreement")
    assert "may be measurement error" in sdc["statistic"]
    assert float(sdc["value"]) == pytest.approx(inter["sdc"]["agreement"])
    assert float(row("SEM, consistency")["value"]) == pytest.approx(inter["sem"]["consistency"])
    assert float(row("variance between readers")["value"]) == pytest.approx(
        inter["variance_components"]["reader"]
    )
    fleiss = row("Fleiss kappa (screening)")
    assert float(fleiss["ci95_low"]) == pytest.approx(inter["kappa"]["screening"]["fleiss_ci95"][0])
    assert float(row("Gwet AC1 (high)")["value"]) == pytest.approx(
        inter["kappa"]["high"]["gwet_ac1"]
    )
    weighted = [r for r in rows if r["statistic"].startswith("weighted kappa, quadratic")]
    assert len(weighted) == 3 * 2  # three reader pairs, two sessions
    intra = [r for r in rows if r["section"] == "intra-reader" and r["statistic"].startswith("SDC")]
    assert len(intra) == 3 * 2  # three readers, agreement and consistency

    payload = client.get(reverse("analytics:statistics_json", kwargs={"pk": study.pk})).json()
    assert payload["agreement"]["inter_reader"]["sdc"] == inter["sdc"]
    assert "may be measurement error" in payload["explanations"]["sdc"]
    assert set(payload["explanations"]) >= {"sem", "sdc", "gwet_ac1", "weighted_kappa"}


def test_the_report_has_the_measurement_error_and_its_methods(client, demo) -> None:
    from pypdf import PdfReader

    study, manager = demo
    client.force_login(manager)
    files_build(study_pk=study.pk)  # the worker builds the files after the analysis (issue 13)
    html = client.get(reverse("analytics:report_html", kwargs={"pk": study.pk})).content.decode()
    for text in ("Measurement error", "de Vet et al.", "Gwet AC1", "Quadratic κ", "Bonett"):
        assert text in html, text
    pdf = client.get(reverse("analytics:report_pdf", kwargs={"pk": study.pk}))
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.getvalue())).pages)
    text = " ".join(text.split())
    assert "smallest detectable change" in text
    assert "de Vet" in text
    assert "may be measurement error" in text
