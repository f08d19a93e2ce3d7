"""Where an image's pixels are: the mapping between image and patient (world) coordinates.

Image coordinates are continuous ``(x, y) = (column, row)`` with the centre of the first
transmitted pixel at ``(0, 0)`` (spec section 2, DICOM's and ITK's index space)::

    world_mm = ImagePositionPatient
               + x * PixelSpacing[1] * IOP[0:3]
               + y * PixelSpacing[0] * IOP[3:6]

``pixel_spacing`` keeps DICOM's order (row spacing, column spacing): the spacing *between rows*
scales ``y`` and the spacing *between columns* scales ``x``. Keeping the DICOM order avoids the
classic swap bug when a value is copied from a header.

Cornerstone3D puts ``(0, 0)`` at the top-left corner of the first pixel instead; the helpers
:func:`from_cornerstone` and :func:`to_cornerstone` apply the half-pixel shift in one place.

Pure: no Django, no pydicom (the DICOM reader builds an :class:`ImageGeometry` from a header).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Vector3 = tuple[float, float, float]

# Direction cosines written by scanners are rounded (typically to 5-6 digits); this tolerance
# accepts them while still catching garbage such as a zero vector or two parallel axes.
_DIRECTION_TOLERANCE = 1e-3


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _finite_tuple(name: str, values: Sequence[float], length: int) -> tuple[float, ...]:
    if len(values) != length:
        raise ValueError(f"{name} needs {length} values, got {len(values)}")
    result = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in result):
        raise ValueError(f"{name} must be finite, got {list(result)}")
    return result


@dataclass(frozen=True)
class ImageGeometry:
    """The geometry of one 2-D image (one slice).

    Attributes:
        rows, columns: the matrix size.
        pixel_spacing: (row spacing, column spacing) in mm, DICOM PixelSpacing order.
        image_position: ImagePositionPatient, the world position of the first pixel's centre.
        image_orientation: ImageOrientationPatient, the row direction (x) then the column
            direction (y) as unit vectors.
    """

    rows: int
    columns: int
    pixel_spacing: tuple[float, float]
    image_position: tuple[float, float, float]
    image_orientation: tuple[float, float, float, float, float, float]

    def __post_init__(self) -> None:
        # Normalise to plain tuples of floats, so that equality and hashing work whatever the
        # caller passed (lists, pydicom DSfloat, numpy scalars).
        if int(self.rows) != self.rows or int(self.columns) != self.columns:
            raise ValueError("rows and columns must be integers")
        if self.rows < 1 or self.columns < 1:
            raise ValueError(f"the matrix must not be empty, got {self.rows} x {self.columns}")
        spacing = _finite_tuple("pixel_spacing", self.pixel_spacing, 2)
        if spacing[0] <= 0 or spacing[1] <= 0:
            raise ValueError(f"pixel_spacing must be positive, got {list(spacing)}")
        position = _finite_tuple("image_position", self.image_position, 3)
        orientation = _finite_tuple("image_orientation", self.image_orientation, 6)
        row_dir, col_dir = orientation[:3], orientation[3:]
        for name, vector in (("row", row_dir), ("column", col_dir)):
            if abs(math.sqrt(_dot(vector, vector)) - 1.0) > _DIRECTION_TOLERANCE:
                raise ValueError(f"image_orientation: the {name} direction is not a unit vector")
        if abs(_dot(row_dir, col_dir)) > _DIRECTION_TOLERANCE:
            raise ValueError("image_orientation: the row and column directions are not orthogonal")
        object.__setattr__(self, "rows", int(self.rows))
        object.__setattr__(self, "columns", int(self.columns))
        object.__setattr__(self, "pixel_spacing", spacing)
        object.__setattr__(self, "image_position", position)
        object.__setattr__(self, "image_orientation", orientation)

    @property
    def row_direction(self) -> Vector3:
        """The world direction of increasing x (along a row, i.e. across columns)."""
        o = self.image_orientation
        return (o[0], o[1], o[2])

    @property
    def column_direction(self) -> Vector3:
        """The world direction of increasing y (down a column, i.e. across rows)."""
        o = self.image_orientation
        return (o[3], o[4], o[5])

    @property
    def normal(self) -> Vector3:
        """The unit slice normal, row direction x column direction (right-handed)."""
        r, c = self.row_direction, self.column_direction
        n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
        length = math.sqrt(_dot(n, n))
        return (n[0] / length, n[1] / length, n[2] / length)

    @property
    def pixel_area_mm2(self) -> float:
        """The area of one pixel in mm² (row spacing x column spacing)."""
        return self.pixel_spacing[0] * self.pixel_spacing[1]

    def image_to_world(self, x: float, y: float) -> Vector3:
        """World position (mm) of the image point ``(x, y) = (column, row)``."""
        sx = x * self.pixel_spacing[1]
        sy = y * self.pixel_spacing[0]
        r, c, p = self.row_direction, self.column_direction, self.image_position
        return (
            p[0] + sx * r[0] + sy * c[0],
            p[1] + sx * r[1] + sy * c[1],
            p[2] + sx * r[2] + sy * c[2],
        )

    def world_to_image(self, point: Sequence[float]) -> tuple[float, float]:
        """Image point ``(x, y)`` of a world position, projected onto the slice plane.

        The component along the normal is dropped; use :meth:`distance_from_plane` to check
        that the point actually lies on this slice.
        """
        d = _finite_tuple("point", point, 3)
        p = self.image_position
        rel = (d[0] - p[0], d[1] - p[1], d[2] - p[2])
        x = _dot(rel, self.row_direction) / self.pixel_spacing[1]
        y = _dot(rel, self.column_direction) / self.pixel_spacing[0]
        return (x, y)

    def distance_from_plane(self, point: Sequence[float]) -> float:
        """Signed distance (mm) of a world position from the slice plane, along the normal."""
        d = _finite_tuple("point", point, 3)
        p = self.image_position
        return _dot((d[0] - p[0], d[1] - p[1], d[2] - p[2]), self.normal)


def from_cornerstone(x: float, y: float) -> tuple[float, float]:
    """Convert Cornerstone3D image coordinates (origin at the first pixel's corner) to ours."""
    return (x - 0.5, y - 0.5)


def to_cornerstone(x: float, y: float) -> tuple[float, float]:
    """Convert our image coordinates (origin at the first pixel's centre) to Cornerstone3D's."""
    return (x + 0.5, y + 0.5)
