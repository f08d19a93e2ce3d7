"""The strata section of the agreement page and report: rows, explanations and the coloured plot.

Turns :func:`studies.stats.strata.stratify`'s document into formatted rows (ICC2 with its CI,
bias and limits of agreement, median and IQR of VBQ, each with its n; a stratum under ten
complete cases shows its note instead of the figures) and draws one Bland–Altman plot per
dimension with the strata in colour (:func:`studies.stats.plots.strata_bland_altman_svg`). Why a
module of its own: the page and the PDF show the same section, and it is the only part of the
report that needs both the strata document and the records' stratum values. No Django, no models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from readers.analysis.report_format import _estimate, fmt
from studies.stats.plots import strata_bland_altman_svg
from studies.stats.strata import plot_groups

EXPLANATIONS: Final = {
    "intro": (
        "VBQ depends on the scanner (one cohort: 2.77 at 1.5 T against 2.20 at 3 T) and readers "
        "may agree better on some images than on others, so the figures are repeated for each "
        "group of cases: by field strength and manufacturer (from the images’ headers) and by "
        "each case attribute imported with the reference standard."
    ),
    "icc": (
        "ICC2: how consistently different readers give the same case the same VBQ within the "
        "group (1 = always; above 0.75 is good, above 0.9 excellent, Koo & Li 2016)."
    ),
    "loa": (
        "Limits of agreement: in 95 % of cases two readers’ VBQ of the same case differ by no "
        "more than this (the bias is the average difference, first − second reader)."
    ),
    "distribution": (
        "Median VBQ with the middle half of the cases (IQR) and the range: a cut-off set in one "
        "group may not suit another whose VBQ runs higher or lower."
    ),
    "too_few": (
        "Groups with fewer than {min_cases} cases read by every reader are listed with their "
        "count but without ICC and limits: such estimates are too unstable to compare."
    ),
    "plot": (
        "Each point is one case read by two readers (every reader pair); lines: each group’s "
        "bias (solid) and limits of agreement (dashed) in its colour. Wider lines = readers "
        "agree less in that group."
    ),
}
"""One line each a clinician understands; the page, the PDF and the JSON download use them."""


def _interval(low: Any, high: Any, digits: int = 2) -> str:
    if fmt(low) == "–" or fmt(high) == "–":
        return "–"
    return f"{fmt(low, digits)} to {fmt(high, digits)}"


def _span(low: Any, high: Any) -> str:
    """A VBQ range, compact: "2.51–3.04" (VBQ is positive: no minus sign to confuse)."""
    if fmt(low) == "–" or fmt(high) == "–":
        return "–"
    return f"{fmt(low, 2)}–{fmt(high, 2)}"


def _row(stratum: Mapping[str, Any]) -> dict[str, Any]:
    icc = stratum.get("icc") or {}
    ba = stratum.get("bland_altman") or {}
    loa = ba.get("loa") or [None, None]
    dist = stratum.get("distribution") or {}
    return {
        "value": stratum.get("value", ""),
        "cases": stratum.get("cases", 0),
        "n": stratum.get("n", 0),
        "too_few": bool(stratum.get("too_few")),
        "note": stratum.get("note") or "",
        "icc2": _estimate(icc.get("ICC2")),
        "icc3": _estimate(icc.get("ICC3")),
        "bias": fmt(ba.get("bias")),
        "sd": fmt(ba.get("sd")),
        "loa": _interval(loa[0], loa[1], 3),
        "pairs": ba.get("pairs", 0),
        "dist_n": dist.get("n", 0),
        "median": fmt(dist.get("median"), 2),
        "iqr": _span(dist.get("q1"), dist.get("q3")),
        "range": _span(dist.get("min"), dist.get("max")),
    }


def strata_context(
    strata: Mapping[str, Any] | None, records: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The strata section, or None when the document has none (an analysis from before)."""
    if not strata or not strata.get("dimensions"):
        return None
    session = strata.get("session")
    with_limits_of = {
        d["name"]: {s["value"] for s in d.get("strata") or [] if not s.get("too_few")}
        for d in strata["dimensions"]
    }
    dimensions = []
    for dimension in strata["dimensions"]:
        rows = [_row(s) for s in dimension.get("strata") or []]
        figure = ""
        if len(rows) >= 2:
            figure = strata_bland_altman_svg(
                plot_groups(records, dimension["name"], session=session),
                title=f"Bland–Altman by {dimension['name'].lower()}, session {session}",
                with_limits=with_limits_of[dimension["name"]],
            )
        dimensions.append(
            {"name": dimension["name"], "note": dimension.get("note") or "", "rows": rows,
             "figure": figure}
        )  # fmt: skip
    min_cases = strata.get("min_cases", 10)
    return {
        "session": session,
        "readers": len(strata.get("readers") or []),
        "min_cases": min_cases,
        "dimensions": dimensions,
        "explanations": EXPLANATIONS
        | {"too_few": EXPLANATIONS["too_few"].format(min_cases=min_cases)},
    }
