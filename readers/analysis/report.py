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
  :data:`MAX_PAIR_FIGURES` pairs per session are drawn; the tables always hold every pair and
  the report says when figures were left out.
- **Figures use the analysis' cases.** Inter-reader plots use the cases that every reader of
  the session scored (the same complete-case rule as the statistics), so the ``n`` on a plot
  equals the ``n`` in the table beside it.
- **No network.** The HTML is self-contained (inline CSS and SVG); the PDF renderer gets a URL
  fetcher that refuses every scheme except ``data:``.
"""

from __future__ import annotations

import base64
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import combinations
from typing import Any, Final

from django.template.loader import render_to_string

from studies.stats.plots import bland_altman_svg, levels_scatter_svg, roc_svg, scatter_svg

TEMPLATE: Final = "reports/agreement_report.html"
MAX_PAIR_FIGURES: Final = 6
LEVELS: Final = ("L1", "L2", "L3", "L4")
SI_COLUMNS: Final = (*LEVELS, "CSF")

ICC_MODELS: Final = {
    "ICC1": ("ICC(1,1)", "One-way random effects, single reader"),
    "ICC2": ("ICC(2,1)", "Two-way random effects, absolute agreement, single reader"),
    "ICC3": ("ICC(3,1)", "Two-way mixed effects, consistency, single reader"),
    "ICC1k": ("ICC(1,k)", "One-way random effects, mean of k readers"),
    "ICC2k": ("ICC(2,k)", "Two-way random effects, absolute agreement, mean of k readers"),
    "ICC3k": ("ICC(3,k)", "Two-way mixed effects, consistency, mean of k readers"),
}

_MINUS: Final = "\u2212"


# --- number formatting -----------------------------------------------------------------------


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: fixed decimals, a typographic minus, an en dash when undefined."""
    if not _finite(value):
        return "–"
    text = f"{float(value):.{digits}f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    return text.replace("-", _MINUS)


def ci(interval: Sequence[Any] | None, digits: int = 3) -> str:
    """``[lo, hi]`` or an empty string when the interval is not estimable."""
    if not interval or len(interval) != 2 or not all(_finite(v) for v in interval):
        return ""
    return f"[{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]"


def p_value(value: Any) -> str:
    if not _finite(value):
        return "–"
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def _cell(value: Any, interval: Sequence[Any] | None = None, digits: int = 3) -> dict[str, str]:
    return {"value": fmt(value, digits), "ci": ci(interval, digits)}


def _estimate(block: Mapping[str, Any] | None) -> dict[str, str]:
    """A ``{"value": ..., "ci95": [lo, hi]}`` statistic of the analysis (missing: dashes)."""
    block = block or {}
    return _cell(block.get("value"), block.get("ci95"))


def _pair_name(readers: Sequence[str]) -> str:
    return f"{readers[0]} – {readers[1]}"


# --- records ---------------------------------------------------------------------------------


def _number(value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


Values = dict[int, dict[str, dict[str, dict[str, float]]]]
"""session → column → case → reader → value (finite values only)."""


def _index(records: Sequence[Mapping[str, Any]]) -> Values:
    table: Values = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for record in records:
        session = int(record["session"])
        case, reader = str(record["case"]).strip(), str(record["reader"]).strip()
        for column in ("vbq", *SI_COLUMNS):
            value = _number(record.get(column))
            if math.isfinite(value):
                table[session][column][case][reader] = value
    return table


def _complete(by_case: Mapping[str, Mapping[str, float]], readers: Sequence[str]) -> list[str]:
    """Cases where every reader has a value: the analysis' complete-case rule."""
    return sorted(case for case, row in by_case.items() if all(r in row for r in readers))


# --- tables ----------------------------------------------------------------------------------


def _icc_rows(icc: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, (notation, model) in ICC_MODELS.items():
        form = icc.get(name) or {}
        rows.append(
            {
                "name": name,
                "notation": notation,
                "model": model,
                **_estimate(form),
                "F": fmt(form.get("F"), 2),
                "df": f"{form.get('df1', '–')}, {form.get('df2', '–')}",
                "p": p_value(form.get("pval")),
            }
        )
    return rows


def _pair_rows(pairs: Sequence[Mapping[str, Any]], digits: int) -> list[dict[str, Any]]:
    rows = []
    for pair in pairs:
        ba = pair.get("bland_altman") or {}
        loa = ba.get("loa") or [None, None]
        loa_ci = ba.get("loa_ci95") or [None, None]
        slope = (ba.get("proportional_bias") or {}).get("slope")
        slope_p = (ba.get("proportional_bias") or {}).get("p")
        concordance = pair.get("ccc") or {}
        correlation = pair.get("pearson") or {}
        rows.append(
            {
                "pair": _pair_name(pair["readers"]),
                "n": pair.get("n", 0),
                "bias": _cell(ba.get("bias"), ba.get("bias_ci95"), digits),
                "sd": fmt(ba.get("sd"), digits),
                "loa_lower": _cell(loa[0], loa_ci[0], digits),
                "loa_upper": _cell(loa[1], loa_ci[1], digits),
                "ccc": _estimate(concordance),
                "pearson": _estimate(correlation),
                "slope": fmt(slope, 3),
                "slope_p": p_value(slope_p),
            }
        )
    return rows


def _kappa_rows(kappa: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, block in kappa.items():
        rows.append(
            {
                "name": name,
                "threshold": fmt(block.get("threshold"), 2),
                "n": block.get("n", 0),
                "fleiss": fmt(block.get("fleiss")),
                "positive": [f"{r}: {k}" for r, k in (block.get("positive") or {}).items()],
                "pairs": [
                    {
                        "pair": _pair_name(p["readers"]),
                        "cohen": fmt(p.get("cohen")),
                        "agreement": fmt(100 * p["agreement"], 0)
                        if _finite(p.get("agreement"))
                        else "–",
                    }
                    for p in block.get("pairs") or []
                ],
            }
        )
    return rows


def _level_rows(levels: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for column in SI_COLUMNS:
        block = levels.get(column)
        if not block:
            continue
        icc = block.get("icc") or {}
        rows.append(
            {
                "column": column,
                "n": block.get("n", 0),
                "icc1": _estimate(icc.get("ICC1")),
                "icc2": _estimate(icc.get("ICC2")),
                "icc3": _estimate(icc.get("ICC3")),
                "ccc": [
                    {
                        "pair": _pair_name(p["readers"]),
                        "value": fmt((p.get("ccc") or {}).get("value")),
                    }
                    for p in block.get("pairs") or []
                ],
            }
        )
    return rows


def _exclusion_rows(exclusions: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for level in LEVELS:
        block = exclusions.get(level)
        if not block:
            continue
        agreements = [
            p["agreement"] for p in block.get("pairs") or [] if _finite(p.get("agreement"))
        ]
        rows.append(
            {
                "level": level,
                "n": block.get("n", 0),
                "excluded": [f"{r}: {k}" for r, k in (block.get("excluded") or {}).items()],
                "total": sum((block.get("excluded") or {}).values()),
                "agreement": (
                    f"{fmt(100 * min(agreements), 0)}–{fmt(100 * max(agreements), 0)} %"
                    if agreements and min(agreements) != max(agreements)
                    else (f"{fmt(100 * agreements[0], 0)} %" if agreements else "–")
                ),
                "fleiss": fmt(block.get("fleiss")),
            }
        )
    return rows


def _intra_rows(intra: Mapping[str, Any], digits: int) -> list[dict[str, Any]]:
    rows = []
    for reader, block in intra.items():
        for comparison in block.get("by_session") or [block]:
            icc = comparison.get("icc") or {}
            ba = comparison.get("bland_altman") or {}
            loa = ba.get("loa") or [None, None]
            concordance = comparison.get("ccc") or {}
            sessions = comparison.get("sessions") or [1, 2]
            rows.append(
                {
                    "reader": reader,
                    "sessions": f"{sessions[0]} vs {sessions[1]}",
                    "n": comparison.get("n", 0),
                    "icc2": _estimate(icc.get("ICC2")),
                    "icc3": _estimate(icc.get("ICC3")),
                    "bias": _cell(ba.get("bias"), ba.get("bias_ci95"), digits),
                    "loa": f"{fmt(loa[0], digits)} to {fmt(loa[1], digits)}",
                    "ccc": _estimate(concordance),
                    "kappa": [
                        f"{name}: {fmt(k.get('cohen'))}"
                        for name, k in (comparison.get("kappa") or {}).items()
                    ],
                }
            )
    return rows


def _diagnostic_tables(diagnostics: Mapping[str, Any]) -> dict[str, Any]:
    continuous = [
        {
            "name": name,
            "n": block.get("n", 0),
            "pearson": _estimate(block.get("pearson")),
            "pearson_p": p_value((block.get("pearson") or {}).get("p")),
            "spearman": fmt((block.get("spearman") or {}).get("value")),
            "spearman_p": p_value((block.get("spearman") or {}).get("p")),
        }
        for name, block in (diagnostics.get("continuous") or {}).items()
    ]
    binary = []
    for name, block in (diagnostics.get("binary") or {}).items():
        auc = block.get("auc") or {}
        youden = block.get("youden") or {}
        binary.append(
            {
                "name": name,
                "n": block.get("n", 0),
                "n_positive": block.get("n_positive", 0),
                "n_negative": block.get("n_negative", 0),
                "auc": _cell(auc.get("auc"), auc.get("ci95")),
                "youden": {
                    "cutoff": fmt(youden.get("cutoff"), 3),
                    "j": fmt(youden.get("j")),
                    **{k: fmt(youden.get(k)) for k in ("sensitivity", "specificity", "ppv", "npv")},
                },
                "thresholds": [
                    {
                        "name": label,
                        "threshold": fmt(t.get("threshold"), 2),
                        "n": t.get("n", 0),
                        "counts": " / ".join(str(t.get(k, 0)) for k in ("tp", "fp", "tn", "fn")),
                        **{
                            k: fmt(t.get(k))
                            for k in ("sensitivity", "specificity", "ppv", "npv", "accuracy")
                        },
                    }
                    for label, t in (block.get("thresholds") or {}).items()
                ],
            }
        )
    return {
        "n_cases": diagnostics.get("n_cases", 0),
        "score": diagnostics.get("score") or "the VBQ score of each case",
        "continuous": continuous,
        "binary": binary,
    }


# --- figures ---------------------------------------------------------------------------------


def _figure_row(caption: str, *svgs: str) -> dict[str, Any]:
    return {"caption": caption, "figures": list(svgs)}


def _inter_figures(
    values: Values, block: Mapping[str, Any], thresholds: Mapping[str, float]
) -> tuple[list[dict[str, Any]], int]:
    session = int(block["session"])
    readers = list(block.get("readers") or [])
    by_case = values.get(session, {}).get("vbq", {})
    cases = _complete(by_case, readers)
    pairs = list(combinations(readers, 2))
    rows = []
    for first, second in pairs[:MAX_PAIR_FIGURES]:
        x = [by_case[c][first] for c in cases]
        y = [by_case[c][second] for c in cases]
        label = f"{first} vs {second}, session {session}"
        rows.append(
            _figure_row(
                f"{label}: VBQ of the {len(cases)} cases scored by every reader of the session.",
                bland_altman_svg(
                    x,
                    y,
                    first_label=first,
                    second_label=second,
                    title=f"Bland–Altman, session {session}",
                ),
                scatter_svg(
                    x,
                    y,
                    x_label=f"VBQ, {first}",
                    y_label=f"VBQ, {second}",
                    title=f"VBQ, session {session}",
                    thresholds=thresholds,
                ),
            )
        )
    return rows, max(0, len(pairs) - MAX_PAIR_FIGURES)


def _intra_figures(
    values: Values, intra: Mapping[str, Any], thresholds: Mapping[str, float]
) -> list[dict[str, Any]]:
    rows = []
    for reader, block in intra.items():
        for comparison in block.get("by_session") or [block]:
            s1, s2 = (comparison.get("sessions") or [1, 2])[:2]
            first = values.get(int(s1), {}).get("vbq", {})
            later = values.get(int(s2), {}).get("vbq", {})
            cases = sorted(c for c in first if reader in first[c] and reader in later.get(c, {}))
            x = [first[c][reader] for c in cases]
            y = [later[c][reader] for c in cases]
            label = f"{reader}, session {s1} vs {s2}"
            rows.append(
                _figure_row(
                    f"{label}: VBQ of the {len(cases)} cases this reader scored in both sessions.",
                    bland_altman_svg(
                        x,
                        y,
                        first_label=f"session {s1}",
                        second_label=f"session {s2}",
                        title=f"Bland–Altman, {reader}",
                    ),
                    scatter_svg(
                        x,
                        y,
                        x_label=f"VBQ, session {s1}",
                        y_label=f"VBQ, session {s2}",
                        title=f"VBQ, {reader}",
                        thresholds=thresholds,
                    ),
                )
            )
    return rows


def _level_figures(values: Values, block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Pooled L1–L4 SI scatter per reader pair (two per row), for one session."""
    session = int(block["session"])
    readers = list(block.get("readers") or [])
    columns = values.get(session, {})
    if not any(columns.get(level) for level in LEVELS):
        return []
    svgs = []
    for first, second in list(combinations(readers, 2))[:MAX_PAIR_FIGURES]:
        series = {}
        for level in LEVELS:
            by_case = columns.get(level, {})
            cases = _complete(by_case, readers)
            series[level] = (
                [by_case[c][first] for c in cases],
                [by_case[c][second] for c in cases],
            )
        svgs.append(
            levels_scatter_svg(
                series,
                x_label=f"SI, {first}",
                y_label=f"SI, {second}",
                title=f"L1–L4 SI, session {session}",
            )
        )
    rows = []
    for i in range(0, len(svgs), 2):
        rows.append(
            _figure_row(
                f"Signal intensity of each level, session {session}: cases where every reader "
                "measured the level (excluded levels are left out).",
                *svgs[i : i + 2],
            )
        )
    return rows


def _roc_figures(diagnostics: Mapping[str, Any]) -> list[dict[str, Any]]:
    svgs = []
    for name, block in (diagnostics.get("binary") or {}).items():
        auc = block.get("auc") or {}
        svgs.append(
            roc_svg(
                block.get("roc") or [],
                auc=auc.get("auc"),
                ci95=auc.get("ci95"),
                youden=block.get("youden"),
                title=f"ROC: {name}",
                counts=(int(block.get("n_positive", 0)), int(block.get("n_negative", 0))),
            )
        )
    return [
        _figure_row("ROC curves against the binary reference standards.", *svgs[i : i + 2])
        for i in range(0, len(svgs), 2)
    ]


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
    "thresholds": {name: value}}``. ``records``: the rows given to ``analyse`` (``case``,
    ``reader``, ``session``, ``vbq``, optional ``L1``…``L4``, ``CSF``). ``diagnostics``: the
    result of :func:`studies.stats.diagnostics.evaluate`, optionally with a ``"score"`` key saying
    which VBQ per case was evaluated (e.g. "mean of the readers, session 1").
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
        "diagnostics": diagnostic_tables,
        "figure_sections": figure_sections,
        "max_pair_figures": MAX_PAIR_FIGURES,
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
