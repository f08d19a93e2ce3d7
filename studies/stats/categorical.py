"""Categorical agreement beyond kappa: percent agreement, Gwet's AC1, Fleiss' κ with its 95 % CI,
and weighted Cohen's κ over ordered categories (spec §6).

Why these: Fleiss' κ alone misleads when one category is rare (most cases above a screening
threshold, say): chance agreement is then high and κ can be low although readers almost always
agree — the "kappa paradox". Reviewers ask for the raw percent agreement and for Gwet's AC1,
whose chance term stays small in that situation (Gwet, Br J Math Stat Psychol 2008;61:29–48).
With two or more thresholds the categories are ordered (0 … T thresholds reached), and a reader
one category off disagrees less than one two categories off: weighted κ (Cohen 1968) with
linear or quadratic weights says so.

The multi-rater coefficients take a **count matrix** ``counts[i, q]`` = how many raters put
subject i in category q (:func:`category_counts` builds it from ``subjects × raters`` labels), so
they also work with subjects that not every rater rated (Gwet's general formulas; a subject rated
by fewer than two raters adds to the category proportions but not to the agreement). Variances
are Gwet's linearisation (Gwet 2008, section 4; Handbook of Inter-Rater Reliability, 4th ed.
2014, chapter 5), the ones his ``irrCAC`` software reports; the interval is
``κ ± t(0.975, n − 1) · se`` clipped to [−1, 1].

The ``fleiss_ci95`` that the agreement reports (:func:`fleiss_small_sample_ci`) is another
interval: Gwet's one covers 85–87 % instead of 95 % at 20–30 cases (``bench/kappa_ci.py``),
mostly because a small sample of good readers often shows no disagreement at all, and then its
standard error is 0. The jackknife over cases (Fleiss & Davies, Am J Epidemiol 1982;115:841–845)
with one added pseudo-case whose raters split evenly (as Agresti & Coull, Am Stat 1998;52:119–126,
add pseudo-observations to a proportion) keeps ≥ 93 % from 20 cases on.

Pure: numpy and scipy.special only, no Django. Undefined figures are NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

FloatArray = NDArray[np.float64]
_NAN = float("nan")


def category_counts(labels: ArrayLike, categories: int | None = None) -> tuple[FloatArray, int]:
    """``subjects × raters`` integer labels 0…Q−1 (negative = not rated) → ``(counts, Q)``.

    ``categories`` fixes Q (say 2 for below/above one threshold, even if every rating falls on
    one side); by default Q = the largest label + 1.
    """
    x = np.asarray(labels)
    if x.ndim != 2:
        raise ValueError(f"labels must be 2-D (subjects × raters), got shape {x.shape}")
    x = x.astype(np.int64)
    q = int(categories) if categories is not None else int(x.max(initial=-1)) + 1
    if x.size and x.max() >= q:
        raise ValueError(f"a label ({int(x.max())}) is not below the number of categories {q}")
    counts = np.zeros((x.shape[0], max(q, 1)), dtype=np.float64)
    rows, cols = np.nonzero(x >= 0)
    np.add.at(counts, (rows, x[rows, cols]), 1.0)
    return counts, q


def _t975(df: int) -> float:
    return float(special.stdtrit(df, 0.975)) if df > 0 else _NAN


def _shares(counts: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    """Per subject r_i, per-subject agreement p_a,i, category shares π_q, subjects with r_i ≥ 2."""
    r = counts.sum(axis=1)
    pairs = r * (r - 1)
    rated2 = pairs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        pa_i = np.where(rated2, (counts * (counts - 1)).sum(axis=1) / np.where(rated2, pairs, 1), 0)
        shares = np.where(r[:, None] > 0, counts / np.where(r > 0, r, 1)[:, None], 0.0)
    pi = shares.sum(axis=0) / counts.shape[0]
    return r, pa_i, pi, int(rated2.sum())


def _coefficient(counts: FloatArray, pe: float, pe_i: FloatArray) -> dict[str, Any]:
    """(p_a − p_e)/(1 − p_e) with Gwet's linearised variance; the shared part of κ and AC1."""
    n = counts.shape[0]
    r, pa_i, _, n2 = _shares(counts)
    out: dict[str, Any] = {"value": _NAN, "se": _NAN, "ci95": [_NAN, _NAN], "pa": _NAN, "pe": pe}
    if n2 == 0:
        return out
    pa = float(pa_i[r >= 2].sum()) / n2
    out["pa"] = pa
    if not pe < 1.0:
        return out  # chance explains every agreement: not estimable
    value = (pa - pe) / (1.0 - pe)
    out["value"] = value
    if n < 2:
        return out
    coef_i = (n / n2) * (pa_i - pe * (r >= 2)) / (1.0 - pe)
    coef_i_x = coef_i - 2.0 * (1.0 - value) * (pe_i - pe) / (1.0 - pe)
    variance = float(np.sum((coef_i_x - value) ** 2)) / (n * (n - 1))
    se = math.sqrt(variance)
    half = _t975(n - 1) * se
    out.update(se=se, ci95=[max(-1.0, value - half), min(1.0, value + half)])
    return out


def fleiss(counts: ArrayLike) -> dict[str, Any]:
    """Fleiss' (1971) κ with Gwet's standard error and 95 % CI: ``{"value", "se", "ci95",
    "pa", "pe"}``.

    ``p_e = Σ_q π_q²``. With every subject rated by all k raters the value equals the classic
    Fleiss κ (:func:`studies.stats.estimators.fleiss_kappa`). Why this variance and not Fleiss,
    Nee & Landis (1979): theirs holds under κ = 0 (for a test), not for an interval around an
    observed κ; Gwet's holds for any κ from about 50 cases on (``bench/kappa_ci.py``). Below,
    it covers too little, and the agreement reports :func:`fleiss_small_sample_ci` instead;
    this ``ci95`` reproduces Gwet's published example (irrCAC).
    """
    c = np.asarray(counts, dtype=np.float64)
    r = c.sum(axis=1)
    _, _, pi, _ = _shares(c)
    pe = float(pi @ pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        pe_i = np.where(r > 0, (c @ pi) / np.where(r > 0, r, 1), 0.0)
    return _coefficient(c, pe, pe_i)


def fleiss_small_sample_ci(counts: ArrayLike) -> list[float]:
    """95 % CI of Fleiss' κ that holds at 20–30 cases: jackknife with one pseudo-case.

    Why not Gwet's linearised variance (:func:`fleiss`): with few cases it is too small, and
    it is 0 when no case shows a disagreement (κ = 1 with an interval [1, 1], although good
    readers agree on all of 20 cases one time in seven even when κ is 0.8). Here the counts get
    one pseudo-case with its raters split as evenly as possible over the categories (the
    Agresti–Coull idea: a sample that shows no disagreement still cannot prove there is none),
    the variance is the jackknife's over the cases (Fleiss & Davies 1982), leave-one-out in
    closed form (O(n)), and the interval is ``κ* ± t(0.975, n − 1) · se`` with κ* the
    pseudo-case sample's κ, widened to hold the reported κ and clipped to [−1, 1]. NaN when κ
    itself is not estimable. Coverage by simulation: ``bench/kappa_ci.py``.
    """
    c = np.asarray(counts, dtype=np.float64)
    value = fleiss(c)["value"]
    n = c.shape[0]
    if n < 2 or not math.isfinite(value) or c.shape[1] < 2:
        return [_NAN, _NAN]
    raters = int(c.sum(axis=1).max())
    q = c.shape[1]
    pseudo = np.full(q, raters // q, dtype=np.float64)
    pseudo[: raters % q] += 1
    c = np.vstack([c, pseudo])
    n += 1
    r = c.sum(axis=1)
    rated2 = r >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        pa_i = np.where(rated2, (c * (c - 1)).sum(axis=1) / np.where(rated2, r * (r - 1), 1), 0)
        shares = np.where(r[:, None] > 0, c / np.where(r > 0, r, 1)[:, None], 0.0)
        n2 = float(rated2.sum())
        total_pa, total_shares = float(pa_i.sum()), shares.sum(axis=0)

        def kappa(pa: Any, pi: Any) -> Any:
            pe = (pi * pi).sum(axis=-1)
            return (pa - pe) / (1.0 - pe)

        centre = float(kappa(total_pa / n2, total_shares / n))
        loo = kappa((total_pa - pa_i) / (n2 - rated2), (total_shares[None, :] - shares) / (n - 1))
    loo = loo[np.isfinite(loo)]
    if loo.size < 2 or not math.isfinite(centre):
        return [_NAN, _NAN]
    m = loo.size
    se = math.sqrt((m - 1) / m * float(np.sum((loo - loo.mean()) ** 2)))
    half = _t975(n - 2) * se  # n − 2: the real cases' n − 1
    return [max(-1.0, min(value, centre - half)), min(1.0, max(value, centre + half))]


def gwet_ac1(counts: ArrayLike) -> dict[str, Any]:
    """Gwet's (2008) AC1 for any number of raters: ``{"value", "se", "ci95", "pa", "pe"}``.

    ``p_e = Σ_q π_q (1 − π_q) / (Q − 1)`` with Q the number of categories (the columns of
    ``counts``, so a category nobody used still counts: below/above a threshold is Q = 2).
    """
    c = np.asarray(counts, dtype=np.float64)
    q = c.shape[1]
    r = c.sum(axis=1)
    _, _, pi, _ = _shares(c)
    if q < 2:
        return {"value": _NAN, "se": _NAN, "ci95": [_NAN, _NAN], "pa": _NAN, "pe": _NAN}
    pe = float(pi @ (1.0 - pi)) / (q - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pe_i = np.where(r > 0, (c @ (1.0 - pi)) / np.where(r > 0, r, 1), 0.0) / (q - 1)
    return _coefficient(c, pe, pe_i)


def percent_agreement(labels: ArrayLike) -> float:
    """Share of subjects on which every rater gave the same label (``subjects × raters``)."""
    x = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] == 0:
        return _NAN
    return float(np.mean(np.all(x == x[:, :1], axis=1)))


def weighted_kappa(
    first: ArrayLike, second: ArrayLike, categories: int, weights: str = "linear"
) -> float:
    """Cohen's (1968) weighted κ of two raters' ordered categories 0 … ``categories`` − 1.

    ``κ_w = 1 − Σ w_ij o_ij / Σ w_ij e_ij`` with disagreement weights ``|i − j|`` (linear) or
    ``(i − j)²`` (quadratic), o the observed and e the chance (product of marginals) table. The
    weights use the category numbers, so a category no one used still sits between its
    neighbours (as ``sklearn.metrics.cohen_kappa_score(..., labels=range(categories))``). NaN
    when no disagreement is possible by chance (both raters used one and the same category).
    """
    a = np.asarray(first, dtype=np.int64).ravel()
    b = np.asarray(second, dtype=np.int64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"ratings differ in length: {a.size} and {b.size}")
    n = a.size
    if n == 0 or categories < 2:
        return _NAN
    q = int(categories)
    observed = np.bincount(a * q + b, minlength=q * q).reshape(q, q).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    index = np.arange(q, dtype=np.float64)
    distance = np.abs(index[:, None] - index[None, :])
    if weights == "linear":
        w = distance
    elif weights == "quadratic":
        w = distance**2
    else:
        raise ValueError(f"weights must be 'linear' or 'quadratic', not {weights!r}")
    chance = float(np.sum(w * expected))
    if chance == 0.0:
        return _NAN
    return 1.0 - float(np.sum(w * observed)) / chance
