"""SVG plots of :mod:`studies.stats.plots`: valid, deterministic, text as text, never raising on
data."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from studies.stats.diagnostics import roc_auc, roc_curve, youden
from studies.stats.plots import (
    NOT_ENOUGH,
    bland_altman_svg,
    finite_pairs,
    levels_scatter_svg,
    roc_svg,
    scatter_svg,
    unique_ids,
)

SVG_NS = "{http://www.w3.org/2000/svg}"


def _pairs(seed: int = 1, n: int = 15) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(2.2, 3.8, n)
    return (truth + rng.normal(0, 0.1, n)).tolist(), (truth + rng.normal(0.05, 0.1, n)).tolist()


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    return root


def _texts(svg: str) -> str:
    """All text content: with svg.fonttype = none, labels are <text> elements, not paths."""
    return " ".join("".join(t.itertext()) for t in _parse(svg).iter(f"{SVG_NS}text"))


def _ids(svg: str) -> list[str]:
    return [e.get("id", "") for e in _parse(svg).iter() if e.get("id")]


def test_bland_altman_is_valid_deterministic_and_labelled() -> None:
    a, b = _pairs()
    svg = bland_altman_svg(a, b, first_label="Reader A", second_label="Reader B", title="BA")
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert "<metadata" not in svg  # no creation date: deterministic
    assert svg == bland_altman_svg(
        a, b, first_label="Reader A", second_label="Reader B", title="BA"
    )
    text = _texts(svg)
    assert "BA (n = 15)" in text
    assert "Mean of Reader A and Reader B" in text
    assert "Reader A − Reader B" in text
    assert "bias" in text
    assert "+1.96 sd" in text
    roles = {i.split("-", 1)[1] for i in _ids(svg)}
    assert {"bias", "loa-upper", "loa-lower", "bias-ci", "loa-lower-ci", "loa-upper-ci"} <= roles


def test_scatter_has_identity_thresholds_and_statistics() -> None:
    a, b = _pairs(2)
    svg = scatter_svg(
        a,
        b,
        x_label="VBQ, A",
        y_label="VBQ, B",
        title="Scatter",
        thresholds={"screening": 2.95, "fracture": 3.05},
    )
    ids = _ids(svg)
    assert any(i.endswith("-identity") for i in ids)
    assert any(i.endswith("-threshold-0-x") for i in ids)
    assert any(i.endswith("-threshold-1-y") for i in ids)
    text = _texts(svg)
    for expected in ("Scatter", "VBQ, A", "VBQ, B", "CCC", "Pearson r", "n = 15", "screening"):
        assert expected in text
    # The identity line runs corner to corner of equal axes: its path has equal x and y spans.
    root = _parse(svg)
    identity = next(e for e in root.iter() if e.get("id", "").endswith("-identity"))
    path = next(identity.iter(f"{SVG_NS}path"))
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
    (x0, y0, x1, y1) = numbers[:4]
    assert abs(x1 - x0) == pytest.approx(abs(y1 - y0), rel=1e-3)


def test_none_and_nan_pairs_are_dropped() -> None:
    x = [1.0, None, math.nan, 3.0, 4.0, 5.0]
    y = [1.1, 2.0, 3.0, math.nan, 4.2, 4.9]
    assert finite_pairs(x, y)[0].tolist() == [1.0, 4.0, 5.0]
    text = _texts(scatter_svg(x, y, x_label="x", y_label="y", title="t", thresholds=None))
    assert "n = 3" in text
    ba = _texts(bland_altman_svg(x, y, first_label="a", second_label="b", title="t"))
    assert "t (n = 3)" in ba


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([], []),
        ([1.0], [2.0]),
        ([None, math.nan], [1.0, 2.0]),
        ([math.nan] * 5, [math.nan] * 5),
    ],
)
def test_fewer_than_two_points_say_so(x: list[float | None], y: list[float | None]) -> None:
    for svg in (
        bland_altman_svg(x, y, first_label="a", second_label="b", title="Title"),
        scatter_svg(x, y, x_label="a", y_label="b", title="Title", thresholds={"t": 3.0}),
        levels_scatter_svg({"L1": (x, y)}, x_label="a", y_label="b", title="Title"),
    ):
        text = _texts(svg)
        assert NOT_ENOUGH in text
        assert "Title" in text


def test_identical_values_do_not_raise() -> None:
    """Zero spread: CCC and r are undefined, the plot still draws."""
    svg = scatter_svg([3.0, 3.0, 3.0], [3.0, 3.0, 3.0], x_label="a", y_label="b", title="t")
    assert "CCC –" in _texts(svg)
    ba = bland_altman_svg([3.0, 3.0], [3.0, 3.0], first_label="a", second_label="b", title="t")
    assert "bias 0.00" in _texts(ba)


def test_levels_scatter_shows_each_level_with_its_count() -> None:
    rng = np.random.default_rng(3)
    series = {}
    for level in ("L1", "L2", "L3", "L4"):
        x = rng.uniform(300, 700, 10)
        y = x + rng.normal(0, 20, 10)
        if level == "L4":
            x[0] = math.nan  # an excluded level
        series[level] = (x.tolist(), y.tolist())
    svg = levels_scatter_svg(series, x_label="SI, A", y_label="SI, B", title="Levels")
    text = _texts(svg)
    assert "L1 (n = 10)" in text
    assert "L4 (n = 9)" in text
    assert "n = 39" in text
    assert any(i.endswith("-identity") for i in _ids(svg))


def test_roc_curve_with_auc_and_youden() -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, 40)
    scores = 2.8 + 0.4 * truth + rng.normal(0, 0.25, 40)
    curve = roc_curve(scores, truth)
    auc = roc_auc(scores, truth)
    best = youden(scores, truth)
    svg = roc_svg(
        curve,
        auc=auc["auc"],
        ci95=auc["ci95"],
        youden=best,
        title="ROC: osteoporosis",
        counts=(auc["n_positive"], auc["n_negative"]),
    )
    text = _texts(svg)
    assert "ROC: osteoporosis" in text
    assert "AUC" in text
    assert "Youden cut-off" in text
    assert f"{auc['n_positive']} positive" in text
    assert "1 − specificity (false-positive rate)" in text
    ids = _ids(svg)
    assert any(i.endswith("-youden") for i in ids)
    assert any(i.endswith("-chance") for i in ids)
    # One class only: no curve to draw.
    empty = roc_svg(roc_curve([1.0, 2.0], [1, 1]), auc=None, ci95=None, title="ROC")
    assert NOT_ENOUGH in _texts(empty)


def test_ids_are_unique_across_figures() -> None:
    a, b = _pairs(5)
    c, d = _pairs(6)
    first = scatter_svg(a, b, x_label="x", y_label="y", title="one")
    second = scatter_svg(c, d, x_label="x", y_label="y", title="two")
    assert not set(_ids(first)) & set(_ids(second))
    # References follow their ids.
    for svg in (first, second):
        ids = set(_ids(svg))
        for ref in re.findall(r"url\(#([^)]+)\)", svg) + re.findall(r'href="#([^"]+)"', svg):
            assert ref in ids


def test_unique_ids_rewrites_references() -> None:
    svg = '<svg><clipPath id="c1"/><g clip-path="url(#c1)"><use xlink:href="#m"/></g></svg>'
    out = unique_ids(svg)
    prefix = re.search(r'id="([^"]+)-c1"', out)
    assert prefix is not None
    assert f"url(#{prefix[1]}-c1)" in out
    assert 'href="#m"' in out  # not an id of this document: left alone
