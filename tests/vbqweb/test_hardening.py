"""Browser hardening (issue 12): the Content-Security-Policy, Referrer-Policy and
Permissions-Policy headers, and ``Cache-Control: no-store`` on everything that carries readings
or results. The viewer running under the policy is ``tests/browser/test_viewer.py``'s
``test_the_viewer_runs_under_the_content_security_policy``."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from readers.management.commands.seed_demo import DEMO_STUDY
from readers.models import Reading
from studies.models import Study
from studies.stats.plots import scatter_svg


def _directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.fixture
def demo(db):
    """The demo study: three readers, two sessions, DICOM SRs and a computed agreement."""
    call_command("seed_demo", cases=2, seed=8, stdout=io.StringIO())
    study = Study.objects.get(name=DEMO_STUDY)
    users = {a.user.username: a.user for a in study.assignments.select_related("user")}
    reading = Reading.objects.filter(case__study=study, reader=users["reader1"]).first()
    return study, users, reading


def test_every_page_has_the_policy(client, db) -> None:
    response = client.get(reverse("login"))
    csp = _directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'", "'wasm-unsafe-eval'"]  # no 'unsafe-inline', no eval
    assert csp["worker-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "blob:"]  # the annotation tools' cursors
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["style-src"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    policy = dict(item.split("=") for item in response["Permissions-Policy"].split(", "))
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "display-capture"):
        assert policy[feature] == "()"
    assert "no-store" in response["Cache-Control"]


def _urls(study, reading) -> dict[str, str]:
    s = {"pk": study.pk}
    return {
        "study page (worklist)": reverse("study", kwargs=s),
        "reading page": reverse("readers:detail", kwargs={"public_id": reading.public_id}),
        "score.json": reverse("readers:score", kwargs={"public_id": reading.public_id}),
        "agreement page": reverse("analytics:agreement", kwargs=s),
        "agreement status": reverse("analytics:status", kwargs=s),
        "measurements.csv": reverse("analytics:measurements_csv", kwargs=s),
        "measurements.json": reverse("analytics:measurements_json", kwargs=s),
        "statistics.csv": reverse("analytics:statistics_csv", kwargs=s),
        "statistics.json": reverse("analytics:statistics_json", kwargs=s),
        "SR of a reading": reverse(
            "analytics:reading_sr", kwargs={"pk": study.pk, "reading_public_id": reading.public_id}
        ),
        "SR zip": reverse("analytics:study_srs", kwargs=s),
        "report": reverse("analytics:report_html", kwargs=s),
        "report.pdf": reverse("analytics:report_pdf", kwargs=s),
    }


def test_readings_and_results_are_never_stored_by_a_browser(client, demo) -> None:
    study, users, reading = demo
    client.force_login(users["manager"])
    missing = {}
    for name, url in _urls(study, reading).items():
        response = client.get(url)
        assert response.status_code == 200, name
        assert "Content-Security-Policy" in response, name
        if "no-store" not in response.get("Cache-Control", ""):
            missing[name] = response.get("Cache-Control")
    assert missing == {}


def test_the_readers_own_pages_and_the_autosave_answer_are_not_stored(client, demo) -> None:
    study, users, reading = demo
    client.force_login(users["reader1"])
    pages = [reverse("study", kwargs={"pk": study.pk})]
    pages.append(reverse("readers:detail", kwargs={"public_id": reading.public_id}))
    for url in pages:
        assert "no-store" in client.get(url)["Cache-Control"]
    response = client.post(
        reverse("readers:rois", kwargs={"public_id": reading.public_id}),
        b"{",
        content_type="application/json",
    )
    assert response.status_code in {400, 403}
    assert "no-store" in response["Cache-Control"]


def test_the_reports_inline_style_carries_the_policys_nonce(client, demo) -> None:
    """The report is one self-contained document (the PDF is rendered from it): its ``<style>``
    is allowed by a per-response nonce, not by ``'unsafe-inline'``."""
    from readers.analysis.artifacts import files_build

    study, users, _ = demo
    files_build(study_pk=study.pk)  # the worker builds the report after the analysis (issue 13)
    client.force_login(users["manager"])
    response = client.get(reverse("analytics:report_html", kwargs={"pk": study.pk}))
    nonces = re.findall(r"<style nonce=\"([^\"]+)\">", response.content.decode())
    assert len(nonces) == 1
    assert f"'nonce-{nonces[0]}'" in _directives(response)["style-src"]
    assert "<style" not in response.content.decode().replace(f'<style nonce="{nonces[0]}">', "")


def test_figures_have_no_style_element_for_the_policy_to_block() -> None:
    """Matplotlib writes a ``<style>`` element into each SVG; inline in a page, the policy
    would block it. The figures carry the same rule as attributes of their root instead."""
    svg = scatter_svg([1, 2, 3], [1, 2, 4], x_label="a", y_label="b", title="t")
    assert "<style" not in svg
    assert svg.startswith("<svg ")
    assert 'stroke-linejoin="round"' in svg.split(">", 1)[0]


def test_dicomweb_images_keep_their_own_caching(client, demo) -> None:
    """Images are not readings: WADO-RS keeps its long private cache (docs/viewer.md)."""
    _, users, reading = demo
    client.force_login(users["reader1"])
    case = reading.case
    series = case.reading_series
    instance = series.instances.first()
    url = reverse(
        "dicomweb:instance",
        kwargs={
            "study_uid": case.study_instance_uid,
            "series_uid": series.series_instance_uid,
            "sop_uid": instance.sop_instance_uid,
        },
    )
    response = client.get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
