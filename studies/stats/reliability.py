"""Measurement error from the two-way ANOVA: variance components, SEM and SDC (spec §6).

Why: an ICC says how well readers *rank* cases relative to the spread of the cohort; a clinician
asks something else — "is a change of 0.3 in this patient's VBQ real?". That is answered in VBQ
units by the standard error of measurement and the smallest detectable change (de Vet, Terwee,
Knol & Bouter, J Clin Epidemiol 2006;59:1033–1039), computed from the same two-way ANOVA without
replication on the complete ``n × k`` matrix (n cases, k raters: readers for inter-reader, a
reader's sessions for intra-reader) that the ICCs of :func:`studies.stats.estimators.icc` use.

With mean squares MSR (cases), MSC (raters) and MSE (residual):

- variance components ``case = (MSR − MSE)/k``, ``reader = (MSC − MSE)/n``, ``residual = MSE``;
  a negative estimate (sampling noise around a true 0) is reported as 0;
- ``sem.agreement = √(reader + residual)`` (systematic differences between raters count as
  error: the SEM that goes with ICC2), ``sem.consistency = √residual`` (they do not: ICC3);
- ``sdc.x = 1.96 · √2 · sem.x``: the smallest change in one patient's score that exceeds the
  measurement error of the difference of two measurements with 95 % confidence.

Pure: numpy only, no Django. Undefined figures (fewer than two cases or two raters) are NaN.
"""

from __future__ import annotations

import math

from numpy.typing import ArrayLike

from studies.stats.estimators import mean_squares

SDC_FACTOR = 1.96 * math.sqrt(2.0)
"""``1.96 · √2``: 95 % two-sided, and √2 because a change is the difference of two readings."""

_NAN = float("nan")


def variance_components(ratings: ArrayLike) -> dict[str, float]:
    """``{"case", "reader", "residual"}`` variances of a complete matrix (spec §6).

    Negative moment estimates are reported as 0 (a variance cannot be negative; the negative
    value only says the component is too small to estimate from these data).
    """
    ms = mean_squares(ratings)
    if math.isnan(ms.mse):
        return {"case": _NAN, "reader": _NAN, "residual": _NAN}
    return {
        "case": max(0.0, (ms.msr - ms.mse) / ms.k),
        "reader": max(0.0, (ms.msc - ms.mse) / ms.n),
        "residual": max(0.0, ms.mse),
    }


def measurement_error(ratings: ArrayLike) -> dict[str, dict[str, float]]:
    """``{"variance_components", "sem", "sdc"}`` of a complete ``n × k`` matrix (spec §6).

    ``sem`` and ``sdc`` each hold ``{"agreement", "consistency"}`` in the ratings' units. The
    SEM uses the reported (non-negative) components, so ``agreement ≥ consistency`` always.
    """
    components = variance_components(ratings)
    sem_agreement = math.sqrt(components["reader"] + components["residual"])
    sem_consistency = math.sqrt(components["residual"])
    return {
        "variance_components": components,
        "sem": {"agreement": sem_agreement, "consistency": sem_consistency},
        "sdc": {
            "agreement": SDC_FACTOR * sem_agreement,
            "consistency": SDC_FACTOR * sem_consistency,
        },
    }
