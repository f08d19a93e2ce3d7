"""The fixture the browser's preview statistics are tested against (``node --test``).

``static/src/viewer/roi/fixtures/masks.json`` holds, for many spec shapes, the pixels that
``readers.measurement.measure.roi_mask`` selects (or its error) and the median and count of a
known pixel array; ``static/src/viewer/roi/stats.test.js`` requires ``stats.js`` to reproduce
them exactly.
This test keeps the committed file in step with the Python: when the measurement changes, it
fails until the fixture is rewritten with ``VBQ_WRITE_FIXTURES=1 .venv/bin/pytest`` on this file.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from readers.measurement.measure import MeasurementError, roi_mask
from readers.measurement.rois import Ellipse, Polygon, Rectangle, Shape
from tests.helpers.paths import REPO

FIXTURE = REPO / "static/src/viewer/roi/fixtures/masks.json"
ROWS, COLUMNS = 40, 48


def pixel_values(rows: int, columns: int) -> np.ndarray:
    """A deterministic image both sides can build: value(k) = (k * 7919 % 1009) * 0.37 + 12,
    with many ties, so that the median's handling of equal values is exercised."""
    k = np.arange(rows * columns, dtype=np.float64)
    return ((k * 7919) % 1009) * 0.37 + 12.0


def _r(value: float) -> float:
    return round(value, 4)


def _star(centre: tuple[float, float], radius: float) -> list[list[float]]:
    """A five-pointed star drawn in one stroke: it crosses itself."""
    angles = [math.radians(90 + 144 * k) for k in range(5)]
    return [[centre[0] + radius * math.cos(a), centre[1] - radius * math.sin(a)] for a in angles]


def _shapes() -> list[dict[str, Any]]:
    rng = np.random.default_rng(20260505)
    shapes: list[dict[str, Any]] = [
        # Exact boundaries: centres and radii on pixel centres, so points lie on the edge.
        {"shape": "ellipse", "center": [20.0, 15.0], "radii": [5.0, 3.0], "angle_deg": 0.0},
        {"shape": "ellipse", "center": [20.5, 15.5], "radii": [4.5, 2.5], "angle_deg": 0.0},
        {"shape": "ellipse", "center": [10.0, 10.0], "radii": [3.0, 3.0], "angle_deg": 45.0},
        {"shape": "ellipse", "center": [24.0, 20.0], "radii": [8.0, 3.0], "angle_deg": 90.0},
        {"shape": "ellipse", "center": [24.0, 20.0], "radii": [8.0, 3.0], "angle_deg": -30.0},
        {"shape": "ellipse", "center": [0.5, 0.5], "radii": [1.0, 1.0], "angle_deg": 0.0},
        {"shape": "ellipse", "center": [47.0, 39.0], "radii": [0.5, 0.5], "angle_deg": 0.0},
        {"shape": "ellipse", "center": [10.2, 10.2], "radii": [0.1, 0.1], "angle_deg": 0.0},
        {"shape": "ellipse", "center": [2.0, 2.0], "radii": [5.0, 1.0], "angle_deg": 0.0},
        {"shape": "rectangle", "corners": [[3.0, 4.0], [9.0, 8.0]]},
        {"shape": "rectangle", "corners": [[9.5, 8.5], [3.5, 4.5]]},
        {"shape": "rectangle", "corners": [[-0.5, -0.5], [47.5, 39.5]]},
        {"shape": "rectangle", "corners": [[3.2, 4.2], [3.8, 4.8]]},
        {"shape": "rectangle", "corners": [[-1.0, 3.0], [4.0, 6.0]]},
        {"shape": "polygon", "points": [[5.0, 5.0], [15.0, 5.0], [10.0, 12.0]]},
        {"shape": "polygon", "points": [[5.0, 5.0], [15.0, 5.0], [15.0, 15.0], [5.0, 15.0]]},
        # Concave and self-intersecting (even-odd: the doubly covered centre is outside).
        {"shape": "polygon", "points": [[4, 4], [20, 4], [20, 20], [12, 10], [4, 20]]},
        {"shape": "polygon", "points": _star(centre=(24, 20), radius=12)},
        {"shape": "polygon", "points": [[1.5, 1.5], [6.5, 1.5], [6.5, 1.5], [4.0, 7.0]]},
        {"shape": "polygon", "points": [[30.0, 30.0], [31.0, 31.0], [32.0, 30.0], [31.0, 30.5]]},
    ]
    for _ in range(25):
        shapes.append(
            {
                "shape": "ellipse",
                "center": [_r(rng.uniform(8, 40)), _r(rng.uniform(8, 32))],
                "radii": [_r(rng.uniform(0.8, 7.5)), _r(rng.uniform(0.8, 7.5))],
                "angle_deg": float(rng.choice([0.0, 0.0, _r(rng.uniform(-90, 90))])),
            }
        )
    for _ in range(15):
        x0, y0 = rng.uniform(0, 40), rng.uniform(0, 30)
        shapes.append(
            {
                "shape": "rectangle",
                "corners": [
                    [_r(x0), _r(y0)],
                    [_r(x0 + rng.uniform(0.5, 7)), _r(y0 + rng.uniform(0.5, 9))],
                ],
            }
        )
    for _ in range(15):
        # A freehand contour: a wobbly loop of 30-80 points, as a mouse draws it.
        cx, cy = rng.uniform(10, 38), rng.uniform(10, 30)
        n = int(rng.integers(30, 80))
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        radius = rng.uniform(3, 8) * (1 + 0.25 * np.sin(3 * t + rng.uniform(0, 6)))
        shapes.append(
            {
                "shape": "polygon",
                "points": [
                    [_r(cx + r * math.cos(a)), _r(cy + 0.8 * r * math.sin(a))]
                    for r, a in zip(radius, t, strict=True)
                ],
            }
        )
    return shapes


def _shape(data: dict[str, Any]) -> Shape:
    if data["shape"] == "ellipse":
        return Ellipse(tuple(data["center"]), tuple(data["radii"]), data["angle_deg"])
    if data["shape"] == "rectangle":
        return Rectangle((tuple(data["corners"][0]), tuple(data["corners"][1])))
    return Polygon(tuple(tuple(p) for p in data["points"]))


def build_fixture() -> dict[str, Any]:
    values = pixel_values(ROWS, COLUMNS).reshape(ROWS, COLUMNS)
    cases = []
    for data in _shapes():
        case: dict[str, Any] = {"roi": data}
        try:
            mask = roi_mask(_shape(data), ROWS, COLUMNS)
        except MeasurementError as error:
            case["error"] = "leaves" if "leaves" in str(error) else "empty"
        else:
            full = mask.full(ROWS, COLUMNS)
            picked = values[full]
            case["indices"] = [int(k) for k in np.flatnonzero(full)]
            case["n_pixels"] = int(picked.size)
            case["median"] = float(np.median(picked))
            case["mean"] = float(np.mean(picked))
        cases.append(case)
    return {
        "generated_by": (
            "tests/readers/measurement/test_viewer_fixtures.py"
            " (readers.measurement.measure.roi_mask)"
        ),
        "rows": ROWS,
        "columns": COLUMNS,
        "values": "((k * 7919) % 1009) * 0.37 + 12 for k in row-major order",
        "cases": cases,
    }


def test_the_committed_fixture_matches_the_python_measurement() -> None:
    fixture = build_fixture()
    head = {key: value for key, value in fixture.items() if key != "cases"}
    cases = ",\n".join(json.dumps(case, separators=(",", ":")) for case in fixture["cases"])
    text = json.dumps(head, indent=1)[:-2] + ',\n "cases": [\n' + cases + "\n]}\n"
    if os.environ.get("VBQ_WRITE_FIXTURES") == "1":
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(text, encoding="utf-8")
    assert FIXTURE.exists(), f"{FIXTURE} is missing: run with VBQ_WRITE_FIXTURES=1"
    assert json.loads(FIXTURE.read_text(encoding="utf-8")) == json.loads(text), (
        "the viewer's fixture is stale: rewrite it with VBQ_WRITE_FIXTURES=1"
    )
    errors = {case.get("error") for case in fixture["cases"]}
    assert {"leaves", "empty", None} <= errors  # every outcome is exercised
