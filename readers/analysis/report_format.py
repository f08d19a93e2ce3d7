"""How the agreement report writes a number: fixed decimals, a typographic minus, CIs, p-values.

Why a module of its own: every table and caption of the report (:mod:`.report_tables`,
:mod:`.report`) formats the same way, so an undefined statistic is an en dash and a negative one
has a real minus sign everywhere. Pure text functions of plain values: no Django, no models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

_MINUS: Final = "\u2212"


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
