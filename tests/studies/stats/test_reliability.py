"""Variance components, SEM and SDC (spec §6) against statsmodels' ANOVA and published values.

The oracle is an ordinary two-way ANOVA fitted by statsmodels (``ols`` + ``anova_lm``) on the
Shrout & Fleiss (1979) table of 6 targets × 4 judges, whose mean squares the paper prints
(BMS 11.24, JMS 32.49, EMS 1.02); the variance components then follow spec §6's formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from studies.stats.reliability import SDC_FACTOR, mean_squares, measurement_error

# Shrout & Fleiss (1979), Table 2: 6 targets (rows) rated by 4 judges (columns).
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def statsmodels_mean_squares(x: np.ndarray) -> tuple[float, float, float]:
    n, k = x.shape
    long = pd.DataFrame(
        {
            "score": x.ravel(),
            "target": np.repeat(np.arange(n), k).astype(str),
            "judge": np.tile(np.arange(k), n).astype(str),
        }
    )
    table = anova_lm(smf.ols("score ~ C(target) + C(judge)", data=long).fit())
    return (
        float(table.loc["C(target)", "mean_sq"]),
        float(table.loc["C(judge)", "mean_sq"]),
        float(table.loc["Residual", "mean_sq"]),
    )


def test_mean_squares_match_statsmodels_and_the_published_table() -> None:
    ms = mean_squares(SHROUT_FLEISS)
    msr, msc, mse = statsmodels_mean_squares(SHROUT_FLEISS)
    assert (ms.msr, ms.msc, ms.mse) == pytest.approx((msr, msc, mse), rel=1e-12)
    # The paper's rounded mean squares (BMS, JMS, EMS).
    assert (round(ms.msr, 2), round(ms.msc, 2), round(ms.mse, 2)) == (11.24, 32.49, 1.02)


def test_variance_components_sem_and_sdc_on_the_shrout_fleiss_table() -> None:
    msr, msc, mse = statsmodels_mean_squares(SHROUT_FLEISS)
    n, k = SHROUT_FLEISS.shape
    error = measurement_error(SHROUT_FLEISS)
    components = error["variance_components"]
    assert components["case"] == pytest.approx((msr - mse) / k, rel=1e-12)
    assert components["reader"] == pytest.approx((msc - mse) / n, rel=1e-12)
    assert components["residual"] == pytest.approx(mse, rel=1e-12)
    assert error["sem"]["agreement"] == pytest.approx(math.sqrt((msc - mse) / n + mse))
    assert error["sem"]["consistency"] == pytest.approx(math.sqrt(mse))
    assert error["sdc"]["agreement"] == pytest.approx(
        1.96 * math.sqrt(2) * error["sem"]["agreement"]
    )
    assert error["sdc"]["consistency"] == pytest.approx(
        1.96 * math.sqrt(2) * error["sem"]["consistency"]
    )
    # The ICC that goes with them: ICC2 = case / (case + reader + residual) (Shrout & Fleiss 0.29).
    icc2 = components["case"] / sum(components.values())
    assert round(icc2, 2) == 0.29


def test_the_spec_example_sem_and_sdc_follow_from_its_components() -> None:
    # Spec §6's example: components 0.061 / 0.0009 / 0.0105 -> sem 0.107 / 0.102, sdc 0.297 / 0.284.
    sem_agreement, sem_consistency = math.sqrt(0.0009 + 0.0105), math.sqrt(0.0105)
    assert (round(sem_agreement, 3), round(sem_consistency, 3)) == (0.107, 0.102)
    assert round(SDC_FACTOR * sem_agreement, 3) == 0.296  # the spec rounds sem first: 0.297
    assert round(SDC_FACTOR * 0.107, 3) == 0.297
    assert round(SDC_FACTOR * sem_consistency, 3) == 0.284


def test_a_negative_reader_component_is_reported_as_zero() -> None:
    # Raters with identical means but noisy readings: MSC < MSE.
    x = np.array([[1.0, 1.2], [2.2, 2.0], [3.0, 3.0], [4.1, 3.9]])
    ms = mean_squares(x)
    assert ms.msc < ms.mse
    error = measurement_error(x)
    assert error["variance_components"]["reader"] == 0.0
    assert error["sem"]["agreement"] == error["sem"]["consistency"]


def test_readers_who_differ_systematically_widen_the_agreement_sem_only() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(3.0, 0.3, size=(200, 1))
    x = truth + rng.normal(0, 0.05, size=(200, 3)) + np.array([0.0, 0.2, -0.2])
    error = measurement_error(x)
    assert error["sem"]["consistency"] == pytest.approx(0.05, rel=0.15)
    assert error["sem"]["agreement"] > 2 * error["sem"]["consistency"]
    assert error["variance_components"]["reader"] == pytest.approx(0.04, rel=0.1)


@pytest.mark.parametrize("shape", [(1, 3), (5, 1), (0, 2)])
def test_too_few_cases_or_raters_give_nan(shape: tuple[int, int]) -> None:
    error = measurement_error(np.ones(shape))
    assert all(math.isnan(v) for v in error["variance_components"].values())
    assert all(math.isnan(v) for v in error["sem"].values())


def test_incomplete_matrices_are_refused() -> None:
    with pytest.raises(ValueError, match="complete"):
        measurement_error(np.array([[1.0, np.nan], [2.0, 2.0]]))
