"""JSON-ready statistics: NaN and infinities as ``null``, numpy scalars as Python numbers.

Why a module of its own: the agreement document (:func:`studies.stats.agreement.analyse`) and the
diagnostic one (:func:`studies.stats.diagnostics.evaluate`) both end with this step, so "not
estimable" reads as ``null`` the same way in both, and ``json.dumps(allow_nan=False)`` accepts
either.

Pure: numpy only, no Django.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_ready(value: Any) -> Any:
    """NaN and ±inf become None, numpy scalars Python numbers: ``json.dumps(allow_nan=False)``
    then accepts the result, and a consumer sees ``null`` for "not estimable"."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return value
