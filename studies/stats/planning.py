"""How many cases a reliability study needs: Bonett (2002) for the ICC (spec §6).

Why: a study manager sets up the number of readers and cases before anyone reads; the question
that decides the number of cases is how precise the ICC will be. Bonett (Stat Med
2002;21:1331–1335) gives the approximate number of cases for which the ``confidence`` interval of
an ICC of about ``R`` with ``K`` raters has width ``W``::

    n = ⌈1 + 8 z² (1 − R)² (1 + (K − 1) R)² / (K (K − 1) W²)⌉

with z the two-sided normal quantile (1.96 for 95 %). For R = 0.8, K = 2, W = 0.2: 51 cases.
The same formula answers "how many more cases until the interval is that narrow" for a running
study (:func:`more_cases`).

Pure: scipy.special only, no Django.
"""

from __future__ import annotations

import math
from typing import Any

from scipy import special

METHOD = "Bonett 2002"


class PlanningInputError(ValueError):
    """A planning request outside the formula's domain (spec §6)."""


def _check(icc: float, readers: int, width: float, confidence: float) -> None:
    if not (isinstance(icc, int | float) and math.isfinite(icc) and 0.0 < icc < 1.0):
        raise PlanningInputError(f"--icc {icc!r} must be strictly between 0 and 1")
    if isinstance(readers, bool) or not isinstance(readers, int) or readers < 2:
        raise PlanningInputError(f"--readers {readers!r} must be an integer of at least 2")
    if not (isinstance(width, int | float) and math.isfinite(width) and 0.0 < width < 1.0):
        raise PlanningInputError(f"--width {width!r} must be strictly between 0 and 1")
    if not (
        isinstance(confidence, int | float) and math.isfinite(confidence) and 0 < confidence < 1
    ):
        raise PlanningInputError(f"--confidence {confidence!r} must be strictly between 0 and 1")


def cases_needed(icc: float, readers: int, width: float, confidence: float = 0.95) -> int:
    """Bonett's (2002) number of cases for an ICC interval of the given width."""
    _check(icc, readers, width, confidence)
    z = float(special.ndtri(1.0 - (1.0 - confidence) / 2.0))
    k = readers
    n = 1.0 + 8.0 * z * z * (1.0 - icc) ** 2 * (1.0 + (k - 1) * icc) ** 2 / (
        k * (k - 1) * width * width
    )
    # 1e-9: a value that is an integer up to rounding must not gain a case.
    return math.ceil(n - 1e-9)


def plan(icc: float, readers: int, width: float, confidence: float = 0.95) -> dict[str, Any]:
    """``manage.py plan_study``'s document (spec §6)."""
    return {
        "cases": cases_needed(icc, readers, width, confidence),
        "icc": icc,
        "readers": readers,
        "width": width,
        "confidence": confidence,
        "method": METHOD,
    }


def precision_so_far(
    icc_value: float,
    ci95: tuple[float, float] | list[float],
    readers: int,
    cases: int,
    target_width: float,
) -> dict[str, Any] | None:
    """The running study's ICC2 interval against a target width, for the agreement page.

    ``{"width", "target", "reached", "cases", "cases_needed", "more_cases"}``; ``None`` when the
    ICC or its interval is not estimable yet, or the ICC is ≤ 0 (no planning from there); an
    ICC of 1 plans as 1 − 10⁻⁶.
    ``cases_needed`` plans with the ICC observed so far (the best guess of R), and
    ``more_cases`` is what remains after the ``cases`` already complete (0 once reached).
    """
    lo, hi = float(ci95[0]), float(ci95[1])
    if not all(math.isfinite(v) for v in (icc_value, lo, hi)) or readers < 2 or icc_value <= 0:
        return None
    width = hi - lo
    reached = width <= target_width
    try:
        needed = cases_needed(min(icc_value, 1 - 1e-6), readers, target_width)
    except PlanningInputError:
        return None
    return {
        "width": width,
        "target": target_width,
        "reached": reached,
        "cases": cases,
        "cases_needed": needed,
        "more_cases": 0 if reached else max(0, needed - cases),
    }


def planning_table(
    readers: int,
    iccs: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9),
    widths: tuple[float, ...] = (0.3, 0.2, 0.1),
) -> dict[str, Any]:
    """Cases needed for each expected ICC (rows) and 95 % CI width (columns), ``readers`` fixed.

    For the study design page: a manager sees at a glance what the number of readers buys.
    Fewer than two readers plans for two (the least an ICC needs).
    """
    k = max(2, int(readers))
    return {
        "readers": k,
        "widths": list(widths),
        "rows": [{"icc": r, "cases": [cases_needed(r, k, w) for w in widths]} for r in iccs],
    }
