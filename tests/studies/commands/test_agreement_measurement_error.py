"""``manage.py agreement``'s spec §6 keys: measurement error and categorical agreement.

Every figure is recomputed here from the CSV with independent tools: statsmodels' two-way ANOVA
for the variance components, scikit-learn for the weighted kappas, plain counting for the
percent agreement and Gwet's formula written out for AC1.
"""

from __future__ import annotations

import io
import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from django.core.management import call_command
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.anova import anova_lm

from tests.helpers.cli import run_manage

READERS = ["A", "B", "C"]
THRESHOLDS = {"screening": 2.95, "high": 3.3}


def readings(seed: int = 14, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.normal(3.0, 0.35, n)
    rows = []
    for session in (1, 2):
        for j, reader in enumerate(READERS):
            for i in range(n):
                if session == 1 and reader == "C" and i == 7:
                    continue  # C skipped a case: inter-reader statistics use the other 39
                vbq = truth[i] + 0.05 * (j - 1) + rng.normal(0, 0.1)
                rows.append({"case": f"c{i:02d}", "reader": reader, "session": session, "vbq": vbq})
    return pd.DataFrame(rows)


def run(tmp_path: Path, data: pd.DataFrame, thresholds: dict[str, float]) -> dict[str, Any]:
    path = tmp_path / "readings.csv"
    data.to_csv(path, index=False)
    args = [f"--threshold={name}={value}" for name, value in thresholds.items()]
    out = io.StringIO()
    call_command("agreement", str(path), *args, stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def anova_error(matrix: np.ndarray) -> dict[str, dict[str, float]]:
    n, k = matrix.shape
    long = pd.DataFrame(
        {
            "y": matrix.ravel(),
            "case": np.repeat(np.arange(n), k).astype(str),
            "rater": np.tile(np.arange(k), n).astype(str),
        }
    )
    table = anova_lm(smf.ols("y ~ C(case) + C(rater)", data=long).fit())
    msr, msc, mse = (
        float(table.loc[row, "mean_sq"]) for row in ("C(case)", "C(rater)", "Residual")
    )
    components = {
        "case": max(0.0, (msr - mse) / k),
        "reader": max(0.0, (msc - mse) / n),
        "residual": mse,
    }
    sem = {
        "agreement": math.sqrt(components["reader"] + components["residual"]),
        "consistency": math.sqrt(components["residual"]),
    }
    sdc = {key: 1.96 * math.sqrt(2) * value for key, value in sem.items()}
    return {"variance_components": components, "sem": sem, "sdc": sdc}


def wide(data: pd.DataFrame, session: int) -> np.ndarray:
    table = data[data.session == session].pivot(index="case", columns="reader", values="vbq")
    return table[READERS].dropna().to_numpy()


def test_inter_reader_measurement_error_per_session(tmp_path: Path) -> None:
    data = readings()
    result = run(tmp_path, data, THRESHOLDS)
    blocks = result["inter_reader_by_session"]
    assert [b["session"] for b in blocks] == [1, 2]
    for block in [result["inter_reader"], *blocks]:
        expected = anova_error(wide(data, block["session"]))
        for key in ("variance_components", "sem", "sdc"):
            assert set(block[key]) == set(expected[key])
            for name, value in expected[key].items():
                assert block[key][name] == pytest.approx(value, rel=1e-9), (key, name)
    assert result["inter_reader"]["n"] == 39


def test_intra_reader_sem_and_sdc_treat_the_session_as_the_rater(tmp_path: Path) -> None:
    data = readings()
    result = run(tmp_path, data, THRESHOLDS)
    for reader in READERS:
        mine = data[data.reader == reader].pivot(index="case", columns="session", values="vbq")
        expected = anova_error(mine.dropna().to_numpy())
        entry = result["intra_reader"][reader]
        for block in (entry, entry["by_session"][0]):
            for key in ("sem", "sdc"):
                assert set(block[key]) == {"agreement", "consistency"}
                for name, value in expected[key].items():
                    assert block[key][name] == pytest.approx(value, rel=1e-9)


def ordered(values: np.ndarray) -> np.ndarray:
    return sum((values >= t).astype(int) for t in THRESHOLDS.values())  # type: ignore[return-value]


def test_weighted_kappa_per_reader_pair_with_two_thresholds(tmp_path: Path) -> None:
    data = readings()
    result = run(tmp_path, data, THRESHOLDS)
    matrix = wide(data, 1)
    levels = ordered(matrix)
    pairs = result["inter_reader"]["weighted_kappa"]["pairs"]
    assert [p["readers"] for p in pairs] == [list(p) for p in combinations(READERS, 2)]
    for pair, (i, j) in zip(pairs, combinations(range(3), 2), strict=True):
        assert set(pair) == {"readers", "n", "linear", "quadratic"}
        assert pair["n"] == 39
        for weights in ("linear", "quadratic"):
            expected = cohen_kappa_score(
                levels[:, i], levels[:, j], weights=weights, labels=[0, 1, 2]
            )
            assert pair[weights] == pytest.approx(expected, abs=1e-12)


def test_one_threshold_has_no_weighted_kappa(tmp_path: Path) -> None:
    result = run(tmp_path, readings(), {"screening": 2.95})
    assert "weighted_kappa" not in result["inter_reader"]
    assert all("weighted_kappa" not in b for b in result["inter_reader_by_session"])


def ac1(categories: np.ndarray) -> float:
    """Gwet (2008), two categories, every case rated by all k readers."""
    k = categories.shape[1]
    positive = categories.sum(axis=1)
    pa = np.mean((positive * (positive - 1) + (k - positive) * (k - positive - 1)) / (k * (k - 1)))
    pi = positive.mean() / k
    pe = 2 * pi * (1 - pi)
    return float((pa - pe) / (1 - pe))


def test_each_threshold_adds_percent_agreement_ac1_and_the_fleiss_interval(tmp_path: Path) -> None:
    data = readings()
    result = run(tmp_path, data, THRESHOLDS)
    matrix = wide(data, 1)
    for name, threshold in THRESHOLDS.items():
        entry = result["inter_reader"]["kappa"][name]
        categories = (matrix >= threshold).astype(int)
        all_agree = (categories.min(axis=1) == categories.max(axis=1)).mean()
        assert entry["percent_agreement"] == pytest.approx(all_agree)
        assert entry["gwet_ac1"] == pytest.approx(ac1(categories), abs=1e-12)
        lo, hi = entry["fleiss_ci95"]
        assert -1 <= lo < entry["fleiss"] < hi <= 1


def test_the_command_line_json_has_the_keys_and_no_nan(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    readings(n=12).to_csv(path, index=False)
    done = run_manage("agreement", str(path), "--threshold", "a=2.9", "--threshold", "b=3.2")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    inter = result["inter_reader"]
    assert {"variance_components", "sem", "sdc", "weighted_kappa"} <= set(inter)
    assert {"percent_agreement", "gwet_ac1", "fleiss_ci95"} <= set(inter["kappa"]["a"])
    assert {"sem", "sdc"} <= set(result["intra_reader"]["A"])
