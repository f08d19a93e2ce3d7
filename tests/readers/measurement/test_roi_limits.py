"""The site's limits on an ROI set (``RoiLimits``, ``check_roi_limits``), and that the parser
and the command line's loader apply none of them (spec section 3 is unchanged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from readers.measurement.rois import (
    WEB_ROI_LIMITS,
    RoiError,
    RoiLimits,
    check_roi_limits,
    load_roi_file,
    parse_roi_set,
)


def _set(*items: dict) -> dict:
    return {"schema": "vbq.rois/1", "series_instance_uid": "2.25.1", "rois": list(items)}


def _ellipse(center=(50.0, 50.0), radii=(5.0, 4.0), label="L1") -> dict:
    return {
        "label": label,
        "sop_instance_uid": "2.25.2",
        "shape": "ellipse",
        "center": list(center),
        "radii": list(radii),
    }


def _polygon(n: int) -> dict:
    points = [[50.0 + (i % 2) * 0.5 + i * 1e-3, 40.0 + i * 0.01] for i in range(n - 1)]
    return {
        "label": "L2",
        "sop_instance_uid": "2.25.2",
        "shape": "polygon",
        "points": [[10.0, 10.0], *points],
    }


def test_the_web_limits() -> None:
    expected = RoiLimits(
        max_bytes=64 * 1024, max_items=50, max_polygon_points=2000, max_note_chars=500
    )
    assert expected == WEB_ROI_LIMITS


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([_ellipse()] * 51, "51 ROIs and exclusions; at most 50"),
        ([_polygon(2001)], "rois[0] (L2): 2001 polygon points; at most 2000"),
        (
            [_ellipse(), {"label": "L4", "excluded": True, "reason": "other", "note": "x" * 501}],
            "rois[1] (L4): the note has 501 characters; at most 500",
        ),
        ([_ellipse(center=(-101, 50))], "rois[0] (L1): the point [-101.0, 50.0] is far outside"),
        ([_ellipse(center=(50, 401))], "is far outside the image (100 × 200 pixels)"),
        ([_ellipse(radii=(201, 4))], "radii [201.0, 4.0] exceed the image's size"),
        (
            [{"label": "L3", "sop_instance_uid": "2.25.2", "shape": "rectangle",
              "corners": [[0, 0], [1e300, 5]]}],
            "far outside the image",
        ),
    ],
    ids=["items", "points", "note", "x", "y", "radius", "rectangle"],
)  # fmt: skip
def test_beyond_the_limits_is_refused_by_name(items: list[dict], message: str) -> None:
    roi_set = parse_roi_set(_set(*items))  # the parser takes it
    with pytest.raises(RoiError) as error:
        check_roi_limits(roi_set, rows=200, columns=100)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "items",
    [
        [_ellipse()] * 50,
        [_polygon(2000)],
        [_ellipse(center=(-100, -200)), _ellipse(center=(200, 400), radii=(200, 200), label="L2")],
    ],
    ids=["50 items", "2000 points", "one image size around the image"],
)
def test_at_the_limits_is_accepted(items: list[dict]) -> None:
    check_roi_limits(parse_roi_set(_set(*items)), rows=200, columns=100)


def test_without_an_image_size_only_the_counts_are_checked() -> None:
    check_roi_limits(parse_roi_set(_set(_ellipse(center=(1e9, 1e9)))), rows=None, columns=None)
    with pytest.raises(RoiError, match="at most 50"):
        check_roi_limits(parse_roi_set(_set(*[_ellipse()] * 51)), rows=None, columns=None)


def test_the_command_lines_loader_applies_no_limit(tmp_path: Path) -> None:
    """``measure_vbq --rois`` (spec section 3) reads what its user chose: no size limits."""
    path = tmp_path / "rois.json"
    path.write_text(json.dumps(_set(*[_ellipse(center=(1e6, 5))] * 60, _polygon(3000))))
    roi_set = load_roi_file(path)
    assert len(roi_set.rois) == 61


def test_deep_nesting_in_a_file_is_a_one_line_error_not_a_crash(tmp_path: Path) -> None:
    """Spec section 3: bad input is a one-line message naming the file, never a traceback."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(RoiError, match=r"deep\.json: invalid JSON: nested too deeply"):
        load_roi_file(path)
