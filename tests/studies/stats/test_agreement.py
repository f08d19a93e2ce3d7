"""``studies.stats.agreement``: against independent oracles and published examples.

Oracles: pingouin (ICC), statsmodels (OLS, Fleiss' kappa), scipy (Pearson, Spearman, ranks),
scikit-learn (Cohen's kappa), an independent CCC implementation written here, and published
numbers: Shrout & Fleiss (1979) Table 2 and Bland & Altman (1986) PEFR data.
"""

from __future__ import annotations

import json
import math
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from studies.stats.agreement import AgreementInputError, analyse
from studies.stats.estimators import (
    ICC_FORMS,
    bland_altman,
    ccc,
    cohen_kappa,
    fleiss_kappa,
    icc,
    midranks,
    pearson,
    spearman,
)

# pingouin 0.7 calls a pandas API that pandas 3.1 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

PINGOUIN_NAMES = dict(
    zip(
        ICC_FORMS,
        ["ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)"],
        strict=True,
    )
)

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)

# Bland & Altman (1986) Lancet, Table 1: first PEFR measurement (l/min) of 17 subjects.
WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI_WRIGHT = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]


def pingouin_icc(ratings: np.ndarray) -> pd.DataFrame:
    """pingouin's ICC table, CIs unrounded (pingouin rounds CI95 to 2 decimals by default)."""
    n, k = ratings.shape
    long = pd.DataFrame(
        {
            "target": np.repeat(np.arange(n), k),
            "rater": np.tile(np.arange(k), n),
            "rating": ratings.ravel(),
        }
    )
    saved = pg.options.get("round.column.CI95")
    pg.options["round.column.CI95"] = None
    try:
        return pg.intraclass_corr(long, targets="target", raters="rater", ratings="rating")
    finally:
        pg.options["round.column.CI95"] = saved


def assert_icc_equals_pingouin(ratings: np.ndarray, tol: float = 1e-9) -> None:
    ours = icc(ratings)
    table = pingouin_icc(ratings).set_index("Type")
    for form, name in PINGOUIN_NAMES.items():
        row = table.loc[name]
        got = ours[form]
        assert got["value"] == pytest.approx(row["ICC"], abs=tol), form
        assert got["ci95"][0] == pytest.approx(row["CI95"][0], abs=tol), form
        assert got["ci95"][1] == pytest.approx(row["CI95"][1], abs=tol), form
        assert got["F"] == pytest.approx(row["F"], rel=tol), form
        assert got["pval"] == pytest.approx(row["pval"], abs=tol), form
        assert (got["df1"], got["df2"]) == (row["df1"], row["df2"]), form


def random_ratings(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Targets with a true value, raters with a bias, and reading noise (VBQ-like scale)."""
    truth = rng.normal(3.0, 0.4, size=(n, 1))
    rater_bias = rng.normal(0.0, rng.uniform(0, 0.2), size=(1, k))
    noise = rng.normal(0.0, rng.uniform(0.02, 0.5), size=(n, k))
    return truth + rater_bias + noise


# --- ICC -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "k", "seed"),
    [(6, 4, 0), (3, 2, 1), (4, 2, 2), (10, 2, 3), (25, 3, 4), (40, 7, 5), (200, 10, 6), (7, 15, 7)],
)
def test_icc_equals_pingouin_on_random_balanced_data(n: int, k: int, seed: int) -> None:
    assert_icc_equals_pingouin(random_ratings(np.random.default_rng(seed), n, k))


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(3, 30),  # pingouin's ANOVA wants at least 5 ratings
    k=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
    integer=st.booleans(),
)
def test_icc_equals_pingouin_hypothesis(n: int, k: int, seed: int, integer: bool) -> None:
    ratings = random_ratings(np.random.default_rng(seed), n, k)
    if integer:  # ordinal-looking ratings with ties
        ratings = np.round(ratings * 3)
    if np.ptp(ratings, axis=1).max() == 0 or np.ptp(ratings.mean(axis=1)) == 0:
        return  # no variance: pingouin and we both give 0/0, not a comparison worth making
    assert_icc_equals_pingouin(ratings)


def test_icc_reproduces_shrout_fleiss_1979_table_2() -> None:
    result = icc(SHROUT_FLEISS)
    published = {
        "ICC1": 0.17,
        "ICC2": 0.29,
        "ICC3": 0.71,
        "ICC1k": 0.44,
        "ICC2k": 0.62,
        "ICC3k": 0.91,
    }
    for form, value in published.items():
        assert round(result[form]["value"], 2) == value, form
    # The spec §3 example quotes ICC1 of this table: 0.17 [-0.13, 0.72].
    assert [round(v, 2) for v in result["ICC1"]["ci95"]] == [-0.13, 0.72]
    assert_icc_equals_pingouin(SHROUT_FLEISS)


def test_icc_rejects_incomplete_or_misshapen_ratings() -> None:
    with pytest.raises(ValueError, match="complete"):
        icc([[1.0, 2.0], [np.nan, 3.0], [2.0, 2.5]])
    with pytest.raises(ValueError, match="2-D"):
        icc([1.0, 2.0, 3.0])


def test_icc_with_too_few_targets_or_raters_is_nan_not_an_error() -> None:
    one_target = icc([[1.0, 2.0, 3.0]])
    one_rater = icc([[1.0], [2.0], [3.0]])
    for result in (one_target, one_rater):
        assert set(result) == set(ICC_FORMS)
        assert all(math.isnan(result[f]["value"]) for f in ICC_FORMS)


def test_icc_of_identical_readers_does_not_warn() -> None:
    column = np.array([2.1, 2.5, 3.0, 3.4])
    result = icc(np.column_stack([column, column, column]))  # RuntimeWarning would fail here
    assert result["ICC3"]["value"] == 1.0


# --- Bland-Altman ----------------------------------------------------------------------------


def test_bland_altman_reproduces_the_1986_pefr_example() -> None:
    result = bland_altman(WRIGHT, MINI_WRIGHT)
    assert result["n"] == 17
    assert round(result["bias"], 1) == -2.1  # published: -2.1 l/min
    assert round(result["sd"], 1) == 38.8  # published: 38.8 l/min
    # Published limits use 2 sd (-79.7, 75.5); spec §3 uses 1.96 sd: the spec's example numbers.
    assert [round(v, 1) for v in result["loa"]] == [-78.1, 73.9]
    # The paper computed its limits from the rounded mean and sd.
    bias, sd = round(result["bias"], 1), round(result["sd"], 1)
    assert (round(bias - 2 * sd, 1), round(bias + 2 * sd, 1)) == (-79.7, 75.5)
    # Bland & Altman (1986): standard error of a limit ≈ sqrt(3 s²/n) = 16.3 l/min here.
    t = stats.t.ppf(0.975, 16)
    (lo_lo, lo_hi), (hi_lo, hi_hi) = result["loa_ci95"]
    assert round((lo_hi - lo_lo) / (2 * t), 1) == 16.3
    assert (lo_lo + lo_hi) / 2 == pytest.approx(result["loa"][0])
    assert (hi_lo + hi_hi) / 2 == pytest.approx(result["loa"][1])
    assert hi_hi - hi_lo == pytest.approx(lo_hi - lo_lo)


def test_bland_altman_bias_interval_is_the_one_sample_t_interval() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(3, 0.3, 30), rng.normal(3.1, 0.3, 30)
    result = bland_altman(a, b)
    expected = stats.ttest_1samp(a - b, 0.0).confidence_interval(0.95)
    assert result["bias_ci95"] == pytest.approx([expected.low, expected.high], abs=1e-12)
    assert result["sd"] == pytest.approx(np.std(a - b, ddof=1), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proportional_bias_equals_statsmodels_ols(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(2, 4, 40)
    a = truth + rng.normal(0, 0.1, 40)
    b = 0.9 * truth + 0.2 + rng.normal(0, 0.1, 40)  # a proportional difference
    result = bland_altman(a, b)["proportional_bias"]
    fit = sm.OLS(a - b, sm.add_constant((a + b) / 2)).fit()
    assert result["intercept"] == pytest.approx(fit.params[0], abs=1e-10)
    assert result["slope"] == pytest.approx(fit.params[1], abs=1e-10)
    assert result["slope_ci95"] == pytest.approx(list(fit.conf_int(0.05)[1]), abs=1e-10)
    assert result["p"] == pytest.approx(fit.pvalues[1], abs=1e-12)


def test_bland_altman_small_samples_are_nan_where_undefined() -> None:
    one = bland_altman([3.0], [2.5])
    assert one["bias"] == 0.5
    assert math.isnan(one["sd"])
    two = bland_altman([3.0, 2.0], [2.5, 2.0])
    assert not math.isnan(two["sd"])
    assert math.isnan(two["proportional_bias"]["slope"])
    with pytest.raises(ValueError, match="length"):
        bland_altman([1.0, 2.0], [1.0])


# --- CCC, Pearson, Spearman ------------------------------------------------------------------


def independent_ccc(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Lin (1989) with the 2000 correction, as R's epiR::epi.ccc writes it (different algebra):
    the standard error of rho_c first, then divided by (1 - rho_c²) on the z scale."""
    k = len(x)
    cov = np.cov(x, y, bias=True)
    s_x2, s_y2, s_xy = cov[0, 0], cov[1, 1], cov[0, 1]
    p = 2 * s_xy / (s_x2 + s_y2 + (x.mean() - y.mean()) ** 2)
    r = np.corrcoef(x, y)[0, 1]
    u = (x.mean() - y.mean()) / (s_x2 * s_y2) ** 0.25
    sep = np.sqrt(
        (
            (1 - r**2) * p**2 * (1 - p**2) / r**2
            + 2 * p**3 * (1 - p) * u**2 / r
            - 0.5 * p**4 * u**4 / r**2
        )
        / (k - 2)
    )
    t = np.arctanh(p)
    set_ = sep / (1 - p**2)
    z = stats.norm.ppf(0.975)
    return float(p), float(np.tanh(t - z * set_)), float(np.tanh(t + z * set_))


def test_ccc_matches_the_spec_example_on_the_pefr_data() -> None:
    result = ccc(WRIGHT, MINI_WRIGHT)
    assert round(result["value"], 2) == 0.94
    assert [round(v, 2) for v in result["ci95"]] == [0.85, 0.98]


@pytest.mark.parametrize("seed", range(5))
def test_ccc_equals_an_independent_implementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    x = rng.normal(3, 0.4, n)
    y = 0.2 + 0.95 * x + rng.normal(0, rng.uniform(0.05, 0.5), n)
    value, lo, hi = independent_ccc(x, y)
    result = ccc(x, y)
    assert result["value"] == pytest.approx(value, abs=1e-12)
    assert result["ci95"] == pytest.approx([lo, hi], abs=1e-12)


def test_ccc_of_constant_readings_is_nan() -> None:
    assert math.isnan(ccc([3.0, 3.0, 3.0], [3.0, 3.0, 3.0])["value"])


@pytest.mark.parametrize("seed", range(4))
def test_pearson_and_spearman_equal_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    x = np.round(rng.normal(3, 0.4, n), 1)  # ties for Spearman
    y = np.round(x + rng.normal(0, 0.3, n), 1)
    ours, ref = pearson(x, y), stats.pearsonr(x, y)
    ci = ref.confidence_interval(0.95)
    assert ours["value"] == pytest.approx(ref.statistic, abs=1e-12)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-15)
    assert ours["ci95"] == pytest.approx([ci.low, ci.high], abs=1e-12)
    ours_s, ref_s = spearman(x, y), stats.spearmanr(x, y)
    assert ours_s["value"] == pytest.approx(ref_s.statistic, abs=1e-12)
    assert ours_s["p"] == pytest.approx(ref_s.pvalue, rel=1e-8, abs=1e-15)


def test_midranks_equal_scipy_rankdata() -> None:
    x = np.array([3.0, 1.0, 2.0, 3.0, 3.0, 0.5, 2.0, 7.0])
    assert midranks(x).tolist() == stats.rankdata(x).tolist()


# --- kappa -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "categories"), [(0, 2), (1, 2), (2, 3), (3, 5)])
def test_cohen_kappa_equals_sklearn(seed: int, categories: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, categories, 60)
    b = np.where(rng.random(60) < 0.7, a, rng.integers(0, categories, 60))
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    labels = np.array(["normal", "low", "osteoporosis", "x", "y"])
    assert cohen_kappa(labels[a], labels[b]) == pytest.approx(cohen_kappa(a, b), abs=1e-15)


@pytest.mark.parametrize(("seed", "raters", "categories"), [(0, 2, 2), (1, 3, 2), (2, 5, 3)])
def test_fleiss_kappa_equals_statsmodels(seed: int, raters: int, categories: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, categories, (50, 1))
    ratings = np.where(
        rng.random((50, raters)) < 0.75, truth, rng.integers(0, categories, (50, raters))
    )
    table, _ = aggregate_raters(ratings)
    assert fleiss_kappa(ratings) == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)


def test_kappa_is_nan_when_every_rating_is_one_category() -> None:
    assert math.isnan(cohen_kappa([True] * 5, [True] * 5))
    assert math.isnan(fleiss_kappa(np.ones((5, 3), dtype=bool)))


# --- analyse ---------------------------------------------------------------------------------


def rows_from(matrix: np.ndarray, readers: list[str], session: int = 1) -> list[dict[str, Any]]:
    return [
        {"case": f"c{i:03d}", "reader": reader, "session": session, "vbq": float(matrix[i, j])}
        for i in range(matrix.shape[0])
        for j, reader in enumerate(readers)
    ]


def test_analyse_has_the_spec_shape_on_the_pefr_example() -> None:
    rows = rows_from(np.column_stack([WRIGHT, MINI_WRIGHT]), ["A", "B"])
    result = analyse(rows, {"screening": 450.0})
    json.dumps(result, allow_nan=False)
    assert result["cases"] == 17
    assert result["readers"] == ["A", "B"]
    assert result["sessions"] == [1]
    inter = result["inter_reader"]
    assert inter["session"] == 1
    assert inter["n"] == 17
    assert set(inter["icc"]) == set(ICC_FORMS)
    assert set(inter["icc"]["ICC1"]) >= {"value", "ci95"}
    (pair,) = inter["pairs"]
    assert pair["readers"] == ["A", "B"]
    assert pair["n"] == 17
    assert round(pair["bland_altman"]["bias"], 1) == -2.1
    assert round(pair["bland_altman"]["sd"], 1) == 38.8
    assert [round(v, 1) for v in pair["bland_altman"]["loa"]] == [-78.1, 73.9]
    assert round(pair["ccc"]["value"], 2) == 0.94
    assert [round(v, 2) for v in pair["ccc"]["ci95"]] == [0.85, 0.98]
    kappa = inter["kappa"]["screening"]
    a = np.array(WRIGHT) >= 450
    b = np.array(MINI_WRIGHT) >= 450
    assert kappa["pairs"] == [
        {
            "readers": ["A", "B"],
            "cohen": pytest.approx(cohen_kappa_score(a, b)),
            "agreement": pytest.approx(np.mean(a == b)),
            "n": 17,
        }
    ]
    assert kappa["fleiss"] == pytest.approx(
        sm_fleiss_kappa(aggregate_raters(np.column_stack([a, b]))[0])
    )
    assert result["intra_reader"] == {}  # one session: nothing to compare
    assert result["inter_reader_by_session"] == [inter]


def test_analyse_inter_reader_icc_equals_pingouin_with_listwise_deletion() -> None:
    """Unbalanced data: a missing reading and a score not computed drop that case only."""
    rng = np.random.default_rng(5)
    matrix = random_ratings(rng, 30, 3)
    rows = rows_from(matrix, ["R1", "R2", "R3"])
    rows = [r for r in rows if not (r["case"] == "c004" and r["reader"] == "R2")]  # not read
    for r in rows:
        if r["case"] == "c007" and r["reader"] == "R3":
            r["vbq"] = None  # score not computed
    result = analyse(rows, {"t": 3.0})
    inter = result["inter_reader"]
    assert result["cases"] == 30
    assert result["readings"] == 89
    assert result["readings_without_vbq"] == 1
    assert inter["n"] == 28
    assert inter["cases_read"] == 30
    assert inter["cases_read_by_all"] == 29
    assert inter["vbq_by_reader"] == {"R1": 30, "R2": 29, "R3": 29}
    assert all(p["n"] == 28 for p in inter["pairs"])
    assert inter["kappa"]["t"]["n"] == 28
    complete = np.delete(matrix, [4, 7], axis=0)
    expected = icc(complete)
    for form in ICC_FORMS:
        assert inter["icc"][form]["value"] == pytest.approx(expected[form]["value"], abs=1e-12)
    long = pd.DataFrame(rows).dropna()
    saved = pg.options.get("round.column.CI95")
    pg.options["round.column.CI95"] = None
    try:
        ref = pg.intraclass_corr(long, "case", "reader", "vbq", nan_policy="omit")
    finally:
        pg.options["round.column.CI95"] = saved
    ref = ref.set_index("Type")
    for form, name in PINGOUIN_NAMES.items():
        assert inter["icc"][form]["value"] == pytest.approx(ref.loc[name, "ICC"], abs=1e-9)
        assert inter["icc"][form]["ci95"] == pytest.approx(list(ref.loc[name, "CI95"]), abs=1e-9)
    # Pairs are the sorted reader pairs, first − second, on the same complete cases.
    assert [p["readers"] for p in inter["pairs"]] == [
        list(c) for c in combinations(["R1", "R2", "R3"], 2)
    ]
    diff = complete[:, 0] - complete[:, 2]
    assert inter["pairs"][1]["bland_altman"]["bias"] == pytest.approx(diff.mean(), abs=1e-12)


def test_a_missing_reading_reduces_the_inter_reader_n() -> None:
    rng = np.random.default_rng(1)
    rows = rows_from(random_ratings(rng, 10, 2), ["A", "B"])
    assert analyse(rows)["inter_reader"]["n"] == 10
    assert analyse(rows[:-1])["inter_reader"]["n"] == 9


def test_analyse_intra_reader_compares_session_1_with_each_later_session() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(3, 0.4, 20)
    rows = []
    for session in (1, 2, 3):
        for reader in ("B", "A"):
            for i, t in enumerate(truth):
                if reader == "B" and session == 3:
                    continue  # B never read session 3
                if reader == "A" and session == 2 and i == 0:
                    continue  # A skipped one case in session 2
                rows.append(
                    {
                        "case": f"c{i}",
                        "reader": reader,
                        "session": session,
                        "vbq": t + rng.normal(0, 0.1),
                    }
                )
    result = analyse(rows, {"screening": 3.0})
    assert result["sessions"] == [1, 2, 3]
    assert result["readers"] == ["A", "B"]
    assert [b["session"] for b in result["inter_reader_by_session"]] == [1, 2, 3]
    assert result["inter_reader_by_session"][2]["readers"] == ["A"]
    assert result["inter_reader_by_session"][2]["pairs"] == []
    assert result["inter_reader_by_session"][2]["icc"]["ICC1"]["value"] is None
    intra_a = result["intra_reader"]["A"]
    assert intra_a["sessions"] == [1, 2]
    assert intra_a["n"] == 19
    assert [c["sessions"] for c in intra_a["by_session"]] == [[1, 2], [1, 3]]
    assert [c["n"] for c in intra_a["by_session"]] == [19, 20]
    assert {"ICC2", "ICC3"} <= set(intra_a["icc"])
    # Session 1 − session 2 of reader A, on the 19 cases read in both.
    by_key = {(r["case"], r["reader"], r["session"]): r["vbq"] for r in rows}
    first = np.array([by_key[(f"c{i}", "A", 1)] for i in range(1, 20)])
    second = np.array([by_key[(f"c{i}", "A", 2)] for i in range(1, 20)])
    assert intra_a["bland_altman"]["bias"] == pytest.approx(np.mean(first - second), abs=1e-12)
    expected = icc(np.column_stack([first, second]))
    assert intra_a["icc"]["ICC3"]["value"] == pytest.approx(expected["ICC3"]["value"], abs=1e-12)
    assert intra_a["kappa"]["screening"]["cohen"] == pytest.approx(
        cohen_kappa_score(first >= 3.0, second >= 3.0), abs=1e-12
    )
    intra_b = result["intra_reader"]["B"]
    assert [c["n"] for c in intra_b["by_session"]] == [20, 0]
    assert intra_b["by_session"][1]["icc"]["ICC3"]["value"] is None


def test_analyse_reports_levels_and_exclusion_agreement() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(12):
        base = rng.uniform(300, 500, 4)
        csf = rng.uniform(120, 180)
        for reader in ("A", "B", "C"):
            levels = {f"L{k + 1}": base[k] + rng.normal(0, 10) for k in range(4)}
            if i < 3:
                levels["L4"] = None  # all three exclude L4 (a fracture)
            if i == 5 and reader == "C":
                levels["L2"] = None  # C alone excludes L2
            rows.append(
                {
                    "case": f"c{i}",
                    "reader": reader,
                    "session": 1,
                    "vbq": float(np.median([v for v in levels.values() if v]) / csf),
                    "CSF": csf + rng.normal(0, 3),
                    **levels,
                }
            )
    inter = analyse(rows)["inter_reader"]
    assert set(inter["levels"]) == {"L1", "L2", "L3", "L4", "CSF"}
    assert inter["levels"]["L1"]["n"] == 12
    assert inter["levels"]["L2"]["n"] == 11
    assert inter["levels"]["L4"]["n"] == 9
    assert set(inter["levels"]["CSF"]["icc"]) == set(ICC_FORMS)
    assert len(inter["levels"]["L1"]["pairs"]) == 3
    l4 = inter["exclusions"]["L4"]
    assert l4["n"] == 12
    assert l4["excluded"] == {"A": 3, "B": 3, "C": 3}
    assert l4["fleiss"] == pytest.approx(1.0)
    l2 = inter["exclusions"]["L2"]
    assert l2["excluded"] == {"A": 0, "B": 0, "C": 1}
    a_c = next(p for p in l2["pairs"] if p["readers"] == ["A", "C"])
    assert (a_c["both"], a_c["first_only"], a_c["second_only"], a_c["neither"]) == (0, 0, 1, 11)
    assert a_c["agreement"] == pytest.approx(11 / 12)
    assert "CSF" not in inter["exclusions"]


def test_analyse_rejects_duplicates_and_bad_sessions() -> None:
    row = {"case": "c1", "reader": "A", "session": 1, "vbq": 3.0}
    with pytest.raises(AgreementInputError, match="duplicate"):
        analyse([row, dict(row)])
    for bad in (0, -1, 1.5, "x", True):
        with pytest.raises(AgreementInputError, match="positive integer"):
            analyse([row | {"session": bad}])
    with pytest.raises(AgreementInputError, match="not a number"):
        analyse([row | {"vbq": "abc"}])
    with pytest.raises(AgreementInputError, match="missing"):
        analyse([{"case": "c1", "reader": "A", "session": 1}])


def test_analyse_accepts_sequences_and_reports_nan_as_null() -> None:
    rows = [("c1", "A", 1, 3.0), ("c1", "B", 1, 3.0), ("c2", "A", 1, 3.0), ("c2", "B", 1, 3.0)]
    result = analyse(rows, {"t": 2.9})
    text = json.dumps(result, allow_nan=False)  # no NaN leaks into the JSON
    assert result["inter_reader"]["n"] == 2
    assert result["inter_reader"]["pairs"][0]["ccc"]["value"] is None
    assert result["inter_reader"]["kappa"]["t"]["pairs"][0]["cohen"] is None
    assert result["inter_reader"]["kappa"]["t"]["pairs"][0]["agreement"] == 1.0
    assert "NaN" not in text
