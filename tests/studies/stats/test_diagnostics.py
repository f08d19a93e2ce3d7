"""``studies.stats.diagnostics``: against scikit-learn, scipy, a direct O(m·n) DeLong written
here, and the published Hanley & McNeil (1982) example."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from studies.stats.diagnostics import (
    correlation,
    evaluate,
    roc_auc,
    roc_curve,
    threshold_accuracy,
    youden,
)


def direct_delong(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) straight from the definition: the kernel psi over all pairs."""
    x, y = scores[truth], scores[~truth]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10 = psi.mean(axis=1)  # per positive: fraction of negatives it outscores
    v01 = psi.mean(axis=0)  # per negative: fraction of positives that outscore it
    auc = psi.mean()
    variance = v10.var(ddof=1) / x.size + v01.var(ddof=1) / y.size
    return float(auc), float(math.sqrt(variance))


def sample(seed: int, n: int = 80, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.4
    scores = rng.normal(2.8, 0.35, n) + 0.35 * truth  # osteoporotic bone scores higher
    if ties:
        scores = np.round(scores, 1)
    return scores, truth


# Hanley & McNeil (1982) Radiology 143:29, Table 1: CT ratings 1 (definitely normal) to 5
# (definitely abnormal) of 58 normal and 51 abnormal patients; published area 0.893.
HM_NORMAL = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
HM_ABNORMAL = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, True), (2, True), (3, False)])
def test_auc_equals_sklearn_and_delong_se_equals_the_direct_computation(
    seed: int, ties: bool
) -> None:
    scores, truth = sample(seed, ties=ties)
    result = roc_auc(scores, truth)
    auc, se = direct_delong(scores, truth)
    assert result["auc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    assert result["auc"] == pytest.approx(auc, abs=1e-12)
    assert result["se"] == pytest.approx(se, abs=1e-12)
    z = stats.norm.ppf(0.975)
    assert result["ci95"] == pytest.approx([max(0, auc - z * se), min(1, auc + z * se)], abs=1e-12)
    assert (result["n_positive"], result["n_negative"]) == (int(truth.sum()), int((~truth).sum()))


def test_auc_reproduces_hanley_mcneil_1982() -> None:
    scores = np.r_[HM_ABNORMAL, HM_NORMAL]
    truth = np.r_[np.ones(51, bool), np.zeros(58, bool)]
    result = roc_auc(scores, truth)
    assert round(result["auc"], 3) == 0.893  # published
    # Their SE, 0.032, comes from an exponential approximation; DeLong's is close to it.
    assert result["se"] == pytest.approx(0.032, abs=0.002)
    assert result["se"] == pytest.approx(direct_delong(scores, truth)[1], abs=1e-12)


def test_auc_ci_is_clipped_to_the_unit_interval() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 11.0, 12.0])
    truth = np.array([0, 0, 0, 0, 1, 1, 1], dtype=bool)
    result = roc_auc(scores, truth)
    assert result["auc"] == 1.0
    assert result["ci95"][1] == 1.0


def test_missing_values_are_dropped_and_counted() -> None:
    scores = [3.1, None, 2.5, 3.4, 2.6, float("nan")]
    truth = [1, 1, 0, 1, None, 0]
    result = roc_auc(scores, truth)
    assert (result["n"], result["n_positive"], result["n_negative"]) == (3, 2, 1)
    assert result["auc"] == 1.0


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (4, True)])
def test_roc_curve_and_youden_agree_with_sklearn(seed: int, ties: bool) -> None:
    scores, truth = sample(seed, ties=ties)
    points = roc_curve(scores, truth)
    fpr, tpr, thresholds = sk_roc_curve(truth, scores, drop_intermediate=False)
    assert [p["fpr"] for p in points] == pytest.approx(list(fpr), abs=1e-12)
    assert [p["tpr"] for p in points] == pytest.approx(list(tpr), abs=1e-12)
    assert points[0]["threshold"] is None
    assert math.isinf(thresholds[0])
    assert [p["threshold"] for p in points[1:]] == pytest.approx(list(thresholds[1:]))
    best = int(np.argmax(tpr - fpr))
    result = youden(scores, truth)
    assert result["cutoff"] == pytest.approx(thresholds[best])
    assert result["j"] == pytest.approx(tpr[best] - fpr[best])
    assert result["sensitivity"] == pytest.approx(tpr[best])
    assert result["specificity"] == pytest.approx(1 - fpr[best])
    predicted = scores >= result["cutoff"]
    tn, fp, fn, tp = confusion_matrix(truth, predicted).ravel()
    assert (result["tp"], result["fp"], result["tn"], result["fn"]) == (tp, fp, tn, fn)
    assert result["ppv"] == pytest.approx(tp / (tp + fp))
    assert result["npv"] == pytest.approx(tn / (tn + fn))


def test_threshold_accuracy_counts_vbq_at_or_above_the_threshold_as_positive() -> None:
    scores = np.array([2.5, 2.95, 3.0, 3.2, 2.9, 3.05])
    truth = np.array([0, 1, 1, 1, 0, 0], dtype=bool)
    result = threshold_accuracy(scores, truth, 2.95)
    assert (result["tp"], result["fp"], result["tn"], result["fn"]) == (3, 1, 2, 0)
    assert result["sensitivity"] == 1.0
    assert result["specificity"] == pytest.approx(2 / 3)
    assert result["ppv"] == pytest.approx(3 / 4)
    assert result["npv"] == 1.0
    assert result["accuracy"] == pytest.approx(5 / 6)


def test_correlation_with_a_continuous_reference_equals_scipy() -> None:
    rng = np.random.default_rng(7)
    t_score = rng.normal(-1.5, 1.0, 40)
    vbq = 2.9 - 0.2 * t_score + rng.normal(0, 0.2, 40)
    t_with_gap = t_score.copy()
    t_with_gap[3] = np.nan
    result = correlation(vbq, t_with_gap)
    keep = np.isfinite(t_with_gap)
    assert result["n"] == 39
    assert result["pearson"]["value"] == pytest.approx(
        stats.pearsonr(vbq[keep], t_score[keep]).statistic, abs=1e-12
    )
    assert result["spearman"]["value"] == pytest.approx(
        stats.spearmanr(vbq[keep], t_score[keep]).statistic, abs=1e-12
    )
    assert result["pearson"]["value"] < 0  # low T-score, high VBQ


def test_evaluate_is_json_ready_with_counts() -> None:
    scores, truth = sample(9, n=30)
    bmd = 120 - 30 * scores
    result = evaluate(
        scores,
        continuous={"bmd": bmd},
        binary={"osteoporosis": truth.astype(float)},
        thresholds={"screening": 2.95, "fracture": 3.05},
    )
    json.dumps(result, allow_nan=False)
    assert result["n_cases"] == 30
    binary = result["binary"]["osteoporosis"]
    assert binary["n"] == 30
    assert binary["n_positive"] + binary["n_negative"] == 30
    assert set(binary) == {"n", "n_positive", "n_negative", "auc", "roc", "youden", "thresholds"}
    assert set(binary["thresholds"]) == {"screening", "fracture"}
    assert result["continuous"]["bmd"]["pearson"]["value"] == pytest.approx(-1.0)


def test_one_class_only_gives_nulls_not_errors() -> None:
    result = evaluate([2.5, 3.0, 3.5], binary={"fracture": [0, 0, 0]}, thresholds={"t": 3.0})
    binary = result["binary"]["fracture"]
    assert binary["auc"]["auc"] is None
    assert binary["youden"]["cutoff"] is None
    assert binary["thresholds"]["t"]["sensitivity"] is None
    assert binary["thresholds"]["t"]["specificity"] == pytest.approx(1 / 3)


def test_a_non_binary_reference_is_rejected() -> None:
    with pytest.raises(ValueError, match="binary"):
        roc_auc([1.0, 2.0], [0, 2])
