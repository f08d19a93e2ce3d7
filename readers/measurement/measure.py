"""The VBQ measurement: which pixels an ROI holds, their statistics, and the score (spec §1, §3).

Pixel rule. Image coordinates put the centre of pixel ``[row r, column c]`` at ``(x, y) = (c, r)``.
A pixel belongs to an ROI when its centre lies inside the shape or on its boundary, with a tiny
tolerance (:data:`EPS`) so that a centre exactly on the boundary is not lost to rounding; this is
also Cornerstone3D's rule, so the browser's preview and the server count the same pixels.
Ellipses rotate their first axis by ``angle_deg`` from +x towards +y; rectangles are axis-aligned
between two opposite corners; polygons are closed implicitly and filled with the even-odd rule
(a self-intersecting contour's doubly covered parts are outside), boundary points inside.

Decisions (where the spec is silent):

- **Leaving the image.** The image covers ``[-0.5, columns - 0.5] x [-0.5, rows - 0.5]``, the
  outer edges of its pixels. An ROI leaves the image when any part of the shape's extent (the
  tight axis-aligned bounding box of the ellipse, rectangle or polygon) lies outside that area
  by more than :data:`EPS`. Such an ROI is an error rather than silently clipped: clipping
  would measure a region the reader did not see as drawn.
- **Empty ROI.** An ROI with no pixel centre inside is an error.
- **Pooling.** The ROIs of one label are pooled as a *set* of pixels: ROIs of one label on the
  same instance are united (an overlapping pixel counts once), ROIs on different instances
  (adjacent slices) add their pixels. The statistics are computed on the pooled values.
- **sd** is the population standard deviation (``ddof=0``), as Cornerstone3D's ROI statistics
  compute it, so the browser and the server agree. One pixel gives ``sd = 0``.
- **area_mm2** is ``n_pixels x pixel area`` (summed over instances), i.e. the area of the pixels
  counted, not the analytic area of the drawn shape; it then agrees with ``n_pixels``.
- **median** averages the two middle values for an even count (``numpy.median``), for ROI values
  and for the level aggregate alike (the median of four levels is the mean of the middle two).
- **Incomplete sets.** A level L1-L4 with neither an ROI nor an exclusion, or no CSF ROI, is a
  :class:`MeasurementError` naming what is missing: a level is never silently skipped.
- **Errors before the score.** Every ROI is measured and checked (empty, outside, unknown
  instance, other series, CSF SI <= 0) even when too few levels remain for a score, so a
  broken reading is reported as such. Fewer than ``min_levels`` measured levels is *not* an
  error: the score is not computed and ``reason`` says why.

Everything is float64 and vectorised with numpy (no per-pixel Python loops; a polygon loops over
its edges). Results are plain Python ``float``/``int``/``str``/``None`` (JSON serialisable).
Pure: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from readers.measurement.rois import Ellipse, Polygon, Rectangle, RoiSet, Shape, describe
from studies.vocabulary import CSF, LEVELS

if TYPE_CHECKING:
    from readers.measurement.dicomio import SliceImage

ALGORITHM_VERSION: Final = "1"
"""Stored with every result; bump it whenever a change could change a number."""

STATISTICS: Final = ("median", "mean")
EPS: Final = 1e-9
"""Boundary tolerance in pixels (and, for ellipses, in the normalised radius)."""

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]


class MeasurementError(ValueError):
    """A reading cannot be measured (empty ROI, ROI outside the image, unknown instance, ...)."""


@dataclass(frozen=True, eq=False)
class RoiMask:
    """The pixels of an ROI: ``mask`` over the sub-array ``pixels[rows, columns]``.

    Restricting the mask to the shape's bounding box keeps a small ROI on a large image cheap.
    """

    rows: slice
    columns: slice
    mask: BoolArray

    @property
    def n_pixels(self) -> int:
        return int(np.count_nonzero(self.mask))

    def values(self, pixels: FloatArray) -> FloatArray:
        """The values of the ROI's pixels in ``pixels`` (row-major order)."""
        return np.asarray(pixels[self.rows, self.columns][self.mask], dtype=np.float64)

    def full(self, rows: int, columns: int) -> BoolArray:
        """The mask on the whole ``rows x columns`` image."""
        result = np.zeros((rows, columns), dtype=bool)
        result[self.rows, self.columns] = self.mask
        return result


def shape_extent(shape: Shape) -> tuple[float, float, float, float]:
    """The tight axis-aligned bounding box ``(x_min, y_min, x_max, y_max)`` of a shape."""
    if isinstance(shape, Ellipse):
        cx, cy = shape.center
        rx, ry = shape.radii
        t = math.radians(shape.angle_deg)
        c, s = math.cos(t), math.sin(t)
        half_w = math.hypot(rx * c, ry * s)
        half_h = math.hypot(rx * s, ry * c)
        return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    if isinstance(shape, Rectangle):
        return shape.bounds
    xs = [p[0] for p in shape.points]
    ys = [p[1] for p in shape.points]
    return (min(xs), min(ys), max(xs), max(ys))


def roi_mask(shape: Shape, rows: int, columns: int) -> RoiMask:
    """The pixels of ``shape`` on a ``rows x columns`` image.

    Raises :class:`MeasurementError` when the shape leaves the image or holds no pixel centre.
    """
    x_min, y_min, x_max, y_max = shape_extent(shape)
    inside_x = x_min >= -0.5 - EPS and x_max <= columns - 0.5 + EPS
    inside_y = y_min >= -0.5 - EPS and y_max <= rows - 0.5 + EPS
    if not (inside_x and inside_y):
        raise MeasurementError(
            f"the ROI leaves the image: it spans x {x_min:g} to {x_max:g} and y {y_min:g} to "
            f"{y_max:g}; the image covers x -0.5 to {columns - 0.5:g} and y -0.5 to "
            f"{rows - 0.5:g}"
        )
    c0, c1 = max(0, math.ceil(x_min - EPS)), min(columns - 1, math.floor(x_max + EPS))
    r0, r1 = max(0, math.ceil(y_min - EPS)), min(rows - 1, math.floor(y_max + EPS))
    xs = np.arange(c0, c1 + 1, dtype=np.float64)
    ys = np.arange(r0, r1 + 1, dtype=np.float64)
    if isinstance(shape, Ellipse):
        mask = _ellipse_mask(shape, xs, ys)
    elif isinstance(shape, Rectangle):
        mask = np.ones((ys.size, xs.size), dtype=bool)
    else:
        mask = _polygon_mask(shape, xs, ys)
    if not mask.any():
        raise MeasurementError("the ROI is empty: no pixel centre lies inside it")
    return RoiMask(slice(r0, r1 + 1), slice(c0, c1 + 1), mask)


def _ellipse_mask(shape: Ellipse, xs: FloatArray, ys: FloatArray) -> BoolArray:
    t = math.radians(shape.angle_deg)
    c, s = math.cos(t), math.sin(t)
    dx = xs[np.newaxis, :] - shape.center[0]
    dy = ys[:, np.newaxis] - shape.center[1]
    # Coordinates along the ellipse's own axes (first axis at angle t from +x towards +y).
    along = (dx * c + dy * s) / shape.radii[0]
    across = (dy * c - dx * s) / shape.radii[1]
    result: BoolArray = along * along + across * across <= 1.0 + EPS
    return result


def _polygon_mask(shape: Polygon, xs: FloatArray, ys: FloatArray) -> BoolArray:
    """Even-odd fill plus the boundary, looping over edges and vectorised over pixels.

    Each edge flips the rows its horizontal crossing rays meet (half-open in y, so a vertex is
    counted once), and marks the centres within EPS of it as boundary.
    """
    inside = np.zeros((ys.size, xs.size), dtype=bool)
    boundary = np.zeros_like(inside)
    points = shape.points
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True):
        if y0 != y1:
            i0 = int(np.searchsorted(ys, min(y0, y1), side="left"))
            i1 = int(np.searchsorted(ys, max(y0, y1), side="left"))
            if i1 > i0:
                # The fraction along the edge is in [0, 1]: no overflow for nearly flat edges.
                x_cross = x0 + (ys[i0:i1] - y0) / (y1 - y0) * (x1 - x0)
                inside[i0:i1] ^= xs[np.newaxis, :] < x_cross[:, np.newaxis]
        # Boundary: only the centres near the edge's own bounding box need a distance test.
        j0 = int(np.searchsorted(xs, min(x0, x1) - EPS, side="left"))
        j1 = int(np.searchsorted(xs, max(x0, x1) + EPS, side="right"))
        i0 = int(np.searchsorted(ys, min(y0, y1) - EPS, side="left"))
        i1 = int(np.searchsorted(ys, max(y0, y1) + EPS, side="right"))
        if j1 <= j0 or i1 <= i0:
            continue
        px = xs[np.newaxis, j0:j1] - x0
        py = ys[i0:i1, np.newaxis] - y0
        ex, ey = x1 - x0, y1 - y0
        length2 = ex * ex + ey * ey
        if length2 == 0.0:
            t = np.zeros_like(px * py)
        else:
            t = np.clip((px * ex + py * ey) / length2, 0.0, 1.0)
        distance2 = (px - t * ex) ** 2 + (py - t * ey) ** 2
        boundary[i0:i1, j0:j1] |= distance2 <= EPS * EPS
    result: BoolArray = inside | boundary
    return result


def _statistics(values: FloatArray, area_mm2: float) -> dict[str, Any]:
    return {
        "n_pixels": int(values.size),
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "sd": float(np.std(values, ddof=0)),
        "area_mm2": float(area_mm2),
    }


def _aggregate(values: list[float], how: str) -> float:
    return float(np.median(values) if how == "median" else np.mean(values))


def measure_vbq(
    roi_set: RoiSet,
    images: Mapping[str, SliceImage],
    *,
    roi_statistic: str = "median",
    level_aggregate: str = "median",
    min_levels: int = 3,
) -> dict[str, Any]:
    """Measure a reading and compute its VBQ score (spec §3 output shape).

    ``images`` maps SOP Instance UID to the decoded slice. Returns::

        {"vbq": float | None, "numerator": float | None, ["reason": str,]
         "csf": {"si", "level", "n_pixels", "mean", "median", "sd", "area_mm2"},
         "levels": {"L1": {"si", "n_pixels", "mean", "median", "sd", "area_mm2"}
                          | {"excluded": True, "reason": str}, ... "L4": ...},
         "method": {"roi_statistic", "level_aggregate", "min_levels"}}

    ``reason`` is present only when the score is not computed (too few measured levels).
    Raises :class:`MeasurementError` (message naming the ROI) for a reading that cannot be
    measured, and ``ValueError`` for invalid options.
    """
    if roi_statistic not in STATISTICS:
        raise ValueError(f"roi_statistic must be median or mean, got {roi_statistic!r}")
    if level_aggregate not in STATISTICS:
        raise ValueError(f"level_aggregate must be median or mean, got {level_aggregate!r}")
    if isinstance(min_levels, bool) or not isinstance(min_levels, int) or not 1 <= min_levels <= 4:
        raise ValueError(f"min_levels must be an integer from 1 to 4, got {min_levels!r}")

    missing = roi_set.missing_levels()
    if missing:
        raise MeasurementError(
            f"{', '.join(missing)}: neither an ROI nor an exclusion; a level that cannot be "
            "measured must be excluded with a reason"
        )
    csf_names = [describe(roi, i) for i, roi in enumerate(roi_set.rois) if roi.label == CSF]
    if not csf_names:
        raise MeasurementError("no CSF ROI: the score needs one")

    # label -> instance UID -> union mask on that instance
    masks: dict[str, dict[str, BoolArray]] = {}
    for i, roi in enumerate(roi_set.rois):
        name = describe(roi, i)
        image = images.get(roi.sop_instance_uid)
        if image is None:
            raise MeasurementError(
                f"{name}: instance {roi.sop_instance_uid} is not among the images given"
            )
        if image.series_instance_uid != roi_set.series_instance_uid:
            raise MeasurementError(
                f"{name}: instance {roi.sop_instance_uid} belongs to series "
                f"{image.series_instance_uid}, not to the ROI set's series "
                f"{roi_set.series_instance_uid}"
            )
        rows, columns = image.geometry.rows, image.geometry.columns
        try:
            mask = roi_mask(roi.shape, rows, columns)
        except MeasurementError as error:
            raise MeasurementError(f"{name}: {error}") from None
        per_instance = masks.setdefault(roi.label, {})
        if roi.sop_instance_uid in per_instance:
            per_instance[roi.sop_instance_uid][mask.rows, mask.columns] |= mask.mask
        else:
            per_instance[roi.sop_instance_uid] = mask.full(rows, columns)

    statistics: dict[str, dict[str, Any]] = {}
    for label, per_instance in masks.items():
        values = np.concatenate(
            [images[uid].pixels[mask] for uid, mask in per_instance.items()]
        ).astype(np.float64, copy=False)
        area = sum(
            int(np.count_nonzero(mask)) * images[uid].geometry.pixel_area_mm2
            for uid, mask in per_instance.items()
        )
        stats = _statistics(values, area)
        statistics[label] = {"si": stats[roi_statistic], **stats}

    csf = statistics[CSF]
    if not csf["si"] > 0:
        raise MeasurementError(
            f"{', '.join(csf_names)}: the CSF SI ({roi_statistic}) is {csf['si']:g}; it must be "
            "positive to divide by it"
        )

    exclusions = {exclusion.label: exclusion for exclusion in roi_set.exclusions}
    levels: dict[str, dict[str, Any]] = {}
    for level in LEVELS:
        if level in exclusions:
            levels[level] = {"excluded": True, "reason": exclusions[level].reason}
        else:
            levels[level] = statistics[level]
    measured = [level for level in LEVELS if level not in exclusions]

    result: dict[str, Any] = {"vbq": None, "numerator": None}
    if len(measured) < min_levels:
        result["reason"] = (
            f"only {len(measured)} level(s) measured ({', '.join(measured) or 'none'}); "
            f"the score needs at least {min_levels}"
        )
    else:
        numerator = _aggregate([statistics[level]["si"] for level in measured], level_aggregate)
        result["vbq"] = numerator / csf["si"]
        result["numerator"] = numerator
    result["csf"] = {"si": csf["si"], "level": roi_set.csf_level, **_without_si(csf)}
    result["levels"] = levels
    result["method"] = {
        "roi_statistic": roi_statistic,
        "level_aggregate": level_aggregate,
        "min_levels": min_levels,
    }
    return result


def _without_si(stats: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in stats.items() if key != "si"}
