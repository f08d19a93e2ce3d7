"""Agreement and VBQ per stratum: field strength, manufacturer, imported case attributes (issue 14).

Why: VBQ depends on the scanner — one cohort gave a mean VBQ of 2.77 at 1.5 T and 2.20 at 3 T —
and readers may agree better on one vendor's images than on another's. A pooled ICC hides
both. So, for every stratum of every dimension (the field strength and the manufacturer of the
case's reading series, and each attribute the manager imported with the reference standard),
this module reports the inter-reader ICC (ICC2 and ICC3 with 95 % CIs,
:func:`~studies.stats.estimators.icc`),
the Bland–Altman bias and limits of agreement, and the VBQ distribution, each with its number
of cases.

Rules, the same as the pooled analysis of :mod:`studies.stats.agreement`:

- one session (the first by default): the headline inter-reader figures are per session too;
- the ICC and Bland–Altman use the stratum's **complete cases** (every reader of the session
  scored it), ``n``; with fewer than :data:`MIN_CASES` of them the stratum is still listed, with
  its ``n`` and the note "too few cases (n = …) for a reliable estimate" instead of the figures;
- Bland–Altman with two readers is the usual first − second (readers sorted by name); with more,
  the differences of every reader pair are pooled, so the limits say how far apart two readers'
  VBQ of the same case may lie (the bias is then the mean over the pairs);
- the distribution is over each case's mean VBQ across the session's readers (every case of
  the stratum with at least one score), as median, quartiles (IQR) and range.

Records are the analysis' long-format rows with a ``"strata"`` mapping (dimension → value text)
added by the site (``readers.analysis.services``); a record without it counts as "unknown".
``manage.py agreement`` does not stratify (its output is a contract, spec §3/§6).

Pure: numpy only, no Django.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any, Final

import numpy as np

from studies.stats.estimators import LOA_Z, FloatArray, icc
from studies.stats.jsonable import json_ready

FIELD_STRENGTH: Final = "Field strength"
MANUFACTURER: Final = "Manufacturer"
HEADER_DIMENSIONS: Final = (FIELD_STRENGTH, MANUFACTURER)
"""The dimensions taken from the stored DICOM headers; imported attributes follow them."""
UNKNOWN: Final = "unknown"
MIN_CASES: Final = 10
"""Below this many complete cases a stratum's ICC and limits of agreement are not reported."""
MAX_STRATA: Final = 8
"""A dimension with more values than this (an attribute such as age in years) is not split."""

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def field_strength_label(tesla: Any) -> str:
    """``1.5`` → "1.5 T", ``3.0`` → "3 T", missing or not a number → "unknown"."""
    try:
        value = float(tesla)
    except (TypeError, ValueError):
        return UNKNOWN
    if not math.isfinite(value) or value <= 0:
        return UNKNOWN
    return f"{round(value, 2):g} T"


def manufacturer_label(text: Any) -> str:
    """The header's Manufacturer, trimmed; empty → "unknown"."""
    value = " ".join(str(text or "").split())
    return value or UNKNOWN


def too_few_note(n: int) -> str:
    """What a stratum with fewer than :data:`MIN_CASES` complete cases says instead of figures."""
    return f"too few cases (n = {n}) for a reliable estimate"


def _order(value: str) -> tuple[int, float, str]:
    """Unknown last; values that start with a number (1.5 T, 3 T) by that number."""
    if value == UNKNOWN:
        return (2, 0.0, "")
    match = _NUMBER.match(value)
    if match:
        return (0, float(match[1]), value.casefold())
    return (1, 0.0, value.casefold())


def _distribution(values: FloatArray) -> dict[str, Any]:
    if values.size == 0:
        return {"n": 0, "median": None, "q1": None, "q3": None, "min": None, "max": None}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {
        "n": int(values.size),
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def pair_differences(complete: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Means and differences (first − second) of every reader pair over the complete cases."""
    k = complete.shape[1] if complete.ndim == 2 else 0
    pairs = list(combinations(range(k), 2))
    if not pairs or complete.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    first = complete[:, [i for i, _ in pairs]]
    second = complete[:, [j for _, j in pairs]]
    return ((first + second) / 2.0).ravel(), (first - second).ravel()


def _bland_altman(complete: FloatArray) -> dict[str, Any]:
    _, diffs = pair_differences(complete)
    k = complete.shape[1]
    if diffs.size < 2:
        return {"bias": None, "sd": None, "loa": [None, None], "pairs": 0, "differences": 0}
    bias = float(diffs.mean())
    sd = float(diffs.std(ddof=1))
    return {
        "bias": bias,
        "sd": sd,
        "loa": [bias - LOA_Z * sd, bias + LOA_Z * sd],
        "pairs": k * (k - 1) // 2,
        "differences": int(diffs.size),
    }


def _stratum(value: str, matrix: FloatArray, min_cases: int) -> dict[str, Any]:
    """One stratum's figures from its ``cases × readers`` VBQ matrix (NaN = no score)."""
    scored = np.isfinite(matrix)
    complete = matrix[scored.all(axis=1)]
    n = int(complete.shape[0])
    with np.errstate(invalid="ignore"):
        case_means = np.nanmean(np.where(scored, matrix, np.nan), axis=1)[scored.any(axis=1)]
    out: dict[str, Any] = {
        "value": value,
        "cases": int(matrix.shape[0]),
        "n": n,
        "distribution": _distribution(case_means),
        "too_few": n < min_cases,
        "note": too_few_note(n) if n < min_cases else "",
        "icc": None,
        "bland_altman": None,
    }
    if n >= min_cases and complete.shape[1] >= 2:
        forms = icc(complete)
        out["icc"] = {
            form: {"value": forms[form]["value"], "ci95": forms[form]["ci95"]}
            for form in ("ICC2", "ICC3")
        }
        out["bland_altman"] = _bland_altman(complete)
    return out


def _session_matrix(
    records: Iterable[Mapping[str, Any]], session: int | None
) -> tuple[int | None, list[str], list[str], FloatArray, dict[str, dict[str, str]]]:
    """The session's ``cases × readers`` VBQ matrix and each case's stratum values."""
    rows = list(records)
    sessions = sorted({int(r["session"]) for r in rows})
    if session is None:
        session = sessions[0] if sessions else None
    chosen = [r for r in rows if session is not None and int(r["session"]) == session]
    cases = sorted({str(r["case"]) for r in chosen})
    readers = sorted({str(r["reader"]) for r in chosen})
    case_index = {c: i for i, c in enumerate(cases)}
    reader_index = {r: j for j, r in enumerate(readers)}
    matrix = np.full((len(cases), len(readers)), np.nan)
    strata: dict[str, dict[str, str]] = {}
    for r in chosen:
        value = r.get("vbq")
        try:
            number = float(value) if value is not None and value != "" else math.nan
        except (TypeError, ValueError):
            number = math.nan
        case = str(r["case"])
        matrix[case_index[case], reader_index[str(r["reader"])]] = number
        if case not in strata:  # a case's strata are the same on each of its records
            strata[case] = {str(k): str(v) for k, v in (r.get("strata") or {}).items()}
    return session, cases, readers, matrix, strata


def dimensions_of(strata: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The header dimensions first, then the imported attributes by name."""
    names = {name for values in strata.values() for name in values}
    return [*HEADER_DIMENSIONS, *sorted(names - set(HEADER_DIMENSIONS), key=str.casefold)]


def stratify(
    records: Iterable[Mapping[str, Any]],
    *,
    session: int | None = None,
    min_cases: int = MIN_CASES,
) -> dict[str, Any]:
    """The agreement of one session per stratum of every dimension (see the module docstring).

    ``{"session", "readers", "min_cases", "dimensions": [{"name", "note", "strata": [{"value",
    "cases", "n", "too_few", "note", "icc": {"ICC2", "ICC3"} | None, "bland_altman": {"bias",
    "sd", "loa", "pairs", "differences"} | None, "distribution": {"n", "median", "q1", "q3",
    "min", "max"}}]}]}``; NaN as ``null``. ``cases``: the stratum's cases read in the session;
    ``n``: those scored by every reader (the ICC's and Bland–Altman's cases).
    """
    session, cases, readers, matrix, strata = _session_matrix(records, session)
    dimensions: list[dict[str, Any]] = []
    for name in dimensions_of(strata):
        labels = [strata.get(case, {}).get(name) or UNKNOWN for case in cases]
        values = sorted(set(labels), key=_order)
        if len(values) > MAX_STRATA:
            dimensions.append(
                {
                    "name": name,
                    "note": f"{len(values)} different values: too many strata to report; "
                    "group them in the reference CSV (e.g. age bands).",
                    "strata": [],
                }
            )
            continue
        label_array = np.asarray(labels, dtype=object)
        dimensions.append(
            {
                "name": name,
                "note": "",
                "strata": [
                    _stratum(value, matrix[label_array == value], min_cases) for value in values
                ],
            }
        )
    result: dict[str, Any] = json_ready(
        {"session": session, "readers": readers, "min_cases": min_cases, "dimensions": dimensions}
    )
    return result


def plot_groups(
    records: Iterable[Mapping[str, Any]], dimension: str, *, session: int | None = None
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """Per stratum of ``dimension``: the Bland–Altman points (means, differences) of its
    complete cases, every reader pair pooled, for
    :func:`studies.stats.plots.strata_bland_altman_svg`."""
    _, cases, _, matrix, strata = _session_matrix(records, session)
    labels = np.asarray(
        [strata.get(case, {}).get(dimension) or UNKNOWN for case in cases], dtype=object
    )
    groups = {}
    for value in sorted(set(labels.tolist()), key=_order):
        sub = matrix[labels == value]
        groups[value] = pair_differences(sub[np.isfinite(sub).all(axis=1)])
    return groups
