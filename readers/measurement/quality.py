"""Quality checks of a reading before it is submitted (issue 13 item 3), pure.

Five ROIs stacked on one vertebra (L1-L4 identical, the CSF brighter than bone, a VBQ of 0.98)
were once submitted without a word. These checks look at the ROI set, the images' geometry and
the measurement and return what looks wrong, each as a code (kept with the reading when the
reader confirms it) and a sentence a reader understands. They never block a reading on their
own: a reader who knows better submits anyway, and the confirmation is recorded.

The one definition: ``readers.services.reading_submit`` calls :func:`check_reading` on every
submit (the viewer's JSON and the form alike), so no client can skip it; the viewer only shows
the server's answer.

The checks (codes in :data:`CODES`):

- ``overlapping_rois``: two labels share pixels on the same slice (their masks, by the
  measurement's own pixel rule, intersect): each level is a different vertebra, and the CSF is
  not in a vertebral body.
- ``csf_not_dark``: the CSF SI is at least :data:`CSF_BONE_RATIO` (80 %) of the lowest bone SI.
  On a T1-weighted image CSF is dark: published VBQ values (about 2 to 5) put the CSF at a half
  to a fifth of the marrow's signal. A CSF SI close to a bone SI means the CSF ROI is on nerve
  roots, epidural fat or bone, or a bone ROI is on something dark (a vein, a Modic change); 80 %
  (a level VBQ of 1.25) leaves room for very fatty or very dense marrow without calling every
  osteoporotic spine suspect.
- ``small_bone_roi``: a vertebral-body ROI covers less than the study's minimum area (the area
  of the pixels counted, as the measurement reports it): a small ROI's median follows a few
  noisy pixels, and a tiny one is usually a slip of the mouse.
- ``levels_out_of_order``: the measured levels are not in cranio-caudal order: each ROI's centre
  in patient coordinates (DICOM LPS: +z is towards the head) must be strictly lower than the
  previous level's, L1 highest. Patient coordinates, not rows, so a series stored upside down or
  tilted is judged by the anatomy; two levels at the same height (stacked ROIs) count as out of
  order.
- ``vbq_out_of_range``: the VBQ lies outside the study's plausible range (1.0-6.0 by default).
- ``not_measurable``: the measurement refused the set (an ROI leaves its image, is empty, the
  CSF SI is not positive...): submitting it stores a reading without a score.

Pure: numpy and the measurement, no Django (import-linter contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from readers.measurement.measure import MeasurementError, RoiMask, measure_vbq, roi_mask
from readers.measurement.rois import Ellipse, Rectangle, Roi, RoiSet, Shape
from studies.vocabulary import CSF, LABELS, LEVELS

if TYPE_CHECKING:
    from readers.measurement.dicomio import SliceImage

OVERLAPPING_ROIS: Final = "overlapping_rois"
CSF_NOT_DARK: Final = "csf_not_dark"
SMALL_BONE_ROI: Final = "small_bone_roi"
LEVELS_OUT_OF_ORDER: Final = "levels_out_of_order"
VBQ_OUT_OF_RANGE: Final = "vbq_out_of_range"
NOT_MEASURABLE: Final = "not_measurable"
CODES: Final = (
    OVERLAPPING_ROIS,
    CSF_NOT_DARK,
    SMALL_BONE_ROI,
    LEVELS_OUT_OF_ORDER,
    VBQ_OUT_OF_RANGE,
    NOT_MEASURABLE,
)
"""Every warning code, in the order the warnings are listed."""

CSF_BONE_RATIO: Final = 0.8
"""The CSF is "not well below" a bone level when its SI is at least this share of it."""


@dataclass(frozen=True)
class QualityLimits:
    """A study's limits for the checks (``Study.min_bone_roi_area_mm2``, ``plausible_vbq_*``)."""

    min_bone_roi_area_mm2: float = 50.0
    plausible_vbq_min: float = 1.0
    plausible_vbq_max: float = 6.0


@dataclass(frozen=True)
class QualityWarning:
    """One thing that looks wrong: a code, a sentence for the reader, the labels concerned."""

    code: str
    message: str
    labels: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "labels": list(self.labels)}


@dataclass(frozen=True)
class QualityReport:
    """The warnings, and the measurement they were judged on (None when it failed)."""

    warnings: tuple[QualityWarning, ...]
    measurement: dict[str, Any] | None

    @property
    def codes(self) -> tuple[str, ...]:
        """The distinct codes, in :data:`CODES` order."""
        present = {w.code for w in self.warnings}
        return tuple(code for code in CODES if code in present)


def check_reading(
    roi_set: RoiSet,
    images: Mapping[str, SliceImage],
    limits: QualityLimits,
    **method: Any,
) -> QualityReport:
    """Measure the set (``measure_vbq`` with the study's ``method``) and check it.

    The measurement is computed here, synchronously, rather than taken from the worker's
    result: at submit the score of the last autosave may not be computed yet, and the checks
    must judge the set being submitted. It costs a few milliseconds (``docs/viewer.md``).
    """
    measurement: dict[str, Any] | None = None
    warnings: list[QualityWarning] = []
    try:
        measurement = measure_vbq(roi_set, images, **method)
    except MeasurementError as error:
        warnings.append(
            QualityWarning(
                NOT_MEASURABLE,
                f"The score cannot be computed from these ROIs: {error}. Submitted as it is, "
                "the reading has no VBQ.",
            )
        )
    masks = _masks(roi_set, images)
    warnings += _overlaps(roi_set, masks)
    if measurement is not None:
        warnings += _csf_not_dark(measurement)
    warnings += _small_bone_rois(roi_set, images, masks, limits)
    warnings += _order(roi_set, images)
    if measurement is not None:
        warnings += _vbq_range(measurement, limits)
    order = {code: i for i, code in enumerate(CODES)}
    warnings.sort(key=lambda w: order[w.code])
    return QualityReport(tuple(warnings), measurement)


# --- the checks ------------------------------------------------------------------------------


def _masks(roi_set: RoiSet, images: Mapping[str, SliceImage]) -> dict[int, RoiMask]:
    """Each measurable ROI's pixels, by its position in ``roi_set.rois`` (others left out:
    ``not_measurable`` already names them)."""
    result = {}
    for i, roi in enumerate(roi_set.rois):
        image = images.get(roi.sop_instance_uid)
        if image is None:
            continue
        try:
            result[i] = roi_mask(roi.shape, image.geometry.rows, image.geometry.columns)
        except MeasurementError:
            continue
    return result


def _common_pixels(a: RoiMask, b: RoiMask) -> int:
    r0, r1 = max(a.rows.start, b.rows.start), min(a.rows.stop, b.rows.stop)
    c0, c1 = max(a.columns.start, b.columns.start), min(a.columns.stop, b.columns.stop)
    if r0 >= r1 or c0 >= c1:
        return 0
    sa = a.mask[r0 - a.rows.start : r1 - a.rows.start, c0 - a.columns.start : c1 - a.columns.start]
    sb = b.mask[r0 - b.rows.start : r1 - b.rows.start, c0 - b.columns.start : c1 - b.columns.start]
    return int(np.count_nonzero(sa & sb))


def _overlaps(roi_set: RoiSet, masks: Mapping[int, RoiMask]) -> list[QualityWarning]:
    """One warning naming every pair of labels whose ROIs share pixels on one slice."""
    pairs: set[tuple[str, str]] = set()
    for (i, a), (j, b) in combinations(masks.items(), 2):
        first, second = roi_set.rois[i], roi_set.rois[j]
        if first.label == second.label or first.sop_instance_uid != second.sop_instance_uid:
            continue
        if _common_pixels(a, b):
            x, y = sorted((first.label, second.label), key=LABELS.index)
            pairs.add((x, y))
    if not pairs:
        return []
    ordered = sorted(pairs, key=lambda p: (LABELS.index(p[0]), LABELS.index(p[1])))
    labels = tuple(label for label in LABELS if any(label in pair for pair in ordered))
    names = ", ".join(f"{a} and {b}" for a, b in ordered)
    csf = " The CSF lies in the spinal canal, not in a vertebral body." if CSF in labels else ""
    return [
        QualityWarning(
            OVERLAPPING_ROIS,
            f"ROIs of different levels overlap on the same slice ({names}): each level is a "
            f"different vertebra.{csf} Check that each ROI carries the right label.",
            labels,
        )
    ]


def _csf_not_dark(measurement: Mapping[str, Any]) -> list[QualityWarning]:
    csf = measurement["csf"]["si"]
    bones = {
        level: stats["si"]
        for level, stats in measurement["levels"].items()
        if not stats.get("excluded")
    }
    if not bones:
        return []
    level, lowest = min(bones.items(), key=lambda item: item[1])
    if csf < CSF_BONE_RATIO * lowest:
        return []
    percent = 100 * csf / lowest if lowest > 0 else float("inf")
    return [
        QualityWarning(
            CSF_NOT_DARK,
            f"The CSF signal ({csf:.4g}) is not well below the bone signal: it is {percent:.0f} % "
            f"of {level}'s ({lowest:.4g}); the check asks for less than "
            f"{CSF_BONE_RATIO:.0%}. On a T1-weighted image the CSF is dark, usually under half "
            "of the marrow's signal: the CSF ROI may be on nerve roots, fat or bone, or a bone "
            "ROI on something dark.",
            (CSF, level),
        )
    ]


def _small_bone_rois(
    roi_set: RoiSet,
    images: Mapping[str, SliceImage],
    masks: Mapping[int, RoiMask],
    limits: QualityLimits,
) -> list[QualityWarning]:
    minimum = limits.min_bone_roi_area_mm2
    warnings = []
    for i, mask in masks.items():
        roi = roi_set.rois[i]
        if roi.label == CSF:
            continue
        area = mask.n_pixels * images[roi.sop_instance_uid].geometry.pixel_area_mm2
        if area < minimum:
            warnings.append(
                QualityWarning(
                    SMALL_BONE_ROI,
                    f"The ROI of {roi.label} covers {area:.0f} mm², less than this study's "
                    f"minimum of {minimum:g} mm²: the median of a small ROI follows a few noisy "
                    "pixels. Draw it over most of the trabecular bone, clear of the endplates "
                    "and the cortex.",
                    (roi.label,),
                )
            )
    return warnings


def _centre(shape: Shape) -> tuple[float, float]:
    if isinstance(shape, Ellipse):
        return shape.center
    if isinstance(shape, Rectangle):
        x0, y0, x1, y1 = shape.bounds
        return ((x0 + x1) / 2, (y0 + y1) / 2)
    xs = [p[0] for p in shape.points]
    ys = [p[1] for p in shape.points]
    return (sum(xs) / len(xs), sum(ys) / len(ys))


def _height(rois: list[Roi], images: Mapping[str, SliceImage]) -> float | None:
    """The mean patient z (mm, + towards the head) of the centres of a level's ROIs."""
    heights = []
    for roi in rois:
        image = images.get(roi.sop_instance_uid)
        if image is not None:
            heights.append(image.geometry.image_to_world(*_centre(roi.shape))[2])
    return sum(heights) / len(heights) if heights else None


def _order(roi_set: RoiSet, images: Mapping[str, SliceImage]) -> list[QualityWarning]:
    heights: dict[str, float] = {}
    for level in LEVELS:
        height = _height([roi for roi in roi_set.rois if roi.label == level], images)
        if height is not None:
            heights[level] = height
    measured = list(heights)
    wrong = [
        (upper, lower) for upper, lower in pairwise(measured) if not heights[lower] < heights[upper]
    ]
    if not wrong:
        return []
    on_image = sorted(measured, key=lambda level: -heights[level])
    upper, lower = wrong[0]
    return [
        QualityWarning(
            LEVELS_OUT_OF_ORDER,
            f"The levels are not in order from head to feet: {lower} is not below {upper}. "
            f"On the image, from the top, the ROIs read {', '.join(on_image)}. L1 is the "
            "highest lumbar vertebra (the first without a rib); check the labels.",
            tuple(sorted({label for pair in wrong for label in pair}, key=LEVELS.index)),
        )
    ]


def _vbq_range(measurement: Mapping[str, Any], limits: QualityLimits) -> list[QualityWarning]:
    vbq = measurement.get("vbq")
    low, high = limits.plausible_vbq_min, limits.plausible_vbq_max
    if vbq is None or low <= vbq <= high:
        return []
    return [
        QualityWarning(
            VBQ_OUT_OF_RANGE,
            f"The VBQ is {vbq:.3f}, outside this study's plausible range of {low:g} to "
            f"{high:g}: a score this {'low' if vbq < low else 'high'} usually means an ROI is "
            "on the wrong structure.",
        )
    ]
