"""Parse and validate ROI sets in the ``vbq.rois/1`` JSON format (spec section 2).

A reader's ROIs are the raw material of every score, and they arrive from a browser, from files
written by hand and from other tools; so the parser is strict and every message names the
problem and where it is (``rois[2]: unknown key 'foo'``), instead of guessing what was meant.

Decisions (where the spec is silent):

- **Incomplete sets parse.** A level with neither an ROI nor an exclusion, or a set without a
  CSF ROI, is *not* a parse error: drafts saved by the site are incomplete by nature.
  :func:`readers.measurement.measure.measure_vbq` refuses them and names what is missing,
  because the spec says a level that cannot be measured is excluded with a reason, never
  silently skipped.
- **CSF level.** The CSF ROI records its level in ``level``; when absent it is ``"L3"``, the
  spec's default, and :meth:`RoiSet.to_json` always writes it so stored sets are explicit. The
  spec allows "L2 or L4 (or another level)", so any vertebral level (C1-C7, T1-T12, L1-L6,
  S1-S5) or interspace (L3-L4) is accepted. All CSF ROIs of a set must name the same level.
- Several ROIs may share a level (several slices, or two small ROIs around a vein): they are
  pooled at measure time. The CSF may likewise be measured with several ROIs.
- ``excluded`` must be ``true`` on an exclusion; ``"excluded": false`` on an ROI is accepted
  and means the same as leaving the key out (some editors serialise the flag on every item).
- Exclusions apply to L1-L4 only (an excluded CSF is an error); a level may not be both
  excluded and measured, nor excluded twice. ``note`` is optional free text.
- Coordinates are JSON numbers (not booleans, not strings), finite (Python's ``json`` accepts
  the non-standard ``NaN``/``Infinity`` literals: they are rejected here). Radii must be
  positive, a rectangle must have an area, a polygon needs 3 distinct points that are not all
  on one line. Duplicate keys in a JSON object are rejected by :func:`load_roi_file`.
- **Sizes are the site's business.** The parser takes a set of any size, as the command line
  always has; the site bounds what a browser may post (:class:`RoiLimits`,
  :func:`check_roi_limits`: bytes, items, polygon points, note length, geometry near the image).

Pure: no Django.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from studies.vocabulary import CSF, DEFAULT_CSF_LEVEL, LABELS, LEVELS, REASONS, ROI_SCHEMA, SHAPES

_ONE_LEVEL = r"(?:C[1-7]|T[1-9]|T1[0-2]|L[1-6]|S[1-5])"
# A vertebra (L3) or an interspace (L3-L4).
_VERTEBRAL_LEVEL = re.compile(rf"{_ONE_LEVEL}(?:-{_ONE_LEVEL})?")

Point: TypeAlias = tuple[float, float]


class RoiError(ValueError):
    """An ROI set is malformed; the message says what and where."""


def _check_point(name: str, point: Point) -> Point:
    if len(point) != 2:
        raise RoiError(f"{name} must be [x, y]")
    x, y = float(point[0]), float(point[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise RoiError(f"{name} must be finite, got [{x}, {y}]")
    return (x, y)


@dataclass(frozen=True)
class Ellipse:
    """An ellipse: centre (x, y), semi-axes (rx, ry); the first axis rotated by ``angle_deg``
    from +x towards +y (image coordinates, y pointing down)."""

    center: Point
    radii: tuple[float, float]
    angle_deg: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _check_point("center", self.center))
        radii = _check_point("radii", self.radii)
        if radii[0] <= 0 or radii[1] <= 0:
            raise RoiError(f"radii must be positive, got [{radii[0]}, {radii[1]}]")
        object.__setattr__(self, "radii", radii)
        angle = float(self.angle_deg)
        if not math.isfinite(angle):
            raise RoiError(f"angle_deg must be finite, got {angle}")
        object.__setattr__(self, "angle_deg", angle)


@dataclass(frozen=True)
class Rectangle:
    """An axis-aligned rectangle given by two opposite corners (in either order)."""

    corners: tuple[Point, Point]

    def __post_init__(self) -> None:
        if len(self.corners) != 2:
            raise RoiError("corners must be two points [[x0, y0], [x1, y1]]")
        a = _check_point("corners[0]", self.corners[0])
        b = _check_point("corners[1]", self.corners[1])
        if a[0] == b[0] or a[1] == b[1]:
            raise RoiError("the rectangle has no area (its corners share an x or a y)")
        object.__setattr__(self, "corners", (a, b))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max)."""
        (x0, y0), (x1, y1) = self.corners
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


@dataclass(frozen=True)
class Polygon:
    """A closed polygon (closed implicitly; a repeated first point is harmless), even-odd rule."""

    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        points = tuple(_check_point(f"points[{i}]", p) for i, p in enumerate(self.points))
        distinct = list(dict.fromkeys(points))
        if len(distinct) < 3:
            raise RoiError(f"a polygon needs at least 3 distinct points, got {len(distinct)}")
        if _collinear(distinct):
            raise RoiError("the polygon has no area (all its points are on one line)")
        object.__setattr__(self, "points", points)


def _collinear(points: list[Point]) -> bool:
    x0, y0 = points[0]
    scale = max(max(abs(x - x0), abs(y - y0)) for x, y in points)
    # Relative tolerance: the cross product of two spans of size `scale` is ~scale².
    tolerance = 1e-12 * scale * scale
    # Any two spans from the first point that are not parallel prove the polygon has an area.
    far = max(points, key=lambda p: abs(p[0] - x0) + abs(p[1] - y0))
    ux, uy = far[0] - x0, far[1] - y0
    return all(abs(ux * (y - y0) - uy * (x - x0)) <= tolerance for x, y in points)


Shape: TypeAlias = Ellipse | Rectangle | Polygon


@dataclass(frozen=True)
class Roi:
    """One measured region on one instance.

    ``level`` is the CSF ROI's vertebral level and ``None`` on bone ROIs (whose label is their
    level). ``index`` is the position in the source file's ``rois`` list, kept only to name the
    ROI in messages; it takes no part in equality.
    """

    label: str
    sop_instance_uid: str
    shape: Shape
    level: str | None = None
    index: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise RoiError(f"label must be one of {', '.join(LABELS)}, got {self.label!r}")
        if not isinstance(self.sop_instance_uid, str) or not self.sop_instance_uid.strip():
            raise RoiError("sop_instance_uid must be a non-empty string")
        if not isinstance(self.shape, Ellipse | Rectangle | Polygon):
            raise RoiError(f"shape must be an Ellipse, Rectangle or Polygon, got {self.shape!r}")
        if self.label == CSF:
            level = DEFAULT_CSF_LEVEL if self.level is None else self.level
            if not isinstance(level, str) or not _VERTEBRAL_LEVEL.fullmatch(level):
                raise RoiError(
                    f"level must be a vertebral level such as L2, L3 or L4, got {level!r}"
                )
            object.__setattr__(self, "level", level)
        elif self.level is not None:
            raise RoiError(f"'level' is only allowed on the CSF ROI, not on {self.label}")


@dataclass(frozen=True)
class Exclusion:
    """A level that could not be measured, and why."""

    label: str
    reason: str
    note: str | None = None
    index: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.label == CSF:
            raise RoiError("the CSF cannot be excluded: a score needs a CSF ROI")
        if self.label not in LEVELS:
            raise RoiError(f"label must be one of {', '.join(LEVELS)}, got {self.label!r}")
        if self.reason not in REASONS:
            raise RoiError(f"reason must be one of {', '.join(REASONS)}, got {self.reason!r}")
        if self.note is not None and not isinstance(self.note, str):
            raise RoiError("note must be a string")


def describe(item: Roi | Exclusion, position: int) -> str:
    """Name an item for messages: ``rois[3] (L3)``, using its file index when known."""
    index = item.index if item.index is not None else position
    return f"rois[{index}] ({item.label})"


@dataclass(frozen=True)
class RoiSet:
    """The ROIs and exclusions of one reading of one series."""

    series_instance_uid: str
    rois: tuple[Roi, ...] = ()
    exclusions: tuple[Exclusion, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.series_instance_uid, str) or not self.series_instance_uid.strip():
            raise RoiError("series_instance_uid must be a non-empty string")
        object.__setattr__(self, "rois", tuple(self.rois))
        object.__setattr__(self, "exclusions", tuple(self.exclusions))
        self._check_consistency()

    def _check_consistency(self) -> None:
        # Positions follow to_json's order (ROIs first), so that messages about a set built in
        # code name the same place as in its JSON.
        excluded: dict[str, str] = {}
        for j, exclusion in enumerate(self.exclusions):
            name = describe(exclusion, len(self.rois) + j)
            if exclusion.label in excluded:
                raise RoiError(
                    f"{name}: {exclusion.label} is excluded twice "
                    f"(also by {excluded[exclusion.label]})"
                )
            excluded[exclusion.label] = name
        csf_level: tuple[str, str] | None = None
        for i, roi in enumerate(self.rois):
            name = describe(roi, i)
            if roi.label in excluded:
                raise RoiError(
                    f"{name}: {roi.label} has an ROI but is also excluded by {excluded[roi.label]}"
                )
            if roi.label == CSF:
                assert roi.level is not None  # Roi.__post_init__ fills it in
                if csf_level is None:
                    csf_level = (roi.level, name)
                elif roi.level != csf_level[0]:
                    raise RoiError(
                        f"{name}: CSF level {roi.level} differs from {csf_level[0]} "
                        f"of {csf_level[1]}; all CSF ROIs must be at one level"
                    )

    @property
    def referenced_uids(self) -> frozenset[str]:
        """The SOP Instance UIDs that the ROIs are drawn on."""
        return frozenset(roi.sop_instance_uid for roi in self.rois)

    @property
    def csf_level(self) -> str | None:
        """The CSF level, or None when the set has no CSF ROI yet."""
        return next((roi.level for roi in self.rois if roi.label == CSF), None)

    def missing_levels(self) -> tuple[str, ...]:
        """Levels L1-L4 with neither an ROI nor an exclusion (a draft is not finished)."""
        present = {roi.label for roi in self.rois} | {e.label for e in self.exclusions}
        return tuple(level for level in LEVELS if level not in present)

    def to_json(self) -> dict[str, Any]:
        """The ``vbq.rois/1`` object (a dict ready for ``json.dumps`` or a JSON field).

        ROIs come first, then exclusions; ``parse_roi_set(s.to_json()) == s``.
        """
        items: list[dict[str, Any]] = [_roi_to_json(roi) for roi in self.rois]
        for exclusion in self.exclusions:
            item: dict[str, Any] = {
                "label": exclusion.label,
                "excluded": True,
                "reason": exclusion.reason,
            }
            if exclusion.note is not None:
                item["note"] = exclusion.note
            items.append(item)
        return {
            "schema": ROI_SCHEMA,
            "series_instance_uid": self.series_instance_uid,
            "rois": items,
        }


def _roi_to_json(roi: Roi) -> dict[str, Any]:
    item: dict[str, Any] = {"label": roi.label}
    if roi.level is not None:
        item["level"] = roi.level
    item["sop_instance_uid"] = roi.sop_instance_uid
    shape = roi.shape
    if isinstance(shape, Ellipse):
        item.update(
            shape="ellipse",
            center=list(shape.center),
            radii=list(shape.radii),
            angle_deg=shape.angle_deg,
        )
    elif isinstance(shape, Rectangle):
        item.update(shape="rectangle", corners=[list(p) for p in shape.corners])
    else:
        item.update(shape="polygon", points=[list(p) for p in shape.points])
    return item


# --- parsing ---------------------------------------------------------------------------------

_TOP_KEYS: Final = frozenset({"schema", "series_instance_uid", "rois"})
_EXCLUSION_KEYS: Final = frozenset({"label", "excluded", "reason", "note"})
_ROI_KEYS: Final = frozenset({"label", "excluded", "sop_instance_uid", "shape", "level"})
_SHAPE_KEYS: Final = {
    "ellipse": (frozenset({"center", "radii"}), frozenset({"angle_deg"})),
    "rectangle": (frozenset({"corners"}), frozenset()),
    "polygon": (frozenset({"points"}), frozenset()),
}


def _keys(where: str, obj: Mapping[str, Any], allowed: frozenset[str], what: str = "") -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise RoiError(f"{where}: unknown key{plural} {names}{what}")


def _required(where: str, obj: Mapping[str, Any], keys: frozenset[str] | set[str]) -> None:
    missing = sorted(set(keys) - set(obj))
    if missing:
        raise RoiError(f"{where}: missing {', '.join(repr(k) for k in missing)}")


def _string(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RoiError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _number(where: str, value: object) -> float:
    # bool is an int subclass in Python: `true` is not a coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RoiError(f"{where} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise RoiError(f"{where} must be a finite number, got {value!r}")
    return number


def _point(where: str, value: object) -> Point:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise RoiError(f"{where} must be a pair of numbers [x, y], got {value!r}")
    return (_number(f"{where}[0]", value[0]), _number(f"{where}[1]", value[1]))


def _points(where: str, value: object) -> list[Point]:
    if not isinstance(value, list | tuple):
        raise RoiError(f"{where} must be a list of points, got {value!r}")
    return [_point(f"{where}[{i}]", p) for i, p in enumerate(value)]


def _parse_shape(where: str, shape: str, item: Mapping[str, Any]) -> Shape:
    if shape == "ellipse":
        angle = _number(f"{where}.angle_deg", item["angle_deg"]) if "angle_deg" in item else 0.0
        center = _point(f"{where}.center", item["center"])
        return Ellipse(center, _point(f"{where}.radii", item["radii"]), angle)
    if shape == "rectangle":
        corners = _points(f"{where}.corners", item["corners"])
        if len(corners) != 2:
            raise RoiError(f"{where}.corners must be two points, got {len(corners)}")
        return Rectangle((corners[0], corners[1]))
    return Polygon(tuple(_points(f"{where}.points", item["points"])))


def _parse_item(where: str, item: object, index: int) -> Roi | Exclusion:
    if not isinstance(item, dict):
        raise RoiError(f"{where} must be an object, got {item!r}")
    if "label" not in item:
        raise RoiError(f"{where}: missing 'label'")
    label = item["label"]
    if label not in LABELS:
        raise RoiError(f"{where}: label must be one of {', '.join(LABELS)}, got {label!r}")
    where = f"{where} ({label})"
    excluded = item.get("excluded", False)
    if not isinstance(excluded, bool):
        raise RoiError(f"{where}.excluded must be true or false, got {excluded!r}")
    try:
        if excluded:
            _keys(where, item, _EXCLUSION_KEYS, " on an exclusion")
            _required(where, item, {"reason"})
            note = item.get("note")
            if note is not None and not isinstance(note, str):
                raise RoiError(f"note must be a string, got {note!r}")
            return Exclusion(label, item["reason"], note, index=index)
        _required(where, item, {"sop_instance_uid", "shape"})
        shape = item["shape"]
        if shape not in SHAPES:
            raise RoiError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
        required, optional = _SHAPE_KEYS[shape]
        article = "an" if shape == "ellipse" else "a"
        _keys(where, item, _ROI_KEYS | required | optional, f" on {article} {shape}")
        _required(where, item, required)
        if "level" in item and label != CSF:
            raise RoiError(f"{where}: 'level' is only allowed on the CSF ROI")
        level = _string(f"{where}.level", item["level"]) if "level" in item else None
        uid = _string(f"{where}.sop_instance_uid", item["sop_instance_uid"])
        return Roi(label, uid, _parse_shape(where, shape, item), level, index=index)
    except RoiError as error:
        message = str(error)
        raise RoiError(message if message.startswith(where) else f"{where}: {message}") from None


def parse_roi_set(data: object) -> RoiSet:
    """Validate a decoded ``vbq.rois/1`` JSON value and return the :class:`RoiSet`.

    Raises :class:`RoiError` naming the problem and its place (``rois[2] (L3): ...``).
    """
    if not isinstance(data, dict):
        raise RoiError(f"the ROI set must be a JSON object, got {type(data).__name__}")
    _keys("top level", data, _TOP_KEYS)
    _required("top level", data, _TOP_KEYS)
    if data["schema"] != ROI_SCHEMA:
        raise RoiError(f"schema must be {ROI_SCHEMA!r}, got {data['schema']!r}")
    series_uid = _string("series_instance_uid", data["series_instance_uid"])
    items = data["rois"]
    if not isinstance(items, list):
        raise RoiError(f"rois must be a list, got {type(items).__name__}")
    parsed = [_parse_item(f"rois[{i}]", item, i) for i, item in enumerate(items)]
    return RoiSet(
        series_uid,
        tuple(p for p in parsed if isinstance(p, Roi)),
        tuple(p for p in parsed if isinstance(p, Exclusion)),
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RoiError(f"invalid JSON: duplicate key {key!r}")
        result[key] = value
    return result


def loads_roi_set(text: str | bytes) -> RoiSet:
    """Decode JSON text (UTF-8 when bytes) and parse it; errors are :class:`RoiError`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise RoiError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise RoiError(
            f"invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:  # Python's decoder recurses once per level of [[[[…
        raise RoiError("invalid JSON: nested too deeply") from None
    return parse_roi_set(data)


def load_roi_file(path: str | os.PathLike[str]) -> RoiSet:
    """Read and parse an ROI file; every :class:`RoiError` message starts with the path."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise RoiError(f"{os.fspath(path)}: cannot read the file ({error.strerror})") from None
    try:
        return loads_roi_set(raw)
    except RoiError as error:
        raise RoiError(f"{os.fspath(path)}: {error}") from None


def remap_uids(data: Mapping[str, Any], new_uid: Callable[[str], str]) -> dict[str, Any]:
    """A copy of a ``vbq.rois/1`` object with its series and instance UIDs mapped by ``new_uid``.

    Why: ROIs drawn on source files (the phantom's suggested ROIs, a set exported from another
    site) name the source UIDs, but the site stores de-identified instances under new UIDs
    (spec section 4). Mapping through the site's UID function keeps such a set valid for the
    stored images. The input is validated first, so a bad set fails here, not later.
    """
    roi_set = parse_roi_set(data)
    out = roi_set.to_json()
    out["series_instance_uid"] = new_uid(roi_set.series_instance_uid)
    for item in out["rois"]:
        if "sop_instance_uid" in item:
            item["sop_instance_uid"] = new_uid(item["sop_instance_uid"])
    return out


# --- limits on sets that arrive from the web -------------------------------------------------


@dataclass(frozen=True)
class RoiLimits:
    """How large an ROI set the site accepts from a browser.

    Why: the spec fixes no sizes, and ``measure_vbq`` (spec section 3) reads files its user chose,
    so :func:`parse_roi_set` and :func:`load_roi_file` apply none of these; the site's endpoints
    do (:func:`check_roi_limits`), because a posted set is stored in every revision, copied into
    every download and measured by the worker. The numbers are far above what a reading needs:
    the viewer draws one ROI per level, a freehand contour of a vertebral body has a few hundred
    points and the exclusion note's field takes 200 characters.
    """

    max_bytes: int = 64 * 1024
    """The JSON body of one save."""
    max_items: int = 50
    """ROIs and exclusions in one set."""
    max_polygon_points: int = 2000
    max_note_chars: int = 500


WEB_ROI_LIMITS: Final = RoiLimits()
"""The limits of the site's ROI save (``readers.views``)."""


def check_roi_limits(
    roi_set: RoiSet,
    *,
    rows: int | None,
    columns: int | None,
    limits: RoiLimits = WEB_ROI_LIMITS,
) -> None:
    """Refuse a set beyond ``limits``, or with geometry far off an image of ``rows`` × ``columns``.

    The geometry bound is one image size around the image: ``-columns <= x <= 2·columns`` and
    ``-rows <= y <= 2·rows`` for every centre, corner and point, and every radius at most the
    image's larger side. An ROI that leaves the image a little still saves (a draft being
    dragged), and the measurement refuses it with its own message (spec section 1); what is
    refused here is geometry that no drawing produces (``1e300``), before it is stored. Without
    a size (``None``: a series with no readable instance) only the counts are checked.

    Raises :class:`RoiError` naming the item and the limit.
    """
    items = len(roi_set.rois) + len(roi_set.exclusions)
    if items > limits.max_items:
        raise RoiError(f"{items} ROIs and exclusions; at most {limits.max_items} are accepted")
    for j, exclusion in enumerate(roi_set.exclusions):
        if exclusion.note is not None and len(exclusion.note) > limits.max_note_chars:
            name = describe(exclusion, len(roi_set.rois) + j)
            raise RoiError(
                f"{name}: the note has {len(exclusion.note)} characters; "
                f"at most {limits.max_note_chars} are accepted"
            )
    for i, roi in enumerate(roi_set.rois):
        name = describe(roi, i)
        shape = roi.shape
        if isinstance(shape, Polygon) and len(shape.points) > limits.max_polygon_points:
            raise RoiError(
                f"{name}: {len(shape.points)} polygon points; "
                f"at most {limits.max_polygon_points} are accepted"
            )
        if rows is None or columns is None:
            continue
        if isinstance(shape, Ellipse):
            points: tuple[Point, ...] = (shape.center,)
            if max(shape.radii) > max(rows, columns):
                raise RoiError(
                    f"{name}: radii {list(shape.radii)} exceed the image's size "
                    f"({columns} × {rows} pixels)"
                )
        else:
            points = shape.corners if isinstance(shape, Rectangle) else shape.points
        for x, y in points:
            if not (-columns <= x <= 2 * columns and -rows <= y <= 2 * rows):
                raise RoiError(
                    f"{name}: the point [{x}, {y}] is far outside the image "
                    f"({columns} × {rows} pixels)"
                )
