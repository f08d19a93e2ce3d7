"""The quality checks before submit (issue 13 item 3): each warning fires when it should and
stays quiet when it should not, on a small sagittal image whose values are known."""

from __future__ import annotations

import numpy as np
import pytest

from readers.measurement.dicomio import SliceImage
from readers.measurement.geometry import ImageGeometry
from readers.measurement.quality import (
    CODES,
    CSF_NOT_DARK,
    LEVELS_OUT_OF_ORDER,
    NOT_MEASURABLE,
    OVERLAPPING_ROIS,
    SMALL_BONE_ROI,
    VBQ_OUT_OF_RANGE,
    QualityLimits,
    check_reading,
)
from readers.measurement.rois import Ellipse, Exclusion, Roi, RoiSet

SERIES = "2.25.7"
MID, SIDE = "2.25.7.1", "2.25.7.2"
BONE, FLUID = 400.0, 100.0
# Sagittal, as scanners store it: x runs anterior to posterior, y runs from head to feet.
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
UPSIDE_DOWN = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# Where each label's ellipse goes by default (column, row), and its semi-axes in pixels.
PLACES = {"L1": (30, 20), "L2": (30, 40), "L3": (30, 60), "L4": (30, 80), "CSF": (80, 60)}
BONE_RADII, CSF_RADII = (8.0, 6.0), (3.0, 6.0)


def _image(
    sop: str, *, fluid: float = FLUID, orientation=SAGITTAL, position=0.0, patch=None
) -> SliceImage:
    """100 x 100 pixels of 1 mm: bone (400) left of column 60, fluid (100) right of column 70;
    ``patch`` = (rows, columns, value) paints a block."""
    pixels = np.full((100, 100), 250.0)
    pixels[:, :60] = BONE
    pixels[:, 70:] = fluid
    if patch is not None:
        rows, columns, value = patch
        pixels[rows, columns] = value
    geometry = ImageGeometry(100, 100, (1.0, 1.0), (position, 0.0, 0.0), orientation)
    return SliceImage(sop, SERIES, pixels, geometry)


def _roi(label: str, centre=None, radii=None, sop: str = MID) -> Roi:
    radii = radii or (CSF_RADII if label == "CSF" else BONE_RADII)
    level = "L3" if label == "CSF" else None
    return Roi(label, sop, Ellipse(centre or PLACES[label], radii, 0.0), level=level)


def _set(**changes) -> RoiSet:
    """The five ROIs at their places; ``L2=_roi(...)`` replaces one, ``L4=None`` drops it."""
    rois = {label: _roi(label) for label in PLACES} | changes
    return RoiSet(SERIES, tuple(roi for roi in rois.values() if roi is not None))


def _codes(roi_set: RoiSet, images=None, limits=None) -> tuple[str, ...]:
    images = images or {MID: _image(MID)}
    return check_reading(roi_set, images, limits or QualityLimits()).codes


def test_a_careful_reading_raises_no_warning() -> None:
    report = check_reading(_set(), {MID: _image(MID)}, QualityLimits())
    assert report.warnings == ()
    assert report.measurement["vbq"] == pytest.approx(BONE / FLUID)


def test_the_issues_stacked_reading_raises_every_warning_it_deserves() -> None:
    """Issue 13: five ROIs stacked on one vertebra, CSF above bone, a VBQ of 0.98."""
    stacked = {label: _roi(label, (30, 40)) for label in PLACES}
    stacked["CSF"] = _roi("CSF", (33, 40), (1.5, 3.0))
    image = _image(MID, patch=(slice(36, 45), slice(31, 36), 410.0))
    report = check_reading(_set(**stacked), {MID: image}, QualityLimits())
    assert report.measurement["vbq"] == pytest.approx(400 / 410)
    assert report.codes == (OVERLAPPING_ROIS, CSF_NOT_DARK, LEVELS_OUT_OF_ORDER, VBQ_OUT_OF_RANGE)
    overlap = report.warnings[0]
    assert overlap.labels == ("L1", "L2", "L3", "L4", "CSF")
    assert "L1 and L2" in overlap.message
    assert "spinal canal" in overlap.message


# --- overlapping ROIs ------------------------------------------------------------------------


def test_overlapping_levels_on_one_slice_are_warned() -> None:
    report = check_reading(_set(L2=_roi("L2", (30, 28))), {MID: _image(MID)}, QualityLimits())
    assert report.codes == (OVERLAPPING_ROIS,)
    assert report.warnings[0].labels == ("L1", "L2")


def test_rois_that_only_touch_or_lie_on_other_slices_do_not_overlap() -> None:
    # L1 spans rows 14..26 and L2 rows 27..39: adjacent, no pixel in common.
    assert _codes(_set(L2=_roi("L2", (30, 33)))) == ()
    # The same place as L1's, but on the slice beside it (1 mm away): different pixels.
    images = {MID: _image(MID), SIDE: _image(SIDE, position=1.0)}
    assert OVERLAPPING_ROIS not in _codes(_set(L2=_roi("L2", (30, 28), sop=SIDE)), images)


def test_two_rois_of_one_level_may_overlap() -> None:
    """Several ROIs of one level are pooled as a union: not a labelling slip."""
    roi_set = RoiSet(SERIES, (*_set().rois, _roi("L1", (32, 21))))
    assert _codes(roi_set) == ()


# --- the CSF is dark --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fluid", "warned"), [(100.0, False), (310.0, False), (320.0, True), (350.0, True)]
)
def test_csf_not_well_below_the_bone_is_warned_from_80_percent(fluid, warned) -> None:
    report = check_reading(_set(), {MID: _image(MID, fluid=fluid)}, QualityLimits())
    assert (CSF_NOT_DARK in report.codes) is warned
    if warned:
        assert report.codes == (CSF_NOT_DARK,)
        assert "T1-weighted" in report.warnings[0].message


def test_the_csf_is_compared_with_the_darkest_measured_level_only() -> None:
    # L4 sits in the grey band (250): the CSF at 210 is 84 % of it, though half of L1-L3.
    roi_set = _set(L4=_roi("L4", (65, 80), (2.0, 6.0)))
    report = check_reading(roi_set, {MID: _image(MID, fluid=210.0)}, QualityLimits(20.0))
    assert CSF_NOT_DARK in report.codes
    assert report.warnings[0].labels == ("CSF", "L4")
    excluded = RoiSet(SERIES, _set(L4=None).rois, (Exclusion("L4", "fracture"),))
    assert CSF_NOT_DARK not in _codes(excluded, {MID: _image(MID, fluid=210.0)})


# --- small bone ROIs --------------------------------------------------------------------------


def test_a_bone_roi_under_the_studys_minimum_area_is_warned() -> None:
    small = _set(L3=_roi("L3", radii=(3.0, 3.0)))  # 29 pixels of 1 mm²
    report = check_reading(small, {MID: _image(MID)}, QualityLimits(min_bone_roi_area_mm2=50))
    assert report.codes == (SMALL_BONE_ROI,)
    assert report.warnings[0].labels == ("L3",)
    assert "29 mm²" in report.warnings[0].message
    assert _codes(small, limits=QualityLimits(min_bone_roi_area_mm2=29)) == ()


def test_the_csf_roi_is_not_held_to_the_bone_minimum() -> None:
    assert _codes(_set(CSF=_roi("CSF", radii=(2.0, 2.0)))) == ()


# --- cranio-caudal order ----------------------------------------------------------------------


def test_levels_out_of_cranio_caudal_order_are_warned() -> None:
    swapped = _set(L2=_roi("L2", PLACES["L3"]), L3=_roi("L3", PLACES["L2"]))
    report = check_reading(swapped, {MID: _image(MID)}, QualityLimits())
    assert report.codes == (LEVELS_OUT_OF_ORDER,)
    assert report.warnings[0].labels == ("L2", "L3")
    assert "L1, L3, L2, L4" in report.warnings[0].message


def test_order_is_judged_in_patient_coordinates_not_rows() -> None:
    """A series stored upside down (rows run from feet to head): L1 is on the last rows."""
    image = {MID: _image(MID, orientation=UPSIDE_DOWN)}
    assert LEVELS_OUT_OF_ORDER in _codes(_set(), image)
    flipped = {
        label: _roi(label, (30, 100 - PLACES[label][1])) for label in ("L1", "L2", "L3", "L4")
    }
    assert _codes(_set(**flipped), image) == ()


def test_an_excluded_level_leaves_the_order_of_the_others() -> None:
    roi_set = RoiSet(SERIES, _set(L2=None).rois, (Exclusion("L2", "fracture"),))
    assert _codes(roi_set) == ()


# --- VBQ range and measurability --------------------------------------------------------------


@pytest.mark.parametrize(("fluid", "warned"), [(40.0, True), (80.0, False), (420.0, True)])
def test_a_vbq_outside_the_plausible_range_is_warned(fluid, warned) -> None:
    limits = QualityLimits(plausible_vbq_min=1.0, plausible_vbq_max=6.0)
    report = check_reading(_set(), {MID: _image(MID, fluid=fluid)}, limits)
    assert (VBQ_OUT_OF_RANGE in report.codes) is warned


def test_the_range_is_the_studys() -> None:
    images = {MID: _image(MID, fluid=40.0)}  # VBQ 10
    assert _codes(_set(), images, QualityLimits(plausible_vbq_max=12.0)) == ()


def test_a_set_the_measurement_refuses_is_warned_and_still_checked() -> None:
    images = {MID: _image(MID, fluid=0.0)}  # CSF SI 0: no score
    report = check_reading(_set(L3=_roi("L3", radii=(3.0, 3.0))), images, QualityLimits())
    assert report.measurement is None
    assert report.codes == (SMALL_BONE_ROI, NOT_MEASURABLE)
    assert "positive" in report.warnings[-1].message


def test_every_code_is_listed_once() -> None:
    assert len(set(CODES)) == len(CODES) == 6


def test_the_viewer_titles_every_code() -> None:
    """static/src/viewer/quality.js names each code in its dialog: the same codes as here."""
    import re
    from pathlib import Path

    source = (Path(__file__).parents[3] / "static/src/viewer/quality.js").read_text()
    block = source[source.index("export const TITLES") : source.index("};")]
    assert tuple(re.findall(r"^\s+(\w+):", block, re.M)) == CODES
