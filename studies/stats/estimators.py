"""The agreement estimators: ICC, Bland–Altman, CCC, Pearson, Spearman, Cohen's and Fleiss' kappa.

Each function takes arrays of readings and returns one statistic with its interval and the count
it was computed from; anything a formula cannot estimate (too few cases, no variance) is ``NaN``,
never an invented number. Why a module of their own: they are the numerical core that
:func:`studies.stats.agreement.analyse` assembles into a study's document, that
:mod:`studies.stats.diagnostics` and :mod:`studies.stats.plots` reuse, and that the tests check
one by one against independent oracles; the record parsing and the document's shape are
another concern (:mod:`studies.stats.agreement`).

Pure: numpy and scipy only, no Django.

Distribution quantiles and tail areas use ``scipy.special`` (``fdtri``, ``fdtrc``, ``stdtr``,
``stdtrit``, ``ndtri``) directly: they are the functions ``scipy.stats`` calls underneath, so
the results are the same to the last bit, at a fraction of the per-call overhead that matters
when a study has hundreds of reader pairs, and without importing ``scipy.stats`` (over a second
of start-up for the command line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

FloatArray = NDArray[np.float64]
JSON = dict[str, Any]

ICC_FORMS = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")
LOA_Z = 1.96
"""Limits of agreement are ``bias ± 1.96 sd`` (spec §3; Bland & Altman 1986 used 1.96 too)."""

_NAN = float("nan")


# --- distributions -------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _t_quantile(df: float, q: float = 0.975) -> float:
    """Student t quantile; cached because every reader pair of a session shares its df."""
    if not df > 0:
        return _NAN
    return float(special.stdtrit(df, q))


def _t_two_sided_p(t: float, df: float) -> float:
    if not df > 0 or math.isnan(t):
        return _NAN
    return float(2.0 * special.stdtr(df, -abs(t)))


_Z975 = float(special.ndtri(0.975))


def _f(value: Any) -> float:
    return float(value)


# --- ICC ----------------------------------------------------------------------------------


def _complete_matrix(ratings: ArrayLike) -> FloatArray:
    """``ratings`` as a complete, finite ``n × k`` float matrix (cases × raters)."""
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"ratings must be a 2-D array (targets × raters), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("ratings must be complete and finite: drop incomplete targets first")
    return x


def _sums_of_squares(x: FloatArray) -> tuple[np.float64, np.float64, np.float64]:
    """SS of rows (cases), columns (raters) and residual of the two-way ANOVA without
    replication: the one decomposition behind the ICCs and the measurement error (spec §6).

    numpy scalars, not floats: 0/0 must give NaN under the caller's errstate, not
    ZeroDivisionError."""
    n, k = x.shape
    grand = x.mean()
    row_means = x.mean(axis=1)
    col_means = x.mean(axis=0)
    residual = x - row_means[:, None] - col_means[None, :] + grand
    ss_rows = k * np.sum((row_means - grand) ** 2)
    ss_cols = n * np.sum((col_means - grand) ** 2)
    return ss_rows, ss_cols, np.sum(residual**2)


@dataclass(frozen=True)
class MeanSquares:
    """The two-way ANOVA without replication of an ``n × k`` matrix."""

    n: int
    k: int
    msr: float  # cases (rows)
    msc: float  # raters (columns)
    mse: float  # residual


def mean_squares(ratings: ArrayLike) -> MeanSquares:
    """MSR, MSC and MSE of a complete ``n × k`` matrix (NaN when n < 2 or k < 2): the mean
    squares :func:`icc` uses, for the variance components and SEM of spec §6."""
    x = _complete_matrix(ratings)
    n, k = x.shape
    if n < 2 or k < 2:
        return MeanSquares(n, k, _NAN, _NAN, _NAN)
    ss_rows, ss_cols, ss_err = _sums_of_squares(x)
    df_rows, df_cols = n - 1, k - 1
    msr, msc, mse = ss_rows / df_rows, ss_cols / df_cols, ss_err / (df_rows * df_cols)
    return MeanSquares(n, k, float(msr), float(msc), float(mse))


def icc(ratings: ArrayLike, *, alpha: float = 0.05) -> dict[str, JSON]:
    """The six Shrout & Fleiss (1979) / McGraw & Wong (1996) intraclass correlations.

    ``ratings`` is ``n_targets × k_raters`` and complete (drop incomplete targets first: the
    ANOVA estimators below assume a balanced design). Returns, for each of ``ICC1`` (one-way
    random), ``ICC2`` (two-way random, absolute agreement), ``ICC3`` (two-way mixed,
    consistency) and their ``k`` forms (reliability of the mean of k raters)::

        {"value", "ci95": [lo, hi], "F", "df1", "df2", "pval"}

    Why these formulas: they are the ones pingouin's ``intraclass_corr`` uses (and R's
    ``psych::ICC``), so a reader study can be checked against either. Mean squares come from the
    two-way ANOVA without replication: MSR (targets), MSC (raters), MSE (residual) and
    MSW = (SSC + SSE) / (n (k − 1)) for the one-way model. Point estimates: Shrout & Fleiss
    (1979) Table 1 / McGraw & Wong (1996) Table 4. Confidence intervals from the F distribution:
    ICC1 and ICC3 by McGraw & Wong (1996) Table 7 (exact F bounds); ICC2 by the Satterthwaite
    approximation for the denominator df (Shrout & Fleiss 1979, eq. for case 2; McGraw & Wong
    1996 Table 7, case 2A). The ``k`` bounds follow as pingouin derives them: ``1 − 1/F`` bounds
    for ICC1k and ICC3k, Spearman–Brown of the ICC2 bounds for ICC2k. ``alpha`` sets the
    two-sided level (0.05 → the 95 % interval).

    Vectorised: one pass over the matrix for the sums of squares and one ``fdtri`` call for all
    F quantiles, so it is much faster than building a pandas ANOVA table.
    """
    x = _complete_matrix(ratings)
    n, k = x.shape
    if n < 2 or k < 2:
        return _icc_undefined(n, k)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ss_rows, ss_cols, ss_err = _sums_of_squares(x)
        df1 = n - 1
        df_cols = k - 1
        df1kd = n * (k - 1)  # within-target df (one-way model)
        df2kd = (n - 1) * (k - 1)  # residual df (two-way model)
        msb = ss_rows / df1
        msj = ss_cols / df_cols
        mse = ss_err / df2kd
        msw = (ss_cols + ss_err) / (df_cols + df2kd)

        icc1 = (msb - msw) / (msb + (k - 1) * msw)
        icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
        icc3 = (msb - mse) / (msb + (k - 1) * mse)
        icc1k = (msb - msw) / msb
        icc2k = (msb - mse) / (msb + (msj - mse) / n)
        icc3k = (msb - mse) / msb

        f1 = msb / msw
        f3 = msb / mse
        fj = msj / mse
        # Satterthwaite df for ICC2's interval (McGraw & Wong 1996, Table 7 case 2A).
        vn = df2kd * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = df1 * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        q = 1 - alpha / 2
        quantiles = special.fdtri(
            np.array([df1, df1kd, df1, df2kd, n - 1, v], dtype=np.float64),
            np.array([df1kd, df1, df2kd, df1, v, n - 1], dtype=np.float64),
            q,
        )
        f1l = f1 / quantiles[0]
        f1u = f1 * quantiles[1]
        f3l = f3 / quantiles[2]
        f3u = f3 * quantiles[3]
        f2u, f2l = quantiles[4], quantiles[5]
        l1 = (f1l - 1) / (f1l + (k - 1))
        u1 = (f1u - 1) / (f1u + (k - 1))
        l3 = (f3l - 1) / (f3l + (k - 1))
        u3 = (f3u - 1) / (f3u + (k - 1))
        l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
        u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)
        l2k = l2 * k / (1 + l2 * (k - 1))
        u2k = u2 * k / (1 + u2 * (k - 1))
        p1, p3 = special.fdtrc(
            np.array([df1, df1], dtype=np.float64),
            np.array([df1kd, df2kd], dtype=np.float64),
            np.array([f1, f3], dtype=np.float64),
        )
        lower_k1, upper_k1 = 1 - 1 / f1l, 1 - 1 / f1u
        lower_k3, upper_k3 = 1 - 1 / f3l, 1 - 1 / f3u

    def form(value: Any, lo: Any, hi: Any, f_stat: Any, df2: int, p: Any) -> JSON:
        return {
            "value": _f(value),
            "ci95": [_f(lo), _f(hi)],
            "F": _f(f_stat),
            "df1": df1,
            "df2": df2,
            "pval": _f(p),
        }

    return {
        "ICC1": form(icc1, l1, u1, f1, df1kd, p1),
        "ICC2": form(icc2, l2, u2, f3, df2kd, p3),
        "ICC3": form(icc3, l3, u3, f3, df2kd, p3),
        "ICC1k": form(icc1k, lower_k1, upper_k1, f1, df1kd, p1),
        "ICC2k": form(icc2k, l2k, u2k, f3, df2kd, p3),
        "ICC3k": form(icc3k, lower_k3, upper_k3, f3, df2kd, p3),
    }


def _icc_undefined(n: int, k: int) -> dict[str, JSON]:
    """Same keys, nothing estimable: fewer than two targets or two raters."""
    df1 = max(n - 1, 0)
    df_one_way = max(n * (k - 1), 0)
    df_two_way = max((n - 1) * (k - 1), 0)
    result: dict[str, JSON] = {}
    for name in ICC_FORMS:
        df2 = df_one_way if name.startswith("ICC1") else df_two_way
        result[name] = {
            "value": _NAN,
            "ci95": [_NAN, _NAN],
            "F": _NAN,
            "df1": df1,
            "df2": df2,
            "pval": _NAN,
        }
    return result


# --- pairs of continuous measurements --------------------------------------------------------


def _pair(first: ArrayLike, second: ArrayLike) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired measurements differ in length: {a.size} and {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired measurements must be finite: drop incomplete pairs first")
    return a, b


def bland_altman(first: ArrayLike, second: ArrayLike) -> JSON:
    """Bland–Altman agreement of paired measurements, ``difference = first − second``.

    Returns ``{"n", "bias", "sd", "loa": [lo, hi], "bias_ci95", "loa_ci95": [[lo_lo, lo_hi],
    [hi_lo, hi_hi]], "proportional_bias": {"slope", "intercept", "slope_ci95", "p"}}``.

    - ``bias`` = mean difference, ``sd`` = sample sd (ddof = 1), ``loa`` = bias ± 1.96 sd
      (spec §3; Bland & Altman, Lancet 1986;i:307–310).
    - ``bias_ci95``: bias ± t(0.975, n − 1) · sd/√n.
    - ``loa_ci95``: each limit ± t(0.975, n − 1) · √(3 sd²/n), the approximate standard error
      of a limit given by Bland & Altman (Lancet 1986, section "Precision of estimated limits of
      agreement"; restated in Stat Methods Med Res 1999;8:135–160). It is the usual
      reporting choice; exact tolerance-type intervals are narrower for small n.
    - ``proportional_bias``: ordinary least squares of the difference on the mean of the two
      measurements (Bland & Altman 1999): a slope that differs from 0 means the
      disagreement grows (or shrinks) with the magnitude, so a single bias misdescribes it.
      ``p`` is the two-sided t test of slope = 0 (n − 2 df); ``slope_ci95`` uses the same t.

    Undefined parts are NaN: sd needs n ≥ 2, the regression n ≥ 3 and a spread of means.
    """
    a, b = _pair(first, second)
    n = int(a.size)
    result: JSON = {
        "n": n,
        "bias": _NAN,
        "sd": _NAN,
        "loa": [_NAN, _NAN],
        "bias_ci95": [_NAN, _NAN],
        "loa_ci95": [[_NAN, _NAN], [_NAN, _NAN]],
        "proportional_bias": {
            "slope": _NAN,
            "intercept": _NAN,
            "slope_ci95": [_NAN, _NAN],
            "p": _NAN,
        },
    }
    if n == 0:
        return result
    diff = a - b
    bias = float(diff.mean())
    result["bias"] = bias
    if n < 2:
        return result
    sd = float(diff.std(ddof=1))
    t = _t_quantile(n - 1)
    lo, hi = bias - LOA_Z * sd, bias + LOA_Z * sd
    se_bias = sd / math.sqrt(n)
    se_limit = math.sqrt(3.0 * sd * sd / n)
    result.update(
        sd=sd,
        loa=[lo, hi],
        bias_ci95=[bias - t * se_bias, bias + t * se_bias],
        loa_ci95=[[lo - t * se_limit, lo + t * se_limit], [hi - t * se_limit, hi + t * se_limit]],
    )
    result["proportional_bias"] = _ols_slope(0.5 * (a + b), diff)
    return result


def _ols_slope(x: FloatArray, y: FloatArray) -> JSON:
    """OLS of y on x with intercept: slope, intercept, slope CI (t, n − 2 df), p of slope = 0."""
    n = int(x.size)
    out: JSON = {"slope": _NAN, "intercept": _NAN, "slope_ci95": [_NAN, _NAN], "p": _NAN}
    if n < 3:
        return out
    mx, my = float(x.mean()), float(y.mean())
    dx, dy = x - mx, y - my
    sxx = float(dx @ dx)
    if sxx == 0.0:
        return out
    slope = float(dx @ dy) / sxx
    intercept = my - slope * mx
    residual = dy - slope * dx
    s2 = float(residual @ residual) / (n - 2)
    se = math.sqrt(s2 / sxx)
    t = _t_quantile(n - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = slope / se if se > 0 else (math.inf if slope != 0 else _NAN)
    p = _t_two_sided_p(t_stat, n - 2) if not math.isinf(t_stat) else 0.0
    out.update(slope=slope, intercept=intercept, slope_ci95=[slope - t * se, slope + t * se], p=p)
    return out


def ccc(x: ArrayLike, y: ArrayLike, *, alpha: float = 0.05) -> JSON:
    """Lin's concordance correlation coefficient with a Fisher-z confidence interval.

    ``ρc = 2 s_xy / (s_x² + s_y² + (x̄ − ȳ)²)`` (Lin, Biometrics 1989;45:255–268, eq. 2a), with
    the **population (1/n) moments** Lin used for the estimator. It is Pearson's r shrunk by how
    far the pairs sit from the identity line (location and scale shift), which is the question
    for two readers of the same score.

    The interval transforms ``z = atanh(ρc)`` and uses Lin's asymptotic variance with the
    correction of Lin (Biometrics 2000;56:324–325)::

        var(z) = 1/(n − 2) · [ (1 − r²) ρc² / ((1 − ρc²) r²)
                               + 2 ρc³ (1 − ρc) u² / (r (1 − ρc²)²)
                               − ρc⁴ u⁴ / (2 r² (1 − ρc²)²) ]

    where r is Pearson's r and ``u = (x̄ − ȳ) / √(s_x s_y)`` (1/n sds). This is the "z-transform"
    interval of R's ``epiR::epi.ccc``. Returns ``{"value", "ci95"}``; the interval needs n ≥ 3
    and |ρc| < 1.
    """
    a, b = _pair(x, y)
    n = int(a.size)
    out: JSON = {"value": _NAN, "ci95": [_NAN, _NAN]}
    if n < 2:
        return out
    mx, my = float(a.mean()), float(b.mean())
    da, db = a - mx, b - my
    sxx = float(da @ da) / n
    syy = float(db @ db) / n
    sxy = float(da @ db) / n
    denominator = sxx + syy + (mx - my) ** 2
    if denominator == 0.0:
        return out  # every reading identical: agreement is not estimable, not perfect
    rho = 2.0 * sxy / denominator
    out["value"] = rho
    if n < 3 or sxx == 0.0 or syy == 0.0 or abs(rho) >= 1.0:
        return out
    r = sxy / math.sqrt(sxx * syy)
    if r == 0.0:
        return out
    u = (mx - my) / math.sqrt(math.sqrt(sxx * syy))
    one_minus = 1.0 - rho * rho
    variance = (
        (1 - r * r) * rho**2 / (one_minus * r * r)
        + 2 * rho**3 * (1 - rho) * u**2 / (r * one_minus**2)
        - rho**4 * u**4 / (2 * r * r * one_minus**2)
    ) / (n - 2)
    if not variance > 0:
        return out
    z = math.atanh(rho)
    half = float(special.ndtri(1 - alpha / 2)) * math.sqrt(variance)
    out["ci95"] = [math.tanh(z - half), math.tanh(z + half)]
    return out


def pearson(x: ArrayLike, y: ArrayLike, *, alpha: float = 0.05) -> JSON:
    """Pearson's r, its two-sided p (t test, n − 2 df) and a Fisher-z interval.

    The interval is ``tanh(atanh(r) ± z(0.975)/√(n − 3))`` (Fisher 1921), as
    ``scipy.stats.pearsonr(...).confidence_interval()`` computes it. Returns
    ``{"value", "p", "ci95"}``; r needs n ≥ 2 and spread in both, the interval n ≥ 4.
    """
    a, b = _pair(x, y)
    return _pearson(a, b, alpha)


def _pearson(a: FloatArray, b: FloatArray, alpha: float = 0.05) -> JSON:
    n = int(a.size)
    out: JSON = {"value": _NAN, "p": _NAN, "ci95": [_NAN, _NAN]}
    if n < 2:
        return out
    da, db = a - a.mean(), b - b.mean()
    saa, sbb = float(da @ da), float(db @ db)
    if saa == 0.0 or sbb == 0.0:
        return out
    r = float(da @ db) / math.sqrt(saa * sbb)
    r = max(-1.0, min(1.0, r))
    out["value"] = r
    if n > 2:
        if abs(r) == 1.0:
            out["p"] = 0.0
        else:
            out["p"] = _t_two_sided_p(r * math.sqrt((n - 2) / (1 - r * r)), n - 2)
    if n > 3 and abs(r) < 1.0:
        half = float(special.ndtri(1 - alpha / 2)) / math.sqrt(n - 3)
        z = math.atanh(r)
        out["ci95"] = [math.tanh(z - half), math.tanh(z + half)]
    return out


def spearman(x: ArrayLike, y: ArrayLike) -> JSON:
    """Spearman's rank correlation and its two-sided p.

    Pearson's r of the mid-ranks (ties share their average rank) with the t approximation
    (n − 2 df), which is what ``scipy.stats.spearmanr`` reports. A rank statistic is robust to
    a reader whose scale drifts non-linearly. Returns ``{"value", "p"}``.
    """
    a, b = _pair(x, y)
    return _spearman(a, b)


def _spearman(a: FloatArray, b: FloatArray) -> JSON:
    if a.size < 2:
        return {"value": _NAN, "p": _NAN}
    result = _pearson(midranks(a), midranks(b))
    return {"value": result["value"], "p": result["p"]}


def midranks(values: ArrayLike) -> FloatArray:
    """Ranks 1..n with ties sharing their average rank (``scipy.stats.rankdata``'s default).

    Written here with numpy so that the module needs only ``scipy.special``: importing
    ``scipy.stats`` costs more than a second of start-up for every ``manage.py agreement``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    average = (starts[:-1] + starts[1:] + 1) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(average, np.diff(starts))
    return ranks


# --- categorical agreement -----------------------------------------------------------------


def cohen_kappa(a: ArrayLike, b: ArrayLike) -> float:
    """Cohen's kappa (Cohen 1960) of two raters' categories (any hashable labels).

    ``κ = (p_o − p_e) / (1 − p_e)`` with p_o the observed agreement and p_e the agreement
    expected from each rater's own marginal frequencies. NaN when p_e = 1 (both raters put
    every case in the same single category: chance explains everything, kappa is undefined).
    """
    x = np.asarray(a).ravel()
    y = np.asarray(b).ravel()
    if x.shape != y.shape:
        raise ValueError(f"ratings differ in length: {x.size} and {y.size}")
    n = x.size
    if n == 0:
        return _NAN
    _, codes = np.unique(np.concatenate([x, y]), return_inverse=True)
    codes = codes.ravel()
    ca, cb = codes[:n], codes[n:]
    m = int(codes.max()) + 1
    p_o = float(np.mean(ca == cb))
    p_e = float(np.bincount(ca, minlength=m) @ np.bincount(cb, minlength=m)) / (n * n)
    if p_e >= 1.0:
        return _NAN
    return (p_o - p_e) / (1.0 - p_e)


def fleiss_kappa(ratings: ArrayLike) -> float:
    """Fleiss' kappa (Fleiss 1971) for ``n_subjects × k_raters`` category labels.

    Each subject's agreement ``P_i = (Σ_j n_ij² − k) / (k (k − 1))`` over categories j, chance
    agreement ``P_e = Σ_j p_j²`` from the pooled category proportions; ``κ = (P̄ − P_e) /
    (1 − P_e)``. It is the multi-rater generalisation reported next to the pairwise Cohen
    kappas. NaN when fewer than 2 raters or when every rating is the same category.
    """
    x = np.asarray(ratings)
    if x.ndim != 2:
        raise ValueError(f"ratings must be 2-D (subjects × raters), got shape {x.shape}")
    n, k = x.shape
    if n == 0 or k < 2:
        return _NAN
    _, codes = np.unique(x, return_inverse=True)
    codes = codes.reshape(n, k)
    m = int(codes.max()) + 1
    counts = np.zeros((n, m), dtype=np.float64)
    np.add.at(counts, (np.repeat(np.arange(n), k), codes.ravel()), 1.0)
    p_j = counts.sum(axis=0) / (n * k)
    p_i = (np.sum(counts * counts, axis=1) - k) / (k * (k - 1))
    p_bar = float(p_i.mean())
    p_e = float(p_j @ p_j)
    if p_e >= 1.0:
        return _NAN
    return (p_bar - p_e) / (1.0 - p_e)
