"""vbq.rois/1 parsing: every spec §2 rule, with messages that say what and where."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readers.measurement.rois import (
    Ellipse,
    Exclusion,
    Polygon,
    Rectangle,
    Roi,
    RoiError,
    RoiSet,
    load_roi_file,
    loads_roi_set,
    parse_roi_set,
    remap_uids,
)

# The machine is shared: a slow moment must not fail a property test.
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERIES = "2.25.100"


def example() -> dict[str, Any]:
    """The spec's example, with concrete numbers."""
    return {
        "schema": "vbq.rois/1",
        "series_instance_uid": SERIES,
        "rois": [
            {
                "label": "L1",
                "sop_instance_uid": "2.25.1",
                "shape": "ellipse",
                "center": [100, 120.5],
                "radii": [10, 6],
                "angle_deg": 15,
            },
            {
                "label": "L2",
                "sop_instance_uid": "2.25.1",
                "shape": "rectangle",
                "corners": [[90, 150], [110, 165]],
            },
            {
                "label": "L3",
                "sop_instance_uid": "2.25.2",
                "shape": "polygon",
                "points": [[90, 180], [110, 180], [100, 195]],
            },
            {"label": "L4", "excluded": True, "reason": "fracture", "note": "old wedge"},
            {
                "label": "CSF",
                "level": "L3",
                "sop_instance_uid": "2.25.2",
                "shape": "ellipse",
                "center": [130, 185],
                "radii": [3, 5],
                "angle_deg": 0,
            },
        ],
    }


def with_item(index: int, **changes: Any) -> dict[str, Any]:
    """The example with ``rois[index]`` changed; a value of ``...`` removes the key."""
    data = example()
    item = data["rois"][index]
    for key, value in changes.items():
        if value is ...:
            item.pop(key, None)
        else:
            item[key] = value
    return data


def test_the_spec_example_parses() -> None:
    roi_set = parse_roi_set(example())
    assert roi_set.series_instance_uid == SERIES
    assert [roi.label for roi in roi_set.rois] == ["L1", "L2", "L3", "CSF"]
    assert roi_set.rois[0].shape == Ellipse((100.0, 120.5), (10.0, 6.0), 15.0)
    assert roi_set.rois[1].shape == Rectangle(((90.0, 150.0), (110.0, 165.0)))
    assert roi_set.rois[2].shape == Polygon(((90.0, 180.0), (110.0, 180.0), (100.0, 195.0)))
    assert roi_set.rois[3].level == "L3"
    assert roi_set.rois[0].level is None
    assert roi_set.exclusions == (Exclusion("L4", "fracture", "old wedge"),)
    assert roi_set.referenced_uids == {"2.25.1", "2.25.2"}
    assert roi_set.csf_level == "L3"
    assert roi_set.missing_levels() == ()


def test_to_json_round_trips() -> None:
    roi_set = parse_roi_set(example())
    again = parse_roi_set(json.loads(json.dumps(roi_set.to_json())))
    assert again == roi_set
    assert roi_set.to_json()["schema"] == "vbq.rois/1"
    # An exclusion without a note round-trips too, and ROIs come before exclusions.
    data = with_item(3, note=...)
    assert parse_roi_set(parse_roi_set(data).to_json()) == parse_roi_set(data)


def test_angle_defaults_to_zero() -> None:
    roi_set = parse_roi_set(with_item(0, angle_deg=...))
    assert roi_set.rois[0].shape == Ellipse((100.0, 120.5), (10.0, 6.0), 0.0)


def test_csf_level_defaults_to_l3_and_is_written_out() -> None:
    roi_set = parse_roi_set(with_item(4, level=...))
    assert roi_set.csf_level == "L3"
    assert roi_set.to_json()["rois"][3]["level"] == "L3"


@pytest.mark.parametrize("level", ["L2", "L4", "L5", "T12", "L3-L4"])
def test_other_csf_levels_are_accepted(level: str) -> None:
    assert parse_roi_set(with_item(4, level=level)).csf_level == level


def test_several_rois_per_level_and_for_the_csf_are_allowed() -> None:
    data = example()
    data["rois"].append(dict(data["rois"][0], sop_instance_uid="2.25.3"))
    data["rois"].append(dict(data["rois"][4], sop_instance_uid="2.25.3"))
    roi_set = parse_roi_set(data)
    assert [roi.label for roi in roi_set.rois].count("L1") == 2
    assert [roi.label for roi in roi_set.rois].count("CSF") == 2


def test_incomplete_sets_parse_and_report_missing_levels() -> None:
    data = example()
    del data["rois"][1:4]  # drop L2, L3 and the L4 exclusion
    roi_set = parse_roi_set(data)
    assert roi_set.missing_levels() == ("L2", "L3", "L4")
    empty = parse_roi_set({"schema": "vbq.rois/1", "series_instance_uid": SERIES, "rois": []})
    assert empty.missing_levels() == ("L1", "L2", "L3", "L4")
    assert empty.csf_level is None


def test_excluded_false_means_measured() -> None:
    roi_set = parse_roi_set(with_item(0, excluded=False))
    assert roi_set.rois[0].label == "L1"


def test_closing_point_and_repeated_points_are_fine() -> None:
    points = [[0, 0], [4, 0], [4, 0], [0, 4], [0, 0]]
    roi_set = parse_roi_set(with_item(2, points=points))
    assert len(roi_set.rois[2].shape.points) == 5  # type: ignore[union-attr]


BAD_INPUTS: list[tuple[str, Any, str]] = [
    ("schema", dict(example(), schema="vbq.rois/2"), "schema must be 'vbq.rois/1'"),
    ("top-level unknown key", dict(example(), extra=1), "top level: unknown key 'extra'"),
    ("missing series", {"schema": "vbq.rois/1", "rois": []}, "missing 'series_instance_uid'"),
    ("not an object", [], "must be a JSON object"),
    ("rois not a list", dict(example(), rois={}), "rois must be a list"),
    ("item not an object", dict(example(), rois=[1]), r"rois\[0\] must be an object"),
    ("unknown key", with_item(2, foo=1), r"rois\[2\] \(L3\): unknown key 'foo'"),
    ("ellipse with points", with_item(0, points=[[0, 0]]), "unknown key 'points' on an ellipse"),
    ("rectangle with radii", with_item(1, radii=[1, 1]), "unknown key 'radii' on a rectangle"),
    ("exclusion with center", with_item(3, center=[1, 2]), "unknown key 'center' on an exclusion"),
    ("missing label", with_item(0, label=...), r"rois\[0\]: missing 'label'"),
    ("unknown label", with_item(0, label="L5"), "label must be one of L1, L2, L3, L4, CSF"),
    ("unknown shape", with_item(0, shape="circle"), "shape must be one of ellipse"),
    ("missing shape", with_item(0, shape=...), "missing 'shape'"),
    ("missing radii", with_item(0, radii=...), "missing 'radii'"),
    ("missing uid", with_item(0, sop_instance_uid=...), "missing 'sop_instance_uid'"),
    ("empty uid", with_item(0, sop_instance_uid=" "), "sop_instance_uid must be a non-empty"),
    ("unknown reason", with_item(3, reason="tumour"), "reason must be one of fracture"),
    ("missing reason", with_item(3, reason=...), r"rois\[3\] \(L4\): missing 'reason'"),
    ("note not text", with_item(3, note=5), "note must be a string"),
    ("excluded not bool", with_item(3, excluded="yes"), "excluded must be true or false"),
    ("NaN coordinate", with_item(0, center=[math.nan, 1]), r"center\[0\] must be a finite"),
    ("inf coordinate", with_item(1, corners=[[0, 0], [math.inf, 2]]), r"corners\[1\]\[0\]"),
    ("huge coordinate", with_item(0, center=[10**400, 1]), "must be a finite number"),
    ("bool coordinate", with_item(0, center=[True, 1]), r"center\[0\] must be a number"),
    ("string coordinate", with_item(0, center=["1", 1]), r"center\[0\] must be a number"),
    ("three coordinates", with_item(0, center=[1, 2, 3]), "must be a pair of numbers"),
    ("NaN angle", with_item(0, angle_deg=math.nan), "angle_deg must be a finite"),
    ("zero radius", with_item(0, radii=[0, 5]), "radii must be positive"),
    ("negative radius", with_item(0, radii=[4, -5]), "radii must be positive"),
    ("zero-area rectangle", with_item(1, corners=[[1, 1], [1, 5]]), "rectangle has no area"),
    ("three corners", with_item(1, corners=[[0, 0], [1, 1], [2, 2]]), "must be two points"),
    ("two points", with_item(2, points=[[0, 0], [1, 1]]), "at least 3 distinct points, got 2"),
    (
        "repeated points",
        with_item(2, points=[[0, 0], [1, 1], [0, 0], [1, 1]]),
        "at least 3 distinct points, got 2",
    ),
    ("collinear polygon", with_item(2, points=[[0, 0], [1, 1], [3, 3]]), "polygon has no area"),
    ("points not a list", with_item(2, points=5), "points must be a list"),
    ("level on a bone ROI", with_item(0, level="L1"), "'level' is only allowed on the CSF"),
    ("bad CSF level", with_item(4, level="below"), "level must be a vertebral level"),
    ("CSF level not text", with_item(4, level=3), "level must be a non-empty string"),
]


@pytest.mark.parametrize(("data", "message"), [(d, m) for _, d, m in BAD_INPUTS],
                         ids=[name for name, _, _ in BAD_INPUTS])  # fmt: skip
def test_bad_input_is_rejected_with_a_clear_message(data: Any, message: str) -> None:
    with pytest.raises(RoiError, match=message):
        parse_roi_set(data)


def test_excluded_csf_is_an_error() -> None:
    data = example()
    data["rois"][4] = {"label": "CSF", "excluded": True, "reason": "other"}
    with pytest.raises(RoiError, match=r"rois\[4\] \(CSF\): the CSF cannot be excluded"):
        parse_roi_set(data)


def test_a_level_both_excluded_and_measured_is_an_error() -> None:
    data = example()
    data["rois"].append({"label": "L2", "excluded": True, "reason": "hemangioma"})
    with pytest.raises(RoiError, match=r"rois\[1\] \(L2\): L2 has an ROI but is also excluded by "):
        parse_roi_set(data)


def test_a_level_excluded_twice_is_an_error() -> None:
    data = example()
    data["rois"].append({"label": "L4", "excluded": True, "reason": "other"})
    with pytest.raises(RoiError, match=r"rois\[5\] \(L4\): L4 is excluded twice .*rois\[3\]"):
        parse_roi_set(data)


def test_csf_rois_must_share_one_level() -> None:
    data = example()
    data["rois"].append(dict(data["rois"][4], level="L2", sop_instance_uid="2.25.3"))
    with pytest.raises(RoiError, match=r"rois\[5\] \(CSF\): CSF level L2 differs from L3"):
        parse_roi_set(data)


def test_missing_csf_level_counts_as_l3_for_consistency() -> None:
    data = example()
    data["rois"].append(dict(data["rois"][4], sop_instance_uid="2.25.3"))
    del data["rois"][5]["level"]
    assert parse_roi_set(data).csf_level == "L3"


def test_the_input_is_not_modified() -> None:
    data = example()
    before = copy.deepcopy(data)
    parse_roi_set(data)
    assert data == before


def test_dataclasses_validate_when_built_in_code() -> None:
    with pytest.raises(RoiError, match="radii must be positive"):
        Ellipse((1.0, 1.0), (0.0, 1.0))
    with pytest.raises(RoiError, match="3 distinct points"):
        Polygon(((0.0, 0.0), (1.0, 0.0)))
    with pytest.raises(RoiError, match="label must be one of"):
        Roi("L9", "2.25.1", Ellipse((1.0, 1.0), (1.0, 1.0)))
    with pytest.raises(RoiError, match=r"rois\[1\] \(L1\): L1 has an ROI but is also excluded"):
        RoiSet(
            SERIES,
            (Roi("L2", "1", Ellipse((1.0, 1.0), (1.0, 1.0))),
             Roi("L1", "1", Ellipse((1.0, 1.0), (1.0, 1.0)))),
            (Exclusion("L1", "modic"),),
        )  # fmt: skip


# --- files and JSON text -------------------------------------------------------------------


def test_load_roi_file(tmp_path: Path) -> None:
    path = tmp_path / "rois.json"
    path.write_text(json.dumps(example()), encoding="utf-8")
    assert load_roi_file(path) == parse_roi_set(example())


def test_load_roi_file_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "rois.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(example()).encode())
    assert load_roi_file(path).series_instance_uid == SERIES


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(RoiError, match=r"nope\.json: cannot read the file"):
        load_roi_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON: Expecting property name"),
        ("", "invalid JSON"),
        ('{"schema": "vbq.rois/1", "schema": "x"}', "duplicate key 'schema'"),
        (
            json.dumps(example()).replace('"center": [100, 120.5]', '"center": [NaN, 120.5]'),
            r"rois\[0\] \(L1\)\.center\[0\] must be a finite number",
        ),
        (
            json.dumps(example()).replace('"angle_deg": 15', '"angle_deg": Infinity'),
            "angle_deg must be a finite number",
        ),
        (
            json.dumps(example()).replace('"radii": [10, 6]', '"radii": [10, -Infinity]'),
            r"radii\[1\] must be a finite number",
        ),
    ],
)
def test_bad_json_files_name_the_path_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoiError, match=r"bad\.json: ") as raised:
        load_roi_file(path)
    assert raised.match(message)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"schema": "\xe9"}')
    with pytest.raises(RoiError, match="not UTF-8"):
        load_roi_file(path)


def test_loads_roi_set_accepts_text() -> None:
    assert loads_roi_set(json.dumps(example())) == parse_roi_set(example())


# --- round trip for generated sets ---------------------------------------------------------

finite = st.floats(-500, 500, allow_nan=False, allow_infinity=False)
positive = st.floats(0.01, 100)
point = st.tuples(finite, finite)
ellipses = st.builds(Ellipse, point, st.tuples(positive, positive), st.floats(-360, 360))
rectangles = st.builds(
    lambda x, y, w, h: Rectangle(((x, y), (x + w, y + h))), finite, finite, positive, positive
)
triangles = st.builds(
    lambda x, y, w, h: Polygon(((x, y), (x + w, y), (x, y + h))), finite, finite, positive, positive
)
shapes = st.one_of(ellipses, rectangles, triangles)


@st.composite
def roi_sets(draw: st.DrawFn) -> RoiSet:
    excluded = draw(st.sets(st.sampled_from(["L1", "L2", "L3", "L4"]), max_size=4))
    rois = [
        Roi(label, draw(st.sampled_from(["2.25.1", "2.25.2"])), draw(shapes))
        for label in ["L1", "L2", "L3", "L4"]
        if label not in excluded
        for _ in range(draw(st.integers(0, 2)))
    ]
    level = draw(st.sampled_from(["L2", "L3", "L4"]))
    rois += [Roi("CSF", "2.25.1", draw(shapes), level) for _ in range(draw(st.integers(0, 2)))]
    exclusions = [
        Exclusion(label, draw(st.sampled_from(["fracture", "other"])), draw(st.none() | st.text()))
        for label in sorted(excluded)
    ]
    return RoiSet(SERIES, tuple(rois), tuple(exclusions))


@RELAXED
@given(roi_sets())
def test_generated_sets_round_trip_through_json_text(roi_set: RoiSet) -> None:
    text = json.dumps(roi_set.to_json(), allow_nan=False)
    assert loads_roi_set(text) == roi_set


def test_remap_uids_maps_the_series_and_every_instance_and_keeps_the_rest() -> None:
    def new_uid(uid: str) -> str:
        return "2.25.9" + uid.rsplit(".", 1)[1]

    data = example()
    mapped = remap_uids(data, new_uid)
    assert data == example()  # the input is not changed
    assert mapped["series_instance_uid"] == "2.25.9100"
    uids = [item.get("sop_instance_uid") for item in mapped["rois"]]
    assert uids == ["2.25.91", "2.25.91", "2.25.92", "2.25.92", None]  # exclusions last
    back = parse_roi_set(mapped)
    original = parse_roi_set(data)
    assert [r.shape for r in back.rois] == [r.shape for r in original.rois]
    assert back.exclusions == original.exclusions


def test_remap_uids_refuses_an_invalid_set() -> None:
    with pytest.raises(RoiError):
        remap_uids(with_item(0, shape="circle"), str)
