"""Diagnostic accuracy of VBQ against a per-case reference standard (spec §1, issue 6).

Pure: numpy and scipy only. What VBQ papers report when DXA or QCT is available: correlation
with the continuous references (T-score, BMD), ROC AUC with a DeLong 95 % CI against a binary
reference (e.g. T-score ≤ −2.5, or a fragility fracture), the Youden cut-off and the accuracy of
each study threshold.

Orientation: a **higher VBQ means worse bone**, so a case is test-positive when
``vbq ≥ cut-off`` (the same rule as a threshold's category in :mod:`studies.stats.agreement`),
and the AUC is the probability that a reference-positive case scores higher than a
reference-negative one (ties count one half). Missing values (NaN/None) in the score or the
reference drop the case from that figure only, and every figure reports the counts it used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from studies.stats.estimators import midranks, pearson, spearman
from studies.stats.jsonable import json_ready

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
JSON = dict[str, Any]

_NAN = float("nan")


def _floats(values: ArrayLike) -> FloatArray:
    """Float array with None → NaN (object arrays from JSON or a database)."""
    array = np.asarray(values)
    if array.dtype == object:
        array = np.array([_NAN if v is None else v for v in array.ravel()], dtype=np.float64)
    return np.asarray(array, dtype=np.float64).ravel()


def _scores_truth(scores: ArrayLike, truth: ArrayLike) -> tuple[FloatArray, BoolArray]:
    """Finite scores and their binary truth, cases with a missing value in either dropped."""
    s = _floats(scores)
    t = _floats(truth)
    if s.shape != t.shape:
        raise ValueError(f"scores and reference differ in length: {s.size} and {t.size}")
    if np.isinf(s).any():
        raise ValueError("scores must be finite (or NaN for missing)")
    keep = np.isfinite(s) & np.isfinite(t)
    t = t[keep]
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("a binary reference must be 0/1 or true/false (or missing)")
    return s[keep], t.astype(bool)


def correlation(scores: ArrayLike, reference: ArrayLike) -> JSON:
    """Pearson (with Fisher-z CI) and Spearman correlation of VBQ with a continuous reference.

    Returns ``{"n", "pearson": {"value", "p", "ci95"}, "spearman": {"value", "p"}}`` over the
    cases with both values. With DXA T-scores a *negative* correlation is the expected sign.
    """
    s = _floats(scores)
    r = _floats(reference)
    if s.shape != r.shape:
        raise ValueError(f"scores and reference differ in length: {s.size} and {r.size}")
    keep = np.isfinite(s) & np.isfinite(r)
    s, r = s[keep], r[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"n": int(s.size), "pearson": pearson(s, r), "spearman": spearman(s, r)}


def roc_auc(scores: ArrayLike, truth: ArrayLike, *, alpha: float = 0.05) -> JSON:
    """ROC AUC with DeLong's variance, by the fast algorithm of Sun & Xu (2014).

    DeLong, DeLong & Clarke-Pearson (Biometrics 1988;44:837–845) estimate the variance of the
    Mann–Whitney AUC from its structural components: for each positive case the fraction of
    negatives it outscores (V10) and for each negative the fraction of positives that outscore
    it (V01), ties counting one half; ``var = s²(V10)/m + s²(V01)/n`` (sample variances, m
    positives, n negatives). Sun & Xu (IEEE Signal Process Lett 2014;21:1389–1393) obtain the
    components from mid-ranks in O(N log N) instead of O(m·n)::

        V10_i = (T_Z(x_i) − T_X(x_i)) / n,    V01_j = 1 − (T_Z(y_j) − T_Y(y_j)) / m

    with T_Z the mid-rank among all cases and T_X, T_Y the mid-ranks within each class. The
    interval is ``AUC ± z(1 − α/2)·se`` clipped to [0, 1] (as R's pROC does). Returns
    ``{"auc", "se", "ci95", "n", "n_positive", "n_negative"}``; the variance needs at least two
    cases in each class.
    """
    s, t = _scores_truth(scores, truth)
    x, y = s[t], s[~t]
    m, n = int(x.size), int(y.size)
    out: JSON = {
        "auc": _NAN,
        "se": _NAN,
        "ci95": [_NAN, _NAN],
        "n": m + n,
        "n_positive": m,
        "n_negative": n,
    }
    if m == 0 or n == 0:
        return out
    tz = midranks(np.concatenate([x, y]))
    tx = midranks(x)
    ty = midranks(y)
    auc = (float(tz[:m].sum()) - m * (m + 1) / 2.0) / (m * n)
    out["auc"] = auc
    if m < 2 or n < 2:
        return out
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    variance = float(v10.var(ddof=1)) / m + float(v01.var(ddof=1)) / n
    se = math.sqrt(variance)
    half = float(special.ndtri(1 - alpha / 2)) * se
    out["se"] = se
    out["ci95"] = [max(0.0, auc - half), min(1.0, auc + half)]
    return out


def _confusion(s: FloatArray, t: BoolArray, cutoff: float) -> JSON:
    """Counts and rates for the rule ``score ≥ cutoff`` = positive."""
    predicted = s >= cutoff
    tp = int(np.sum(predicted & t))
    fp = int(np.sum(predicted & ~t))
    fn = int(np.sum(~predicted & t))
    tn = int(np.sum(~predicted & ~t))

    def ratio(a: int, b: int) -> float:
        return a / b if b else _NAN

    return {
        "n": tp + fp + fn + tn,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "accuracy": ratio(tp + tn, tp + fp + fn + tn),
    }


def roc_curve(scores: ArrayLike, truth: ArrayLike) -> list[JSON]:
    """Every ROC operating point: ``[{"threshold", "fpr", "tpr"}, ...]``.

    One point per distinct score, cut-offs descending (rule: positive when ``score ≥
    threshold``), preceded by the (0, 0) point whose threshold is ``None`` (nothing called
    positive). All points are kept, unlike ``sklearn.metrics.roc_curve``'s default, so a plot
    can show each cut-off. Rates are NaN when a class is empty.
    """
    s, t = _scores_truth(scores, truth)
    order = np.argsort(-s, kind="stable")
    s_sorted, t_sorted = s[order], t[order]
    distinct = np.r_[np.diff(s_sorted) != 0, True] if s.size else np.zeros(0, dtype=bool)
    tps = np.cumsum(t_sorted)[distinct]
    fps = np.cumsum(~t_sorted)[distinct]
    positives, negatives = int(t.sum()), int((~t).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tps / positives if positives else np.full(tps.shape, np.nan)
        fpr = fps / negatives if negatives else np.full(fps.shape, np.nan)
    points: list[JSON] = [
        {"threshold": None, "fpr": 0.0 if negatives else _NAN, "tpr": 0.0 if positives else _NAN}
    ]
    points.extend(
        {"threshold": float(c), "fpr": float(f), "tpr": float(r)}
        for c, f, r in zip(s_sorted[distinct], fpr, tpr, strict=True)
    )
    return points


def youden(scores: ArrayLike, truth: ArrayLike) -> JSON:
    """The cut-off maximising Youden's J = sensitivity + specificity − 1 (Youden 1950).

    Candidates are the observed scores (rule ``score ≥ cutoff``); among equal J the highest
    cut-off wins (the more specific one, and the first ``sklearn``'s ``roc_curve`` order meets).
    Returns ``{"cutoff", "j", "n", "tp", "fp", "tn", "fn", "sensitivity", "specificity", "ppv",
    "npv", "accuracy"}``; everything is NaN without both classes.
    """
    s, t = _scores_truth(scores, truth)
    points = roc_curve(s, t)[1:]
    if not points or not t.any() or t.all():
        return {"cutoff": _NAN, "j": _NAN} | _confusion(s, t, math.inf)
    j = np.array([p["tpr"] - p["fpr"] for p in points])
    best = int(np.argmax(j))
    cutoff = float(points[best]["threshold"])
    return {"cutoff": cutoff, "j": float(j[best])} | _confusion(s, t, cutoff)


def threshold_accuracy(scores: ArrayLike, truth: ArrayLike, threshold: float) -> JSON:
    """Accuracy of a fixed study threshold (positive when ``score ≥ threshold``).

    Returns ``{"threshold", "n", "tp", "fp", "tn", "fn", "sensitivity", "specificity", "ppv",
    "npv", "accuracy"}``. PPV and NPV are those of this sample's prevalence.
    """
    s, t = _scores_truth(scores, truth)
    return {"threshold": float(threshold)} | _confusion(s, t, float(threshold))


def evaluate(
    scores: ArrayLike,
    *,
    continuous: Mapping[str, ArrayLike] | None = None,
    binary: Mapping[str, ArrayLike] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> JSON:
    """Everything against every reference, JSON-ready (NaN → ``null``).

    ``scores``: one VBQ per case (e.g. a reader's score, or the mean over readers: the caller
    decides and says so), aligned with each reference array; NaN/None = missing. ``continuous``:
    ``{"t_score": [...], "bmd": [...]}``; ``binary``: ``{"osteoporosis": [0/1...], ...}``.
    Returns::

        {"n_cases",
         "continuous": {name: {"n", "pearson", "spearman"}},
         "binary": {name: {"n", "n_positive", "n_negative", "auc": {...}, "roc": [...],
                           "youden": {...}, "thresholds": {threshold_name: {...}}}}}
    """
    s = _floats(scores)
    out: JSON = {"n_cases": int(s.size), "continuous": {}, "binary": {}}
    for name, reference in (continuous or {}).items():
        out["continuous"][name] = correlation(s, reference)
    for name, reference in (binary or {}).items():
        auc = roc_auc(s, reference)
        out["binary"][name] = {
            "n": auc["n"],
            "n_positive": auc["n_positive"],
            "n_negative": auc["n_negative"],
            "auc": auc,
            "roc": roc_curve(s, reference),
            "youden": youden(s, reference),
            "thresholds": {
                label: threshold_accuracy(s, reference, value)
                for label, value in (thresholds or {}).items()
            },
        }
    cleaned: JSON = json_ready(out)
    return cleaned
