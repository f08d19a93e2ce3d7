"""Bonett (2002) sample sizes for a target ICC interval width (spec §6)."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from studies.stats.planning import PlanningInputError, cases_needed, plan, precision_so_far


def bonett_by_hand(r: float, k: int, w: float, confidence: float = 0.95) -> int:
    z = norm.ppf(1 - (1 - confidence) / 2)
    return math.ceil(1 + 8 * z**2 * (1 - r) ** 2 * (1 + (k - 1) * r) ** 2 / (k * (k - 1) * w**2))


def test_the_published_example_needs_51_cases() -> None:
    # Spec §6 and Bonett (2002): ICC 0.8, two raters, 95 % interval 0.2 wide -> 51 cases.
    assert cases_needed(0.8, 2, 0.2) == 51
    assert plan(0.8, 2, 0.2) == {
        "cases": 51,
        "icc": 0.8,
        "readers": 2,
        "width": 0.2,
        "confidence": 0.95,
        "method": "Bonett 2002",
    }


@pytest.mark.parametrize(
    ("r", "k", "w", "published"),
    [
        # Spec §6 / Bonett (2002), also the worked example of the Psychometric sample-size
        # calculators (ptenklooster.nl): ICC 0.8, k 2, width 0.2 -> 51 subjects.
        (0.8, 2, 0.2, 51),
        # R package ICC, Nest(est.type="hypothetical", w=0.20, ICC=0.70, k=2) -> 101 (an
        # independent implementation of Bonett's formula, printed in the ASA CNSL forum).
        (0.7, 2, 0.2, 101),
    ],
)
def test_sample_sizes_printed_by_others(r: float, k: int, w: float, published: int) -> None:
    assert cases_needed(r, k, w) == published


@pytest.mark.parametrize("r", [0.5, 0.6, 0.7, 0.8, 0.9])
@pytest.mark.parametrize("k", [2, 3, 4, 5, 10])
@pytest.mark.parametrize("w", [0.1, 0.2, 0.3])
def test_the_formula_over_bonetts_grid(r: float, k: int, w: float) -> None:
    assert cases_needed(r, k, w) == bonett_by_hand(r, k, w)


def test_more_confidence_or_a_narrower_interval_needs_more_cases() -> None:
    assert cases_needed(0.8, 3, 0.2, 0.99) > cases_needed(0.8, 3, 0.2) > cases_needed(0.8, 3, 0.3)
    assert cases_needed(0.8, 3, 0.2, 0.99) == bonett_by_hand(0.8, 3, 0.2, 0.99)


@pytest.mark.parametrize(
    ("args", "word"),
    [
        ((0.0, 2, 0.2), "--icc"),
        ((1.0, 2, 0.2), "--icc"),
        ((float("nan"), 2, 0.2), "--icc"),
        ((0.8, 1, 0.2), "--readers"),
        ((0.8, 2, 0.0), "--width"),
        ((0.8, 2, 1.0), "--width"),
        ((0.8, 2, 0.2, 1.0), "--confidence"),
    ],
)
def test_out_of_domain_input_is_refused(args: tuple[float, ...], word: str) -> None:
    with pytest.raises(PlanningInputError, match=word):
        cases_needed(*args)  # type: ignore[arg-type]


def test_precision_so_far_says_how_many_more_cases() -> None:
    status = precision_so_far(0.8, [0.6, 0.9], readers=2, cases=20, target_width=0.2)
    assert status is not None
    assert status["width"] == pytest.approx(0.3)
    assert not status["reached"]
    assert status["cases_needed"] == 51
    assert status["more_cases"] == 31
    reached = precision_so_far(0.8, [0.75, 0.85], readers=2, cases=60, target_width=0.2)
    assert reached is not None
    assert reached["reached"]
    assert reached["more_cases"] == 0
    assert precision_so_far(float("nan"), [0.1, 0.2], 2, 5, 0.2) is None
    assert precision_so_far(-0.1, [-0.5, 0.3], 2, 5, 0.2) is None


def test_the_planning_table_uses_the_studys_readers() -> None:
    from studies.stats.planning import planning_table

    table = planning_table(3)
    assert table["readers"] == 3
    row = next(r for r in table["rows"] if r["icc"] == 0.8)
    assert row["cases"][table["widths"].index(0.2)] == bonett_by_hand(0.8, 3, 0.2)
    assert planning_table(0)["readers"] == 2  # no readers yet: plan for the minimum
