"""The printable agreement report of a reader study: HTML with print CSS, and a PDF (issue 6).

What a VBQ reliability paper reports, in one document a study manager can file or send: the
methods (measurement settings, the ICC forms by name, Bland–Altman, CCC, kappa per threshold,
how missing readings and excluded levels are handled, the diagnostic methods), the tables, and
the plots, every figure with the count it was computed from.

Inputs are plain data, never models: ``study`` (settings), ``records`` (the rows given to
:func:`studies.stats.agreement.analyse`), ``analysis`` (its result) and optionally ``diagnostics``
(:func:`studies.stats.diagnostics.evaluate`). So the report can be rebuilt from a download, tested
without a database, and rendered in a Celery task. Django is used for the template only.

Layout decisions:

- **Page count stays sane.** A pair of readers gets one row (Bland–Altman beside the scatter)
  per session; intra-reader rows likewise; one pooled L1–L4 SI scatter per pair (session 1).
  With many readers the number of pairs grows quadratically, so at most
  :data:`~readers.analysis.report_figures.MAX_PAIR_FIGURES` pairs per session are drawn; the
  tables always hold every pair and the report says when figures were left out.
- **Figures use the analysis' cases.** Inter-reader plots use the cases that every reader of
  the session scored (the same complete-case rule as the statistics), so the ``n`` on a plot
  equals the ``n`` in the table beside it.
- **One concern a module.** Number formatting is :mod:`.report_format`, the tables
  :mod:`.report_tables`, the figures :mod:`.report_figures`; this module assembles the context
  and renders it.
- **No network.** The HTML is self-contained (inline CSS and SVG); the PDF renderer gets a URL
  fetcher that refuses every scheme except ``data:``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from django.template.loader import render_to_string

from readers.analysis.report_figures import (
    MAX_PAIR_FIGURES,
    _index,
    _inter_figures,
    _intra_figures,
    _level_figures,
    _roc_figures,
)
from readers.analysis.report_format import fmt
from readers.analysis.report_strata import strata_context
from readers.analysis.report_tables import (
    CATEGORICAL_METHODS,
    MEASUREMENT_ERROR_METHODS,
    PLANNING_METHODS,
    TARGET_ICC_WIDTH,
    _diagnostic_tables,
    _exclusion_rows,
    _icc_rows,
    _intra_rows,
    _kappa_rows,
    _level_rows,
    _measurement_error,
    _pair_rows,
    _precision,
    _weighted_kappa_rows,
    sdc_sentence,
)

TEMPLATE: Final = "reports/agreement_report.html"


# --- public API ------------------------------------------------------------------------------


def _generated(when: datetime) -> str:
    text = f"{when.day} {when:%B %Y, %H:%M}"
    zone = when.tzname()
    return f"{text} {zone}" if zone else text


def report_context(
    *,
    study: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    analysis: Mapping[str, Any],
    diagnostics: Mapping[str, Any] | None,
    generated_at: datetime,
) -> dict[str, Any]:
    """Everything the template needs, numbers already formatted and plots already drawn.

    ``study``: ``{"name", "roi_statistic", "level_aggregate", "min_levels", "sessions",
    "thresholds": {name: value}}`` and optionally ``"target_ci_width"`` (the study's target
    width of the ICC2 interval for "precision so far"; 0.2 when absent). ``records``: the rows
    given to ``analyse`` (``case``, ``reader``, ``session``, ``vbq``, optional ``L1``…``L4``,
    ``CSF``, ``strata``). ``diagnostics``: the result of
    :func:`studies.stats.diagnostics.evaluate`, optionally with a ``"score"`` key saying which
    VBQ per case was evaluated (e.g. "mean of the readers, session 1").
    """
    thresholds = {str(k): float(v) for k, v in (study.get("thresholds") or {}).items()}
    values = _index(records)
    blocks = list(analysis.get("inter_reader_by_session") or [analysis["inter_reader"]])
    readers = list(analysis.get("readers") or [])
    digits = 3

    sessions = []
    figure_sections = []
    for block in blocks:
        vbq_by_reader = block.get("vbq_by_reader") or {}
        sessions.append(
            {
                "session": block["session"],
                "readers": ", ".join(block.get("readers") or []),
                "n": block.get("n", 0),
                "cases_read": block.get("cases_read", 0),
                "cases_read_by_all": block.get("cases_read_by_all", 0),
                "vbq_by_reader": [f"{r}: {k}" for r, k in vbq_by_reader.items()],
                "icc_rows": _icc_rows(block.get("icc") or {}),
                "pair_rows": _pair_rows(block.get("pairs") or [], digits),
                "kappa_rows": _kappa_rows(block.get("kappa") or {}),
                "weighted_kappa_rows": _weighted_kappa_rows(block),
                "measurement_error": _measurement_error(block, "different readers"),
                "level_rows": _level_rows(block.get("levels") or {}),
                "exclusion_rows": _exclusion_rows(block.get("exclusions") or {}),
            }
        )
        rows, left_out = _inter_figures(values, block, thresholds)
        figure_sections.append(
            {
                "id": f"fig-inter-{block['session']}",
                "title": f"Inter-reader agreement, session {block['session']}",
                "note": (
                    f"Figures for the first {MAX_PAIR_FIGURES} reader pairs; the "
                    f"{left_out} other pair(s) are in the tables."
                    if left_out
                    else ""
                ),
                "rows": rows,
            }
        )
    intra = analysis.get("intra_reader") or {}
    if intra:
        figure_sections.append(
            {
                "id": "fig-intra",
                "title": "Intra-reader agreement (repeatability)",
                "note": "",
                "rows": _intra_figures(values, intra, thresholds),
            }
        )
    level_rows = _level_figures(values, blocks[0]) if blocks else []
    if level_rows:
        figure_sections.append(
            {
                "id": "fig-levels",
                "title": f"Signal intensity per level, session {blocks[0]['session']}",
                "note": "",
                "rows": level_rows,
            }
        )
    diagnostic_tables = None
    if diagnostics:
        diagnostic_tables = _diagnostic_tables(diagnostics)
        roc_rows = _roc_figures(diagnostics)
        if roc_rows:
            figure_sections.append(
                {"id": "fig-roc", "title": "Diagnostic accuracy", "note": "", "rows": roc_rows}
            )

    n_sessions = len(analysis.get("sessions") or [])
    has_levels = any(s["level_rows"] for s in sessions)
    return {
        "title": f"Agreement report: {study.get('name', 'VBQ reader study')}",
        "study_name": study.get("name", ""),
        "generated": _generated(generated_at),
        "generated_iso": generated_at.isoformat(timespec="seconds"),
        "counts": [
            ("Cases", analysis.get("cases", 0)),
            ("Readers", len(readers)),
            ("Sessions", n_sessions),
            ("Readings", analysis.get("readings", 0)),
        ],
        "readers": ", ".join(readers),
        "readings_without_vbq": analysis.get("readings_without_vbq", 0),
        "settings": {
            "roi_statistic": study.get("roi_statistic", "median"),
            "level_aggregate": study.get("level_aggregate", "median"),
            "min_levels": study.get("min_levels", 3),
            "sessions": study.get("sessions", n_sessions),
        },
        "thresholds": [(name, fmt(value, 2)) for name, value in thresholds.items()],
        "sessions": sessions,
        "has_levels": has_levels,
        "intra_rows": _intra_rows(intra, digits),
        "intra_sdc": _intra_sdc(intra),
        "precision": _precision(blocks[0], _target(study)) if blocks else None,
        "strata": strata_context(analysis.get("strata"), records),
        "methods": {
            "measurement_error": MEASUREMENT_ERROR_METHODS,
            "categorical": CATEGORICAL_METHODS,
            "planning": PLANNING_METHODS,
        },
        "diagnostics": diagnostic_tables,
        "figure_sections": figure_sections,
        "max_pair_figures": MAX_PAIR_FIGURES,
    }


def _target(study: Mapping[str, Any]) -> float:
    """The study's target width of the ICC2 interval (0.2, Bonett's example, when not set)."""
    return float(study.get("target_ci_width") or TARGET_ICC_WIDTH)


def _intra_sdc(intra: Mapping[str, Any]) -> dict[str, Any] | None:
    """The intra-reader SDC line: the largest SDC of any reader (the conservative figure)."""
    values = [
        float(sdc)
        for block in intra.values()
        for comparison in block.get("by_session") or [block]
        if isinstance(sdc := (comparison.get("sdc") or {}).get("agreement"), int | float)
    ]
    if not values:
        return None
    return {
        "sdc": fmt(max(values)),
        "sentence": sdc_sentence(max(values), "one reader measures twice"),
    }


def render_report_html(context: Mapping[str, Any]) -> str:
    """The self-contained HTML report (inline CSS and SVG, print rules for paged media)."""
    html: str = render_to_string(TEMPLATE, dict(context))
    return html


def render_report_pdf(html: str) -> bytes:
    """The PDF of :func:`render_report_html`'s output, rendered by WeasyPrint offline.

    The URL fetcher allows the ``data:`` scheme only: the report has no external resources, and
    a template mistake (or a value containing a URL) must not make the server fetch anything.
    """
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"}, timeout=1, allow_redirects=False)
    document = HTML(string=svg_as_images(html), base_url=None, url_fetcher=fetcher)
    pdf: bytes = document.write_pdf()
    return pdf


_INLINE_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


def svg_as_images(html: str) -> str:
    """Inline ``<svg>`` elements as ``<img src="data:image/svg+xml;base64,…">``, for WeasyPrint.

    WeasyPrint runs the HTML CSS cascade over an inline SVG's elements and logs a warning for
    every SVG presentation property it does not know as CSS (thousands per report), although
    its SVG renderer then draws them correctly. The same SVG given as an image is drawn by the
    same renderer, text still as text, without that noise. The browser HTML keeps the inline
    SVG.
    """

    def image(match: re.Match[str]) -> str:
        data = base64.b64encode(match[0].encode("utf-8")).decode("ascii")
        return f'<img class="svg" alt="" src="data:image/svg+xml;base64,{data}">'

    return _INLINE_SVG.sub(image, html)
