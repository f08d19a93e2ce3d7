"""Agreement per stratum (issue 14 item 3) against an independent computation per subset.

The ICCs of each stratum are checked against pingouin's ``intraclass_corr`` on that stratum's
cases alone, the Bland–Altman figures against a direct numpy computation (two readers: the
usual mean ± 1.96 sd of the differences; more: every pair pooled), the distribution against
``numpy.percentile`` of the case means; a stratum under 10 complete cases carries the note and
no figures, and the plot colours the strata apart.
"""

from __future__ import annotations

import re
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

from studies.stats.plots import STRATUM_COLOURS, strata_bland_altman_svg
from studies.stats.strata import (
    FIELD_STRENGTH,
    MANUFACTURER,
    UNKNOWN,
    field_strength_label,
    manufacturer_label,
    plot_groups,
    stratify,
    too_few_note,
)


def study(seed: int = 4, readers: int = 3) -> list[dict[str, Any]]:
    """40 cases: 24 at 1.5 T (Siemens/GE), 12 at 3 T, 4 unknown; a 'site' attribute; 2 sessions."""
    rng = np.random.default_rng(seed)
    rows = []
    for case in range(40):
        tesla = 1.5 if case < 24 else (3.0 if case < 36 else None)
        truth = rng.normal(2.8 if tesla == 1.5 else 2.2, 0.4)
        noise = 0.05 if tesla == 1.5 else 0.15  # readers agree better at 1.5 T
        for session in (1, 2):
            for reader in range(readers):
                vbq = truth + 0.03 * reader + rng.normal(0, noise)
                missing = case == 5 and reader == 1 and session == 1  # one incomplete case
                rows.append(
                    {
                        "case": f"C{case:02d}",
                        "reader": f"R{reader}",
                        "session": session,
                        "vbq": None if missing else float(vbq),
                        "strata": {
                            FIELD_STRENGTH: field_strength_label(tesla),
                            MANUFACTURER: manufacturer_label("SIEMENS" if case % 2 else " GE "),
                            **({"site": "A" if case < 20 else "B"} if case != 39 else {}),
                        },
                    }
                )
    return rows


def stratum(result: dict[str, Any], dimension: str, value: str) -> dict[str, Any]:
    block = next(d for d in result["dimensions"] if d["name"] == dimension)
    return next(s for s in block["strata"] if s["value"] == value)


def subset(rows: list[dict[str, Any]], dimension: str, value: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {"case": r["case"], "reader": r["reader"], "vbq": r["vbq"]}
            for r in rows
            if r["session"] == 1 and (r["strata"].get(dimension) or UNKNOWN) == value
        ]
    )
    wide = frame.pivot(index="case", columns="reader", values="vbq")
    return wide


def test_labels() -> None:
    assert field_strength_label(1.5) == "1.5 T"
    assert field_strength_label(3.0) == "3 T"
    assert field_strength_label(None) == UNKNOWN
    assert field_strength_label("") == UNKNOWN
    assert manufacturer_label("  GE  MEDICAL ") == "GE MEDICAL"
    assert manufacturer_label("") == UNKNOWN


@pytest.mark.parametrize(
    ("dimension", "value"),
    [(FIELD_STRENGTH, "1.5 T"), (FIELD_STRENGTH, "3 T"), (MANUFACTURER, "SIEMENS"),
     (MANUFACTURER, "GE"), ("site", "A"), ("site", "B")],
)  # fmt: skip
def test_each_stratum_matches_pingouin_and_numpy_on_its_own_cases(
    dimension: str, value: str
) -> None:
    rows = study()
    result = stratify(rows)
    ours = stratum(result, dimension, value)
    wide = subset(rows, dimension, value)
    complete = wide.dropna()
    assert ours["cases"] == len(wide)
    assert ours["n"] == len(complete) >= 10
    long = complete.reset_index().melt(id_vars="case", var_name="reader", value_name="vbq")
    theirs = pg.intraclass_corr(long, targets="case", raters="reader", ratings="vbq")
    theirs = theirs.set_index("Type")
    for form, name in (("ICC2", "ICC(A,1)"), ("ICC3", "ICC(C,1)")):
        assert ours["icc"][form]["value"] == pytest.approx(theirs.loc[name, "ICC"], abs=1e-9)
        assert ours["icc"][form]["ci95"] == pytest.approx(list(theirs.loc[name, "CI95"]), abs=0.01)
    x = complete.to_numpy()
    diffs = np.concatenate([x[:, i] - x[:, j] for i, j in combinations(range(x.shape[1]), 2)])
    ba = ours["bland_altman"]
    assert ba["bias"] == pytest.approx(diffs.mean(), abs=1e-12)
    assert ba["sd"] == pytest.approx(diffs.std(ddof=1), abs=1e-12)
    assert ba["loa"] == pytest.approx([diffs.mean() - 1.96 * diffs.std(ddof=1),
                                       diffs.mean() + 1.96 * diffs.std(ddof=1)])  # fmt: skip
    means = wide.mean(axis=1, skipna=True).to_numpy()
    q1, median, q3 = np.percentile(means, [25, 50, 75])
    dist = ours["distribution"]
    assert (dist["n"], dist["median"], dist["q1"], dist["q3"]) == (
        len(means),
        pytest.approx(median),
        pytest.approx(q1),
        pytest.approx(q3),
    )
    assert (dist["min"], dist["max"]) == (pytest.approx(means.min()), pytest.approx(means.max()))


def test_two_readers_give_the_classic_bland_altman() -> None:
    rows = study(readers=2)
    ours = stratum(stratify(rows), FIELD_STRENGTH, "1.5 T")["bland_altman"]
    x = subset(rows, FIELD_STRENGTH, "1.5 T").dropna().to_numpy()
    d = x[:, 0] - x[:, 1]
    assert (ours["pairs"], ours["differences"]) == (1, d.size)
    assert ours["bias"] == pytest.approx(d.mean())


def test_the_stratum_shows_what_the_data_say() -> None:
    result = stratify(study())
    wide, narrow = stratum(result, FIELD_STRENGTH, "1.5 T"), stratum(result, FIELD_STRENGTH, "3 T")
    assert wide["distribution"]["median"] > narrow["distribution"]["median"] + 0.3
    assert narrow["bland_altman"]["sd"] > 2 * wide["bland_altman"]["sd"]


def test_a_stratum_under_ten_cases_says_so_instead_of_figures() -> None:
    result = stratify(study())
    small = stratum(result, FIELD_STRENGTH, UNKNOWN)
    assert (small["cases"], small["n"], small["too_few"]) == (4, 4, True)
    assert small["note"] == too_few_note(4) == "too few cases (n = 4) for a reliable estimate"
    assert small["icc"] is None
    assert small["bland_altman"] is None
    assert small["distribution"]["n"] == 4  # described all the same
    missing_attribute = stratum(result, "site", UNKNOWN)
    assert missing_attribute["cases"] == 1
    assert missing_attribute["too_few"]


def test_dimensions_order_and_unknown_last() -> None:
    result = stratify(study())
    assert [d["name"] for d in result["dimensions"]] == [FIELD_STRENGTH, MANUFACTURER, "site"]
    values = [s["value"] for s in result["dimensions"][0]["strata"]]
    assert values == ["1.5 T", "3 T", UNKNOWN]
    assert result["session"] == 1
    assert result["readers"] == ["R0", "R1", "R2"]
    assert stratify(study(), session=2)["session"] == 2


def test_a_dimension_with_too_many_values_is_not_split() -> None:
    rows = study()
    for row in rows:
        row["strata"]["age"] = str(40 + int(row["case"][1:]))
    age = next(d for d in stratify(rows)["dimensions"] if d["name"] == "age")
    assert age["strata"] == []
    assert "too many strata" in age["note"]


def test_records_without_strata_are_unknown() -> None:
    rows = [{k: v for k, v in r.items() if k != "strata"} for r in study()]
    result = stratify(rows)
    assert [d["name"] for d in result["dimensions"]] == [FIELD_STRENGTH, MANUFACTURER]
    only = result["dimensions"][0]["strata"]
    assert [s["value"] for s in only] == [UNKNOWN]
    assert only[0]["n"] == 39


def test_the_plot_colours_each_stratum_and_draws_its_limits() -> None:
    groups = plot_groups(study(), FIELD_STRENGTH)
    assert list(groups) == ["1.5 T", "3 T", UNKNOWN]
    svg = strata_bland_altman_svg(groups, title="Bland–Altman by field strength",
                                  with_limits={"1.5 T", "3 T"})  # fmt: skip
    assert svg.startswith("<svg")
    for index in range(3):
        assert re.search(rf'id="v[0-9a-f]+-stratum-{index}"', svg)
    for colour in STRATUM_COLOURS[:3]:
        assert colour.lower() in svg.lower()
    assert re.search(r'id="v[0-9a-f]+-stratum-1-loa-upper"', svg)
    assert not re.search(r'id="v[0-9a-f]+-stratum-2-loa-upper"', svg)  # too few: no lines
    assert "1.5 T" in svg
    assert "3 T" in svg
    assert "not enough data" in strata_bland_altman_svg({}, title="empty")
