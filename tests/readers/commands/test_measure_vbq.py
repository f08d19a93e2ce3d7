"""``manage.py measure_vbq``: spec §3's command-line contract.

A few cases run the real command line in a subprocess (exit status, exactly one stderr line,
nothing on stdout); the rest use ``call_command``, which is faster.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tests.helpers.cli import assert_one_line_error, run_manage
from tests.helpers.dicomfactory import SERIES_UID, write_mr

# Slice A: L1..L4 as constant 5 x 5 patches; slice B: the CSF and a second L1 patch.
LEVEL_VALUES = {"L1": 100, "L2": 200, "L3": 300, "L4": 1000}


def patch(i: int) -> list[list[float]]:
    """Corners of the 3 x 3 pixels in the middle of patch i (x 5i..5i+4, y 0..4)."""
    return [[5 * i + 1, 1], [5 * i + 3, 3]]


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Any]:
    slice_a = np.zeros((30, 30), dtype=np.uint16)
    for i, value in enumerate(LEVEL_VALUES.values()):
        slice_a[0:5, 5 * i : 5 * i + 5] = value
    slice_b = np.zeros((30, 30), dtype=np.uint16)
    slice_b[0:5, 0:5] = 40  # CSF, stored; rescaled to 40 * 1.25 + 0 = 50
    folder = tmp_path / "case"
    write_mr(folder / "a.dcm", slice_a, sop_instance_uid="2.25.11")
    write_mr(folder / "b" / "b.dcm", slice_b, sop_instance_uid="2.25.12", rescale_slope=1.25)
    write_mr(folder / "c.dcm", slice_b, sop_instance_uid="2.25.13")  # not referenced
    rois: dict[str, Any] = {
        "schema": "vbq.rois/1",
        "series_instance_uid": SERIES_UID,
        "rois": [
            {
                "label": label,
                "sop_instance_uid": "2.25.11",
                "shape": "rectangle",
                "corners": patch(i),
            }
            for i, label in enumerate(LEVEL_VALUES)
        ]
        + [
            {
                "label": "CSF",
                "level": "L3",
                "sop_instance_uid": "2.25.12",
                "shape": "ellipse",
                "center": [2, 2],
                "radii": [1, 1],
                "angle_deg": 0,
            }
        ],
    }
    return {"folder": folder, "rois": rois, "tmp": tmp_path}


def write_rois(case: dict[str, Any], rois: Any = None, name: str = "rois.json") -> Path:
    path: Path = case["tmp"] / name
    path.write_text(json.dumps(case["rois"] if rois is None else rois), encoding="utf-8")
    return path


def measure(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("measure_vbq", *args, stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


# --- the real command line -------------------------------------------------------------------


def test_cli_prints_the_spec_json(case: dict[str, Any]) -> None:
    rois = write_rois(case)
    done = run_manage("measure_vbq", "--rois", str(rois), str(case["folder"]))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["numerator"] == 250.0  # median of 100, 200, 300, 1000
    assert result["csf"]["si"] == 50.0  # rescale slope applied
    assert result["csf"]["n_pixels"] == 5
    assert result["vbq"] == 5.0
    assert set(result) == {"vbq", "numerator", "csf", "levels", "method"}
    assert set(result["levels"]["L1"]) == {"si", "n_pixels", "mean", "median", "sd", "area_mm2"}
    assert result["method"] == {
        "roi_statistic": "median",
        "level_aggregate": "median",
        "min_levels": 3,
    }


def test_cli_bad_roi_file_gives_one_line_naming_the_file(case: dict[str, Any]) -> None:
    case["rois"]["rois"][2]["foo"] = 1
    rois = write_rois(case, name="reader-a.json")
    done = run_manage("measure_vbq", "--rois", str(rois), str(case["folder"]))
    line = assert_one_line_error(done, 1)
    assert "reader-a.json" in line
    assert "rois[2] (L3): unknown key 'foo'" in line


def test_cli_bad_dicom_gives_one_line_naming_the_file(case: dict[str, Any]) -> None:
    junk = case["tmp"] / "junk.dcm"
    junk.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 50)
    done = run_manage(
        "measure_vbq", "--rois", str(write_rois(case)), str(case["folder"]), str(junk)
    )
    assert "junk.dcm" in assert_one_line_error(done, 1)


def test_cli_measurement_error_names_the_roi_file(case: dict[str, Any]) -> None:
    case["rois"]["rois"][4]["center"] = [29, 2]  # the CSF ellipse crosses the right edge
    done = run_manage("measure_vbq", "--rois", str(write_rois(case)), str(case["folder"]))
    line = assert_one_line_error(done, 1)
    assert "rois.json" in line
    assert "rois[4] (CSF): the ROI leaves the image" in line


def test_cli_min_levels_out_of_range_is_a_usage_error(case: dict[str, Any]) -> None:
    args = ("--rois", str(write_rois(case)), "--min-levels", "5", str(case["folder"]))
    done = run_manage("measure_vbq", *args)
    assert "--min-levels" in assert_one_line_error(done, 2)


@pytest.mark.parametrize(
    "args",
    [
        ("--roi-statistic", "max"),
        ("--level-aggregate",),
        ("--no-such-option",),
        (),  # no --rois and no PATH
    ],
    ids=["bad choice", "missing value", "unknown option", "nothing"],
)
def test_cli_argument_errors_are_one_line(case: dict[str, Any], args: tuple[str, ...]) -> None:
    """Spec section 3: bad input gives one line on stderr, not argparse's usage block."""
    full = args if not args else ("--rois", str(write_rois(case)), str(case["folder"]), *args)
    line = assert_one_line_error(run_manage("measure_vbq", *full), 2)
    assert line.startswith("measure_vbq: error:")


# --- call_command ---------------------------------------------------------------------------


def test_options(case: dict[str, Any]) -> None:
    rois = str(write_rois(case))
    folder = str(case["folder"])
    result = measure("--rois", rois, folder, "--level-aggregate", "mean")
    assert result["numerator"] == 400.0
    assert result["vbq"] == 8.0
    result = measure("--rois", rois, folder, "--roi-statistic", "mean", "--min-levels", "4")
    assert result["method"] == {
        "roi_statistic": "mean",
        "level_aggregate": "median",
        "min_levels": 4,
    }
    assert result["vbq"] == 5.0


def test_files_can_be_given_one_by_one(case: dict[str, Any]) -> None:
    folder: Path = case["folder"]
    result = measure("--rois", str(write_rois(case)), str(folder / "a.dcm"), str(folder / "b"))
    assert result["vbq"] == 5.0


def test_several_slices_and_exclusions(case: dict[str, Any]) -> None:
    rois = case["rois"]["rois"]
    # L1 also on slice B, over 9 pixels of value 40 * 1.25 = 50: pooled with 9 pixels of 100.
    rois.append({"label": "L1", "sop_instance_uid": "2.25.12", "shape": "rectangle",
                 "corners": [[1, 1], [3, 3]]})  # fmt: skip
    rois[3] = {"label": "L4", "excluded": True, "reason": "fracture", "note": "T-shaped"}
    result = measure("--rois", str(write_rois(case)), str(case["folder"]))
    assert result["levels"]["L1"]["n_pixels"] == 18
    assert result["levels"]["L1"]["median"] == 75.0
    assert result["levels"]["L1"]["mean"] == 75.0
    assert result["levels"]["L4"] == {"excluded": True, "reason": "fracture"}
    assert result["numerator"] == 200.0  # median of 75, 200, 300
    assert result["vbq"] == 4.0


def test_below_min_levels_exits_zero_with_a_reason(case: dict[str, Any]) -> None:
    rois = case["rois"]["rois"]
    rois[2] = {"label": "L3", "excluded": True, "reason": "hemangioma"}
    rois[3] = {"label": "L4", "excluded": True, "reason": "instrumentation"}
    result = measure("--rois", str(write_rois(case)), str(case["folder"]))
    assert result["vbq"] is None
    assert result["numerator"] is None
    assert "only 2 level(s) measured" in result["reason"]


def error_of(case: dict[str, Any], *paths: str) -> str:
    with pytest.raises(CommandError) as raised:
        call_command(
            "measure_vbq",
            "--rois",
            str(write_rois(case)),
            *(paths or (str(case["folder"]),)),
            stdout=io.StringIO(),
        )
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_unknown_instance(case: dict[str, Any]) -> None:
    case["rois"]["rois"][1]["sop_instance_uid"] = "2.25.404"
    message = error_of(case)
    assert "rois.json: rois[1] (L2): instance 2.25.404 is not among the images" in message


def test_instance_from_another_series(case: dict[str, Any]) -> None:
    case["rois"]["series_instance_uid"] = "2.25.777"
    assert "belongs to series" in error_of(case)


def test_csf_si_not_positive(case: dict[str, Any]) -> None:
    case["rois"]["rois"][4]["center"] = [20, 20]  # zeros on slice B
    assert "rois[4] (CSF): the CSF SI (median) is 0; it must be positive" in error_of(case)


def test_empty_roi(case: dict[str, Any]) -> None:
    case["rois"]["rois"][0] = {"label": "L1", "sop_instance_uid": "2.25.11", "shape": "ellipse",
                               "center": [2.5, 2.5], "radii": [0.2, 0.3]}  # fmt: skip
    assert "rois[0] (L1): the ROI is empty" in error_of(case)


def test_missing_level(case: dict[str, Any]) -> None:
    del case["rois"]["rois"][1]
    assert "L2: neither an ROI nor an exclusion" in error_of(case)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"radii": [0, 2]}, "radii must be positive"),
        ({"center": [math.nan, 2]}, "center[0] must be a finite number"),
        ({"shape": "polygon", "points": [[1, 1], [2, 2], [1, 1]]}, "unknown key"),
    ],
)
def test_invalid_rois(case: dict[str, Any], change: dict[str, Any], message: str) -> None:
    case["rois"]["rois"][4].update(change)
    text = error_of(case)
    assert text.startswith(str(case["tmp"] / "rois.json") + ": rois[4] (CSF)")
    assert message in text


def test_polygon_with_too_few_distinct_points(case: dict[str, Any]) -> None:
    case["rois"]["rois"][2] = {"label": "L3", "sop_instance_uid": "2.25.11", "shape": "polygon",
                               "points": [[1, 1], [2, 2], [1, 1]]}  # fmt: skip
    assert "rois[2] (L3): a polygon needs at least 3 distinct points, got 2" in error_of(case)


def test_nan_literal_in_the_file(case: dict[str, Any]) -> None:
    path = write_rois(case)
    path.write_text(path.read_text().replace('"center": [2, 2]', '"center": [NaN, 2]'))
    with pytest.raises(CommandError, match=r"rois\.json: rois\[4\] \(CSF\)\.center\[0\]"):
        call_command("measure_vbq", "--rois", str(path), str(case["folder"]), stdout=io.StringIO())


def test_non_dicom_file_named_explicitly(case: dict[str, Any]) -> None:
    notes = case["tmp"] / "notes.txt"
    notes.write_text("hello")
    assert "notes.txt: not a DICOM file" in error_of(case, str(case["folder"]), str(notes))


def test_missing_paths(case: dict[str, Any]) -> None:
    assert "nowhere: no such file or folder" in error_of(case, str(case["tmp"] / "nowhere"))
    with pytest.raises(CommandError, match="cannot read the file"):
        call_command("measure_vbq", "--rois", str(case["tmp"] / "none.json"), str(case["folder"]))


def test_min_levels_keyword_is_checked_too(case: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="--min-levels must be from 1 to 4"):
        call_command("measure_vbq", "--rois", str(write_rois(case)), str(case["folder"]),
                     min_levels=0)  # fmt: skip
