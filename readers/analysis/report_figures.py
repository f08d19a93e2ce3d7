"""The figures of the agreement report: Bland–Altman, scatter, per-level SI and ROC plots.

The figures are drawn from the records (the rows given to :func:`studies.stats.agreement.analyse`)
with the same complete-case rule as the statistics, so the ``n`` on a plot equals the ``n`` in
the table beside it; the SVG itself comes from :mod:`studies.stats.plots`. Why a module of its
own: it is the only part of the report that reads the records and the one that bounds the page
count (:data:`MAX_PAIR_FIGURES` reader pairs per session). No Django, no models.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any, Final

from studies.stats.plots import bland_altman_svg, levels_scatter_svg, roc_svg, scatter_svg
from studies.vocabulary import LABELS, LEVELS

MAX_PAIR_FIGURES: Final = 6


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
        for column in ("vbq", *LABELS):
            value = _number(record.get(column))
            if math.isfinite(value):
                table[session][column][case][reader] = value
    return table


def _complete(by_case: Mapping[str, Mapping[str, float]], readers: Sequence[str]) -> list[str]:
    """Cases where every reader has a value: the analysis' complete-case rule."""
    return sorted(case for case, row in by_case.items() if all(r in row for r in readers))


# --- figures ---------------------------------------------------------------------------------


def _figure_row(caption: str, *svgs: str) -> dict[str, Any]:
    return {"caption": caption, "figures": list(svgs)}


def _vbq_pair_row(
    caption: str,
    first: tuple[str, Sequence[float]],
    second: tuple[str, Sequence[float]],
    subject: str,
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    """One comparison of two VBQ series: its Bland–Altman plot beside its scatter.

    Two readers in one session (inter-reader) and one reader in two sessions (intra-reader) are
    the same comparison with other names: ``first`` and ``second`` are (name, values) with the
    values in the same case order, ``subject`` is what both plots are titled by.
    """
    (first_name, x), (second_name, y) = first, second
    return _figure_row(
        caption,
        bland_altman_svg(
            x,
            y,
            first_label=first_name,
            second_label=second_name,
            title=f"Bland–Altman, {subject}",
        ),
        scatter_svg(
            x,
            y,
            x_label=f"VBQ, {first_name}",
            y_label=f"VBQ, {second_name}",
            title=f"VBQ, {subject}",
            thresholds=thresholds,
        ),
    )


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
            _vbq_pair_row(
                f"{label}: VBQ of the {len(cases)} cases scored by every reader of the session.",
                (first, x),
                (second, y),
                f"session {session}",
                thresholds,
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
                _vbq_pair_row(
                    f"{label}: VBQ of the {len(cases)} cases this reader scored in both sessions.",
                    (f"session {s1}", x),
                    (f"session {s2}", y),
                    reader,
                    thresholds,
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
