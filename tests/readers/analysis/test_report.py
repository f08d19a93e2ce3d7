"""The printable agreement report: HTML and PDF rendered from a synthetic study (issue 6).

Seeded records of 12 cases x 3 readers x 2 sessions with level SIs (one excluded level, one
missing reading) go through the real ``analyse`` and ``evaluate``; the PDF's text is extracted
with pypdf and checked for the methods, the tables, the thresholds and the plots' titles and
axis labels.
"""

from __future__ import annotations

import io
import re
import urllib.request
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from pypdf import PdfReader

from readers.analysis.report import render_report_html, render_report_pdf, report_context
from studies.stats.agreement import analyse
from studies.stats.diagnostics import evaluate

READERS = ("Reader 1", "Reader 2", "Reader 3")
THRESHOLDS = {"screening": 2.95, "osteopenia": 3.0, "fracture risk": 3.05}
STUDY = {
    "name": "Lumbar VBQ reliability",
    "roi_statistic": "median",
    "level_aggregate": "median",
    "min_levels": 3,
    "sessions": 2,
    "thresholds": THRESHOLDS,
}
WHEN = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def synthetic_study(seed: int = 3, cases: int = 12) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Readings with reader noise and bias; Reader 2 excludes L4 of case 5; Reader 3 misses
    case 7 in session 2. Returns the records and a per-case reference standard."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(2.2, 3.8, cases)
    csf = rng.uniform(120, 220, cases)
    records = []
    for c in range(cases):
        levels = truth[c] * csf[c] * rng.normal(1, 0.05, 4)
        for r, reader in enumerate(READERS):
            for session in (1, 2):
                if c == 6 and r == 2 and session == 2:
                    continue
                si = levels * rng.normal(1 + 0.01 * r, 0.04, 4)
                row: dict[str, Any] = {"case": f"case-{c + 1:03d}", "reader": reader}
                row["session"] = session
                row.update({f"L{k + 1}": float(si[k]) for k in range(4)})
                row["CSF"] = float(csf[c] * rng.normal(1, 0.05))
                if c == 4 and r == 1:
                    row["L4"] = None
                measured = [row[f"L{k + 1}"] for k in range(4) if row[f"L{k + 1}"] is not None]
                row["vbq"] = float(np.median(measured) / row["CSF"])
                records.append(row)
    reference = {
        "t_score": (-1.8 * (truth - 2.9) + rng.normal(0, 0.6, cases)).tolist(),
        "osteoporosis": (truth + rng.normal(0, 0.3, cases) > 3.0).astype(float).tolist(),
    }
    return records, reference


@pytest.fixture(scope="module")
def context() -> dict[str, Any]:
    records, reference = synthetic_study()
    analysis = analyse(records, THRESHOLDS)
    cases = sorted({r["case"] for r in records})
    scores = [
        np.mean([r["vbq"] for r in records if r["case"] == case and r["session"] == 1])
        for case in cases
    ]
    diagnostics = evaluate(
        scores,
        continuous={"T-score": reference["t_score"]},
        binary={"osteoporosis": reference["osteoporosis"]},
        thresholds=THRESHOLDS,
    )
    diagnostics["score"] = "the mean VBQ of the readers in session 1"
    return report_context(
        study=STUDY, records=records, analysis=analysis, diagnostics=diagnostics, generated_at=WHEN
    )


@pytest.fixture(scope="module")
def html(context: dict[str, Any]) -> str:
    return render_report_html(context)


@pytest.fixture(scope="module")
def pdf(html: str) -> bytes:
    return render_report_pdf(html)


@pytest.fixture(scope="module")
def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return " ".join(text.split())


def test_context_counts_and_figures(context: dict[str, Any]) -> None:
    assert dict(context["counts"]) == {"Cases": 12, "Readers": 3, "Sessions": 2, "Readings": 71}
    sections = {s["id"]: s for s in context["figure_sections"]}
    assert set(sections) == {"fig-inter-1", "fig-inter-2", "fig-intra", "fig-levels", "fig-roc"}
    # One row (Bland–Altman + scatter) per reader pair and session, and per reader.
    assert [len(sections[f"fig-inter-{s}"]["rows"]) for s in (1, 2)] == [3, 3]
    assert all(len(row["figures"]) == 2 for row in sections["fig-intra"]["rows"])
    assert len(sections["fig-intra"]["rows"]) == 3
    # The figure caption's n is the table's n (complete cases of the session).
    session2 = context["sessions"][1]
    assert session2["n"] == 11
    assert "11 cases" in sections["fig-inter-2"]["rows"][0]["caption"]


def test_html_is_self_contained(html: str) -> None:
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "@page" in html
    assert "@media print" in html
    assert "counter(pages)" in html
    assert (
        html.count("<svg") == 3 * 2 + 3 * 2 + 3 * 2 + 3 + 1
    )  # pairs x 2 sessions, intra, levels, ROC
    # No external resource: every src/href is a fragment or data: URL.
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert all(ref.startswith(("#", "data:")) for ref in refs), refs
    assert "<link" not in html
    assert "<script" not in html


def test_pdf_states_methods_tables_thresholds_and_plots(pdf: bytes, pdf_text: str) -> None:
    assert pdf.startswith(b"%PDF-")
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert 3 <= pages <= 12
    for expected in (
        # Title block and counts
        "Lumbar VBQ reliability",
        "14 March 2025",
        # Methods
        "Shrout & Fleiss (1979)",
        "McGraw & Wong (1996)",
        "ICC1 one-way random effects",
        "ICC2 two-way random effects, absolute agreement",
        "ICC3 two-way mixed effects, consistency",
        "F distribution",
        "bias ± 1.96 sd",
        "Lin’s concordance correlation coefficient",
        "VBQ ≥ threshold",
        "Cohen’s kappa",
        "Fleiss’ kappa",
        "Nothing is imputed",
        "DeLong",
        "Youden",
        # Tables
        "Session 1: intraclass correlation of VBQ",
        "Session 2: intraclass correlation of VBQ",
        "ICC2k",
        "ICC3k",
        "Session 1: reader pairs",
        "Reader 1 – Reader 2",
        "Session 1: per-level signal intensity",
        "agreement on excluded levels",
        "Intra-reader repeatability",
        "Reference: osteoporosis",
        "T-score",
        # Thresholds
        "screening",
        "osteopenia",
        "fracture risk",
        "2.95",
        "3.05",
        # Plot titles and axis labels (SVG text stays text in the PDF)
        "Bland–Altman, session 1 (n = 12)",
        "Bland–Altman, session 2 (n = 11)",
        "Mean of Reader 1 and Reader 2",
        "VBQ, Reader 1",
        "VBQ, session 2",
        "L1–L4 SI, session 1",
        "ROC: osteoporosis",
        "1 − specificity (false-positive rate)",
        "identity (y = x)",
    ):
        assert expected in pdf_text, expected


def test_pdf_renderer_fetches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """External URLs in the HTML are refused before any request is made."""
    opened: list[Any] = []

    def spy(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(request)
        raise AssertionError("the PDF renderer tried to open a URL")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", spy)
    html = (
        '<!doctype html><html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css">'
        '</head><body><p>offline</p><img src="file:///etc/hostname">'
        '<img src="https://example.invalid/a.png"></body></html>'
    )
    pdf = render_report_pdf(html)
    assert pdf.startswith(b"%PDF-")
    assert opened == []


def test_minimal_study_without_levels_sessions_or_reference() -> None:
    """Two readers, one session, VBQ only, no diagnostics: no empty sections, no errors."""
    rng = np.random.default_rng(9)
    records = [
        {"case": f"c{c}", "reader": reader, "session": 1, "vbq": float(2.5 + rng.random())}
        for c in range(5)
        for reader in ("A", "B")
    ]
    records[-1]["vbq"] = None  # a reading without a score
    analysis = analyse(records, {"cut-off": 3.0})
    context = report_context(
        study=STUDY | {"sessions": 1, "thresholds": {"cut-off": 3.0}},
        records=records,
        analysis=analysis,
        diagnostics=None,
        generated_at=WHEN,
    )
    assert [s["id"] for s in context["figure_sections"]] == ["fig-inter-1"]
    assert context["intra_rows"] == []
    assert context["readings_without_vbq"] == 1
    html = render_report_html(context)
    assert "Bland–Altman, session 1 (n = 4)" in html
    assert "Intra-reader repeatability</h2>" not in html
    assert "Diagnostic accuracy</h2>" not in html
    assert "per-level signal intensity" not in html


def test_many_readers_limit_the_figures() -> None:
    rng = np.random.default_rng(10)
    readers = [f"R{i}" for i in range(1, 6)]  # 10 pairs
    records = [
        {"case": f"c{c}", "reader": r, "session": 1, "vbq": float(2.5 + rng.random())}
        for c in range(6)
        for r in readers
    ]
    context = report_context(
        study=STUDY,
        records=records,
        analysis=analyse(records, THRESHOLDS),
        diagnostics=None,
        generated_at=WHEN,
    )
    (section,) = context["figure_sections"]
    assert len(section["rows"]) == 6
    assert "4 other pair(s)" in section["note"]
    assert len(context["sessions"][0]["pair_rows"]) == 10  # the tables keep every pair
