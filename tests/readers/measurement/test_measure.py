"""Pixel inclusion and the VBQ score.

The mask is checked three independent ways: values worked out by hand, a deliberately naive
per-pixel oracle written from the spec's words, and scikit-image away from boundaries (where its
strict inequality cannot differ from our inclusive one). Hypothesis adds geometric properties.
"""

from __future__ import annotations

import cmath
import contextlib
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from skimage.draw import ellipse as sk_ellipse
from skimage.measure import points_in_poly

from readers.measurement.dicomio import SliceImage
from readers.measurement.geometry import ImageGeometry
from readers.measurement.measure import (
    ALGORITHM_VERSION,
    MeasurementError,
    RoiMask,
    measure_vbq,
    roi_mask,
    shape_extent,
)
from readers.measurement.rois import (
    Ellipse,
    Exclusion,
    Polygon,
    Rectangle,
    Roi,
    RoiError,
    RoiSet,
    Shape,
    parse_roi_set,
)

RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERIES = "2.25.100"
ROWS, COLUMNS = 24, 20

# --- an independent, deliberately naive oracle --------------------------------------------


def _on_segment(px: float, py: float, a: tuple[float, float], b: tuple[float, float]) -> bool:
    (ax, ay), (bx, by) = a, b
    length = math.hypot(bx - ax, by - ay)
    if length == 0:
        return math.hypot(px - ax, py - ay) <= 1e-9
    cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    dot = (px - ax) * (bx - ax) + (py - ay) * (by - ay)
    return abs(cross) / length <= 1e-9 and -1e-9 <= dot / length <= length + 1e-9


def _pnpoly(px: float, py: float, points: tuple[tuple[float, float], ...]) -> bool:
    """W. R. Franklin's PNPOLY: the classic even-odd crossing test."""
    inside = False
    j = len(points) - 1
    for i in range(len(points)):
        (xi, yi), (xj, yj) = points[i], points[j]
        if (yi > py) != (yj > py) and px < (xj - xi) * (py - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def ellipse_q(shape: Ellipse, x: float, y: float) -> float:
    """Normalised radius: rotate the point back by the ellipse's angle with complex numbers."""
    z = complex(x - shape.center[0], y - shape.center[1]) * cmath.exp(
        -1j * math.radians(shape.angle_deg)
    )
    return (z.real / shape.radii[0]) ** 2 + (z.imag / shape.radii[1]) ** 2


def contains(shape: Shape, x: float, y: float) -> bool:
    if isinstance(shape, Ellipse):
        return ellipse_q(shape, x, y) <= 1 + 1e-9
    if isinstance(shape, Rectangle):
        (x0, y0), (x1, y1) = shape.corners
        return (
            min(x0, x1) - 1e-9 <= x <= max(x0, x1) + 1e-9
            and min(y0, y1) - 1e-9 <= y <= max(y0, y1) + 1e-9
        )
    points = shape.points
    edges = zip(points, points[1:] + points[:1], strict=True)
    return any(_on_segment(x, y, a, b) for a, b in edges) or _pnpoly(x, y, points)


def oracle(shape: Shape, rows: int = ROWS, columns: int = COLUMNS) -> NDArray[np.bool_]:
    out = np.zeros((rows, columns), dtype=bool)
    for r in range(rows):
        for c in range(columns):
            out[r, c] = contains(shape, float(c), float(r))
    return out


def full_mask(shape: Shape, rows: int = ROWS, columns: int = COLUMNS) -> NDArray[np.bool_]:
    return roi_mask(shape, rows, columns).full(rows, columns)


def cells(mask: NDArray[np.bool_]) -> set[tuple[int, int]]:
    """The (x, y) = (column, row) pixel centres of a mask."""
    return {(int(c), int(r)) for r, c in zip(*np.nonzero(mask), strict=True)}


# --- masks: values worked out by hand -------------------------------------------------------


def test_unit_circle_takes_the_centre_and_its_four_neighbours_on_the_boundary() -> None:
    mask = full_mask(Ellipse((5.0, 5.0), (1.0, 1.0)))
    assert cells(mask) == {(5, 5), (4, 5), (6, 5), (5, 4), (5, 6)}


def test_boundary_tolerance_keeps_centres_exactly_on_the_circle() -> None:
    # Diagonal neighbours are at distance sqrt(2): exactly on this circle's boundary.
    assert full_mask(Ellipse((5.0, 5.0), (math.sqrt(2), math.sqrt(2)))).sum() == 9
    assert full_mask(Ellipse((5.0, 5.0), (1.41, 1.41))).sum() == 5


def test_ellipse_axes_follow_x_and_y() -> None:
    # rx along x (columns), ry along y (rows).
    mask = full_mask(Ellipse((10.0, 10.0), (3.0, 0.5)))
    assert cells(mask) == {(x, 10) for x in range(7, 14)}


@pytest.mark.parametrize(
    ("angle", "expected"),
    [
        (90.0, {(5, 5 + k) for k in range(-3, 4)}),
        (45.0, {(5 + k, 5 + k) for k in range(-2, 3)}),  # from +x towards +y: down-right
        (135.0, {(5 - k, 5 + k) for k in range(-2, 3)}),
        (-45.0, {(5 - k, 5 + k) for k in range(-2, 3)}),
    ],
)
def test_rotation_goes_from_plus_x_towards_plus_y(
    angle: float, expected: set[tuple[int, int]]
) -> None:
    assert cells(full_mask(Ellipse((5.0, 5.0), (3.0, 0.5), angle))) == expected


def test_rectangle_includes_its_edges_and_accepts_corners_in_any_order() -> None:
    mask = roi_mask(Rectangle(((3.0, 2.0), (1.0, 4.0))), ROWS, COLUMNS)
    assert (mask.rows, mask.columns) == (slice(2, 5), slice(1, 4))
    assert mask.mask.all()
    assert mask.n_pixels == 9
    assert full_mask(Rectangle(((0.6, 0.6), (3.4, 1.4)))).sum() == 3  # x 1..3, y 1


def test_polygon_square_includes_its_boundary() -> None:
    mask = full_mask(Polygon(((1.0, 1.0), (4.0, 1.0), (4.0, 3.0), (1.0, 3.0))))
    assert cells(mask) == {(x, y) for x in range(1, 5) for y in range(1, 4)}


def test_concave_polygon() -> None:
    # A U shape: two 1-pixel-wide arms (x = 0..1 and x = 5..6) joined by a base (y = 5..6).
    u_shape = Polygon(
        ((0.0, 0.0), (1.0, 0.0), (1.0, 5.0), (5.0, 5.0), (5.0, 0.0), (6.0, 0.0), (6.0, 6.0),
         (0.0, 6.0))
    )  # fmt: skip
    mask = full_mask(u_shape)
    expected = {(x, y) for x in (0, 1, 5, 6) for y in range(0, 7)} | {
        (x, y) for x in range(0, 7) for y in (5, 6)
    }
    assert cells(mask) == expected
    assert not mask[2, 3]  # inside the notch


def test_self_intersecting_bowtie_uses_even_odd() -> None:
    # Two triangles meeting at (4, 4); the crossing point itself is on the boundary.
    bowtie = Polygon(((0.0, 0.0), (8.0, 8.0), (8.0, 0.0), (0.0, 8.0)))
    mask = full_mask(bowtie)
    assert mask[4, 2]  # the left lobe
    assert mask[4, 6]  # the right lobe
    assert not mask[1, 4]  # above the crossing: outside
    assert not mask[7, 4]  # below it
    assert mask[4, 4]
    np.testing.assert_array_equal(mask, oracle(bowtie))


def test_pentagram_centre_is_a_hole_under_even_odd() -> None:
    centre = complex(10, 10)
    tips = [centre + 9 * cmath.exp(1j * math.radians(-90 + 144 * k)) for k in range(5)]
    star = Polygon(tuple((p.real, p.imag) for p in tips))
    mask = full_mask(star)
    assert not mask[10, 10]  # covered twice: outside by even-odd
    assert mask[3, 10]  # the top point's arm
    np.testing.assert_array_equal(mask, oracle(star))


def test_empty_roi_is_an_error() -> None:
    with pytest.raises(MeasurementError, match="empty: no pixel centre"):
        roi_mask(Ellipse((2.5, 2.5), (0.3, 0.3)), ROWS, COLUMNS)
    with pytest.raises(MeasurementError, match="empty"):
        roi_mask(Rectangle(((2.2, 2.2), (2.8, 5.0))), ROWS, COLUMNS)
    with pytest.raises(MeasurementError, match="empty"):
        roi_mask(Polygon(((2.1, 2.1), (2.9, 2.1), (2.5, 2.9))), ROWS, COLUMNS)


@pytest.mark.parametrize(
    "shape",
    [
        Ellipse((1.0, 5.0), (1.6, 1.0)),  # reaches x = -0.6
        Ellipse((5.0, ROWS - 2.0), (1.0, 1.6)),  # reaches y = rows - 0.4
        Rectangle(((-1.0, 2.0), (3.0, 4.0))),
        Polygon(((2.0, 2.0), (COLUMNS + 0.0, 3.0), (4.0, 6.0))),  # a vertex past the last column
    ],
)
def test_roi_leaving_the_image_is_an_error(shape: Shape) -> None:
    with pytest.raises(MeasurementError, match="leaves the image"):
        roi_mask(shape, ROWS, COLUMNS)


def test_rotated_extent_is_used_for_leaving_the_image() -> None:
    # Axis-aligned this ellipse fits (x 0..10); rotated 90 degrees it spans x 3..7 and y 0..10.
    assert roi_mask(Ellipse((5.0, 5.0), (5.0, 2.0)), ROWS, COLUMNS).n_pixels > 0
    with pytest.raises(MeasurementError, match="leaves the image"):
        roi_mask(Ellipse((5.0, 3.0), (5.0, 2.0), 90.0), ROWS, COLUMNS)
    assert shape_extent(Ellipse((5.0, 5.0), (5.0, 2.0), 90.0)) == pytest.approx((3, 0, 7, 10))


def test_the_image_extends_to_the_outer_pixel_edges() -> None:
    # Exactly on the edges of the image is inside: [-0.5, columns - 0.5] x [-0.5, rows - 0.5].
    whole = Rectangle(((-0.5, -0.5), (COLUMNS - 0.5, ROWS - 0.5)))
    assert roi_mask(whole, ROWS, COLUMNS).n_pixels == ROWS * COLUMNS
    assert roi_mask(Ellipse((0.0, 0.0), (0.5, 0.5)), ROWS, COLUMNS).n_pixels == 1
    with pytest.raises(MeasurementError, match="leaves the image"):
        roi_mask(Ellipse((0.0, 0.0), (0.51, 0.5)), ROWS, COLUMNS)


def test_mask_is_restricted_to_the_bounding_box() -> None:
    m = roi_mask(Ellipse((10.0, 12.0), (2.0, 3.0)), ROWS, COLUMNS)
    assert m.mask.shape == (7, 5)
    assert (m.rows, m.columns) == (slice(9, 16), slice(8, 13))
    pixels = np.arange(ROWS * COLUMNS, dtype=np.float64).reshape(ROWS, COLUMNS)
    np.testing.assert_array_equal(m.values(pixels), pixels[m.full(ROWS, COLUMNS)])


# --- masks: against the oracle and scikit-image ---------------------------------------------

# Eighths of a pixel: exact in binary floating point, so shapes often pass exactly through
# pixel centres and the boundary rule is exercised, with no rounding ambiguity.
# x in about [-0.6, 19.6] and y in about [-0.6, 23.6]: mostly on the 20 x 24 image, sometimes
# just off it (the "leaves the image" branch).
xs = st.integers(-5, 8 * COLUMNS - 3).map(lambda n: n / 8)
ys = st.integers(-5, 8 * ROWS - 3).map(lambda n: n / 8)
image_points = st.tuples(xs, ys)
radii = st.integers(1, 8 * 6).map(lambda n: n / 8)
angles = st.sampled_from([0.0, 15.0, 30.0, 45.0, 90.0, 120.0, -60.0, 180.0]) | st.floats(-360, 360)

ellipses = st.builds(Ellipse, image_points, st.tuples(radii, radii), angles)
rectangles = st.builds(Rectangle, st.tuples(image_points, image_points))
polygon_points = st.lists(image_points, min_size=3, max_size=8)


@st.composite
def polygons(draw: st.DrawFn) -> Polygon:
    points = tuple(draw(polygon_points))
    try:
        return Polygon(points)
    except RoiError:
        assume(False)
        raise


def any_valid(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    @st.composite
    def build(draw: st.DrawFn) -> Any:
        try:
            return draw(strategy)
        except RoiError:  # e.g. a zero-area rectangle
            assume(False)
            raise

    return build()


shapes = st.one_of(any_valid(ellipses), any_valid(rectangles), polygons())


def leaves_image(shape: Shape, rows: int = ROWS, columns: int = COLUMNS) -> bool:
    x0, y0, x1, y1 = shape_extent(shape)
    return x0 < -0.5 or y0 < -0.5 or x1 > columns - 0.5 or y1 > rows - 0.5


@settings(RELAXED, max_examples=300)  # cheap; about half the examples reach the comparison
@given(shapes)
def test_mask_equals_the_per_pixel_oracle(shape: Shape) -> None:
    if leaves_image(shape):
        event("leaves the image")
        with pytest.raises(MeasurementError, match="leaves the image"):
            roi_mask(shape, ROWS, COLUMNS)
        return
    expected = oracle(shape)
    if not expected.any():
        event("empty")
        with pytest.raises(MeasurementError, match="empty"):
            roi_mask(shape, ROWS, COLUMNS)
        return
    event(f"compared {type(shape).__name__}")
    np.testing.assert_array_equal(full_mask(shape), expected)


@RELAXED
@given(
    st.tuples(st.floats(5, 15), st.floats(5, 19)),
    st.tuples(st.floats(0.3, 4.5), st.floats(0.3, 4.5)),
    st.floats(-180, 180),
)
def test_ellipse_agrees_with_skimage_away_from_the_boundary(
    center: tuple[float, float], radii: tuple[float, float], angle: float
) -> None:
    shape = Ellipse(center, radii, angle)
    assume(not leaves_image(shape))
    try:
        ours = full_mask(shape)
    except MeasurementError:  # empty; skimage must then find no clear interior pixel either
        ours = np.zeros((ROWS, COLUMNS), dtype=bool)
    rr, cc = sk_ellipse(
        center[1],
        center[0],
        radii[1],
        radii[0],
        shape=(ROWS, COLUMNS),
        rotation=-math.radians(angle),
    )
    theirs = np.zeros_like(ours)
    theirs[rr, cc] = True
    q = np.array([[ellipse_q(shape, c, r) for c in range(COLUMNS)] for r in range(ROWS)])
    clear = np.abs(q - 1) > 1e-6
    np.testing.assert_array_equal(ours[clear], theirs[clear])


@RELAXED
@given(st.lists(st.tuples(st.floats(-0.5, 19.5), st.floats(-0.5, 23.5)), min_size=3, max_size=9))
def test_polygon_agrees_with_skimage_points_in_poly_away_from_edges(
    points: list[tuple[float, float]],
) -> None:
    try:
        shape = Polygon(tuple(points))
    except RoiError:
        assume(False)
        raise
    ys, xs = np.mgrid[0:ROWS, 0:COLUMNS]
    centres = np.column_stack([xs.ravel(), ys.ravel()]).astype(float)
    theirs = points_in_poly(centres, np.array(points)).reshape(ROWS, COLUMNS)
    try:
        ours = full_mask(shape)
    except MeasurementError:
        ours = np.zeros((ROWS, COLUMNS), dtype=bool)
    edges = list(zip(points, points[1:] + points[:1], strict=True))
    near_edge = np.array(
        [
            [
                any(_segment_distance((float(c), float(r)), a, b) < 1e-6 for a, b in edges)
                for c in range(COLUMNS)
            ]
            for r in range(ROWS)
        ]
    )
    np.testing.assert_array_equal(ours[~near_edge], theirs[~near_edge])


def _segment_distance(
    p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> float:
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2))
    return math.hypot(p[0] - ax - t * dx, p[1] - ay - t * dy)


# --- masks: properties ----------------------------------------------------------------------

integer_centres = st.tuples(st.integers(8, 11), st.integers(8, 15))


@RELAXED
@given(integer_centres, st.tuples(radii.filter(lambda r: r <= 7), radii.filter(lambda r: r <= 7)),
       angles)  # fmt: skip
def test_ellipse_mask_is_symmetric_under_half_turn_about_an_integer_centre(
    centre: tuple[int, int], axes: tuple[float, float], angle: float
) -> None:
    shape = Ellipse((float(centre[0]), float(centre[1])), axes, angle)
    mask = roi_mask(shape, ROWS, COLUMNS)  # the centre pixel is always inside
    assert mask.n_pixels % 2 == 1  # pairs of pixels plus the centre
    np.testing.assert_array_equal(mask.mask, mask.mask[::-1, ::-1])


@RELAXED
@given(integer_centres, st.tuples(radii, radii))
def test_quarter_turn_swaps_the_radii(centre: tuple[int, int], axes: tuple[float, float]) -> None:
    c = (float(centre[0]), float(centre[1]))
    a = Ellipse(c, axes, 90.0)
    b = Ellipse(c, (axes[1], axes[0]), 0.0)
    assume(not leaves_image(a) and not leaves_image(b))
    np.testing.assert_array_equal(full_mask(a), full_mask(b))


def translated(shape: Shape, dx: int, dy: int) -> Shape:
    if isinstance(shape, Ellipse):
        return Ellipse((shape.center[0] + dx, shape.center[1] + dy), shape.radii, shape.angle_deg)
    if isinstance(shape, Rectangle):
        return Rectangle(tuple((x + dx, y + dy) for x, y in shape.corners))  # type: ignore[arg-type]
    return Polygon(tuple((x + dx, y + dy) for x, y in shape.points))


@RELAXED
@given(shapes, st.integers(-6, 6), st.integers(-6, 6))
def test_integer_translation_translates_the_mask(shape: Shape, dx: int, dy: int) -> None:
    size = 80  # room to move: shapes live in about [-11, 34]
    base = translated(shape, 20, 20)
    moved = translated(base, dx, dy)
    try:
        a = roi_mask(base, size, size)
    except MeasurementError:
        assume(False)
        raise
    b = roi_mask(moved, size, size)
    assert (b.rows.start - a.rows.start, b.columns.start - a.columns.start) == (dy, dx)
    np.testing.assert_array_equal(a.mask, b.mask)


@RELAXED
@given(st.tuples(image_points, image_points))
def test_rectangle_count_is_the_product_of_the_integer_ranges(
    corners: tuple[tuple[float, float], tuple[float, float]],
) -> None:
    try:
        shape = Rectangle(corners)
    except RoiError:
        assume(False)
        raise
    assume(not leaves_image(shape))
    (x0, y0), (x1, y1) = corners
    n_x = math.floor(max(x0, x1)) - math.ceil(min(x0, x1)) + 1
    n_y = math.floor(max(y0, y1)) - math.ceil(min(y0, y1)) + 1
    if n_x <= 0 or n_y <= 0:
        with pytest.raises(MeasurementError, match="empty"):
            roi_mask(shape, ROWS, COLUMNS)
    else:
        assert roi_mask(shape, ROWS, COLUMNS).n_pixels == n_x * n_y


@RELAXED
@given(any_valid(ellipses))
def test_strictly_inside_centres_are_in_and_strictly_outside_are_out(shape: Ellipse) -> None:
    assume(not leaves_image(shape))
    q = np.array([[ellipse_q(shape, c, r) for c in range(COLUMNS)] for r in range(ROWS)])
    assume((q < 1 - 1e-6).any())
    mask = full_mask(shape)
    assert mask[q < 1 - 1e-6].all()
    assert not mask[q > 1 + 1e-6].any()


@RELAXED
@given(
    # A pixel centre, so that the polygon is never empty.
    st.tuples(st.integers(7, 12).map(float), st.integers(9, 14).map(float)),
    st.lists(st.integers(8, 8 * 6).map(lambda n: n / 8), min_size=4, max_size=10),
    st.data(),
)
def test_polygon_mask_is_the_union_of_its_fan_triangles(
    centre: tuple[float, float], distances: list[float], data: st.DataObject
) -> None:
    # A star-shaped polygon (vertices at increasing angles around `centre`) is partitioned by
    # the triangles of its fan from `centre`; the pieces' masks must unite to the whole.
    n = len(distances)
    offsets = data.draw(st.lists(st.floats(0.05, 0.95), min_size=n, max_size=n))
    points = tuple(
        (
            centre[0] + d * math.cos(2 * math.pi * (k + o) / n),
            centre[1] + d * math.sin(2 * math.pi * (k + o) / n),
        )
        for k, (d, o) in enumerate(zip(distances, offsets, strict=True))
    )
    whole = full_mask(Polygon(points))
    union = np.zeros_like(whole)
    for a, b in zip(points, points[1:] + points[:1], strict=True):
        with contextlib.suppress(MeasurementError, RoiError):  # a sliver with no pixel centre
            union |= full_mask(Polygon((centre, a, b)))
    np.testing.assert_array_equal(union, whole)


@RELAXED
@given(any_valid(rectangles))
def test_rectangle_polygon_equals_rectangle(shape: Rectangle) -> None:
    assume(not leaves_image(shape))
    x0, y0, x1, y1 = shape.bounds
    as_polygon = Polygon(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
    try:
        expected = full_mask(shape)
    except MeasurementError:
        with pytest.raises(MeasurementError):
            roi_mask(as_polygon, ROWS, COLUMNS)
        return
    np.testing.assert_array_equal(full_mask(as_polygon), expected)


# --- measure_vbq ---------------------------------------------------------------------------


def make_image(
    uid: str,
    pixels: NDArray[np.float64],
    *,
    series: str = SERIES,
    spacing: tuple[float, float] = (0.5, 0.5),
) -> SliceImage:
    geometry = ImageGeometry(
        pixels.shape[0], pixels.shape[1], spacing, (0.0, 0.0, 0.0), (0, 1, 0, 0, 0, -1)
    )
    return SliceImage(uid, series, pixels.astype(np.float64), geometry)


def patchwork() -> NDArray[np.float64]:
    """A 40 x 40 image of constant 5 x 5 patches; patch (i, j) covers x 5i..5i+4, y 5j..5j+4."""
    image = np.zeros((40, 40))
    for i, value in enumerate([100.0, 200.0, 300.0, 1000.0, 50.0, -10.0, 0.0, 7.0]):
        image[0:5, 5 * i : 5 * i + 5] = value
    return image


def patch(i: int, j: int = 0) -> Rectangle:
    """The 3 x 3 pixels in the middle of patch (i, j)."""
    return Rectangle(((5 * i + 1.0, 5 * j + 1.0), (5 * i + 3.0, 5 * j + 3.0)))


def reading(*extra: Roi, exclude: dict[str, str] | None = None, csf: Shape | None = None) -> RoiSet:
    exclude = exclude or {}
    rois = [
        Roi(level, "2.25.1", patch(i))
        for i, level in enumerate(["L1", "L2", "L3", "L4"])
        if level not in exclude
    ]
    rois.append(Roi("CSF", "2.25.1", csf or patch(4), "L3"))
    exclusions = tuple(Exclusion(level, reason) for level, reason in exclude.items())
    return RoiSet(SERIES, (*rois, *extra), exclusions)


IMAGES = {"2.25.1": make_image("2.25.1", patchwork())}


def test_score_from_constant_patches() -> None:
    result = measure_vbq(reading(), IMAGES)
    # Levels 100, 200, 300, 1000: the median of four is the mean of the middle two.
    assert result["numerator"] == 250.0
    assert result["csf"] == {
        "si": 50.0,
        "level": "L3",
        "n_pixels": 9,
        "mean": 50.0,
        "median": 50.0,
        "sd": 0.0,
        "area_mm2": 2.25,
    }
    assert result["vbq"] == 5.0
    assert result["levels"]["L4"] == {
        "si": 1000.0,
        "n_pixels": 9,
        "mean": 1000.0,
        "median": 1000.0,
        "sd": 0.0,
        "area_mm2": 2.25,
    }
    assert result["method"] == {
        "roi_statistic": "median",
        "level_aggregate": "median",
        "min_levels": 3,
    }
    assert "reason" not in result
    assert list(result) == ["vbq", "numerator", "csf", "levels", "method"]
    assert list(result["levels"]) == ["L1", "L2", "L3", "L4"]


def test_mean_aggregate() -> None:
    result = measure_vbq(reading(), IMAGES, level_aggregate="mean")
    assert result["numerator"] == 400.0
    assert result["vbq"] == 8.0
    assert result["method"]["level_aggregate"] == "mean"


def test_median_of_three_levels_after_an_exclusion() -> None:
    result = measure_vbq(reading(exclude={"L4": "fracture"}), IMAGES)
    assert result["levels"]["L4"] == {"excluded": True, "reason": "fracture"}
    assert result["numerator"] == 200.0
    assert result["vbq"] == 4.0


def test_hand_computed_statistics_of_a_3x3_rectangle() -> None:
    pixels = np.zeros((10, 10))
    pixels[2:5, 3:6] = [[1, 2, 3], [4, 5, 6], [7, 8, 90]]
    image = {"2.25.1": make_image("2.25.1", pixels, spacing=(0.8, 0.5))}
    pixels[8, 8] = 10.0
    roi_set = RoiSet(
        SERIES,
        (
            *(Roi(level, "2.25.1", Rectangle(((3.0, 2.0), (5.0, 4.0)))) for level in
              ("L1", "L2", "L3", "L4")),
            Roi("CSF", "2.25.1", Rectangle(((3.0, 2.0), (5.0, 4.0))), "L3"),
        ),
    )  # fmt: skip
    result = measure_vbq(roi_set, image)
    level = result["levels"]["L1"]
    values = [1, 2, 3, 4, 5, 6, 7, 8, 90]
    assert level["n_pixels"] == 9
    assert level["median"] == 5.0
    assert level["si"] == 5.0
    assert level["mean"] == pytest.approx(14.0)
    assert level["sd"] == pytest.approx(math.sqrt(sum((v - 14.0) ** 2 for v in values) / 9))
    assert level["area_mm2"] == pytest.approx(9 * 0.4)
    mean_result = measure_vbq(roi_set, image, roi_statistic="mean")
    assert mean_result["levels"]["L1"]["si"] == pytest.approx(14.0)
    assert mean_result["levels"]["L1"]["median"] == 5.0
    assert mean_result["csf"]["si"] == pytest.approx(14.0)
    assert mean_result["vbq"] == pytest.approx(1.0)


def test_several_slices_pool_their_pixels() -> None:
    slice_a = np.full((12, 12), 10.0)
    slice_b = np.full((12, 12), 20.0)
    images = {
        "2.25.1": make_image("2.25.1", slice_a, spacing=(0.5, 0.5)),
        "2.25.2": make_image("2.25.2", slice_b, spacing=(1.0, 1.0)),
    }
    l1 = (
        Roi("L1", "2.25.1", Rectangle(((1.0, 1.0), (2.0, 2.0)))),  # 4 pixels of 10
        Roi("L1", "2.25.2", Rectangle(((1.0, 1.0), (2.0, 1.0 + 0.5)))),  # 2 pixels of 20
    )
    others = tuple(
        Roi(level, "2.25.1", Rectangle(((5.0, 5.0), (6.0, 6.0)))) for level in ("L2", "L3", "L4")
    )
    csf = Roi("CSF", "2.25.2", Rectangle(((5.0, 5.0), (6.0, 6.0))), "L2")
    result = measure_vbq(RoiSet(SERIES, (*l1, *others, csf)), images)
    level = result["levels"]["L1"]
    assert level["n_pixels"] == 6
    assert level["median"] == 10.0  # [10, 10, 10, 10, 20, 20]
    assert level["mean"] == pytest.approx(40 / 3)
    assert level["sd"] == pytest.approx(float(np.std([10, 10, 10, 10, 20, 20])))
    assert level["area_mm2"] == pytest.approx(4 * 0.25 + 2 * 1.0)
    assert result["csf"]["level"] == "L2"
    assert result["csf"]["si"] == 20.0


def test_overlapping_rois_on_one_slice_count_each_pixel_once() -> None:
    twice = Roi("L1", "2.25.1", patch(0))
    wider = Roi("L1", "2.25.1", Rectangle(((1.0, 1.0), (4.0, 3.0))))  # 3 more pixels
    result = measure_vbq(reading(twice, wider), IMAGES)
    assert result["levels"]["L1"]["n_pixels"] == 12
    assert result["levels"]["L1"]["area_mm2"] == pytest.approx(3.0)


def test_rescaled_pixel_values_are_used_as_given() -> None:
    # SliceImage holds values after the Modality LUT; measure_vbq must not rescale again.
    images = {"2.25.1": make_image("2.25.1", patchwork() * 2.5 - 1.0)}
    result = measure_vbq(reading(), images)
    assert result["csf"]["si"] == 124.0
    assert result["numerator"] == 624.0


def test_below_min_levels_the_score_is_not_computed() -> None:
    roi_set = reading(exclude={"L3": "hemangioma", "L4": "instrumentation"})
    result = measure_vbq(roi_set, IMAGES)
    assert result["vbq"] is None
    assert result["numerator"] is None
    assert "only 2 level(s) measured (L1, L2)" in result["reason"]
    assert "at least 3" in result["reason"]
    assert result["levels"]["L3"] == {"excluded": True, "reason": "hemangioma"}
    assert result["csf"]["si"] == 50.0
    assert list(result) == ["vbq", "numerator", "reason", "csf", "levels", "method"]
    lowered = measure_vbq(roi_set, IMAGES, min_levels=2)
    assert lowered["numerator"] == 150.0
    assert "reason" not in lowered


def test_all_levels_excluded() -> None:
    exclude = {"L1": "fracture", "L2": "fracture", "L3": "modic", "L4": "other"}
    result = measure_vbq(reading(exclude=exclude), IMAGES, min_levels=1)
    assert result["vbq"] is None
    assert "only 0 level(s) measured (none)" in result["reason"]


def test_min_levels_four_needs_every_level() -> None:
    assert measure_vbq(reading(), IMAGES, min_levels=4)["vbq"] == 5.0
    assert measure_vbq(reading(exclude={"L1": "other"}), IMAGES, min_levels=4)["vbq"] is None


def test_result_is_plain_json() -> None:
    result = measure_vbq(reading(exclude={"L2": "modic"}), IMAGES, roi_statistic="mean")
    again = json.loads(json.dumps(result, allow_nan=False))
    assert again == result
    for value in (result["vbq"], result["numerator"], result["csf"]["sd"]):
        assert type(value) is float
    assert type(result["csf"]["n_pixels"]) is int


def test_input_from_json_gives_the_same_result() -> None:
    roi_set = reading()
    assert measure_vbq(parse_roi_set(roi_set.to_json()), IMAGES) == measure_vbq(roi_set, IMAGES)


def test_algorithm_version_is_exported() -> None:
    assert ALGORITHM_VERSION == "1"


# --- measure_vbq: errors -------------------------------------------------------------------


@pytest.mark.parametrize(("patch_index", "value"), [(6, "0"), (5, "-10")])
def test_csf_si_not_positive_is_an_error(patch_index: int, value: str) -> None:
    with pytest.raises(
        MeasurementError, match=rf"rois\[4\] \(CSF\): the CSF SI \(median\) is {value}"
    ):
        measure_vbq(reading(csf=patch(patch_index)), IMAGES)


def test_empty_roi_is_named() -> None:
    roi_set = reading(Roi("L2", "2.25.1", Ellipse((12.5, 2.5), (0.2, 0.2))))
    with pytest.raises(MeasurementError, match=r"rois\[5\] \(L2\): the ROI is empty"):
        measure_vbq(roi_set, IMAGES)


def test_roi_leaving_the_image_is_named() -> None:
    roi_set = reading(csf=Ellipse((38.0, 20.0), (3.0, 3.0)))
    with pytest.raises(MeasurementError, match=r"rois\[4\] \(CSF\): the ROI leaves the image"):
        measure_vbq(roi_set, IMAGES)


def test_unknown_instance_is_named() -> None:
    roi_set = reading(Roi("L3", "2.25.999", patch(2)))
    with pytest.raises(
        MeasurementError, match=r"rois\[5\] \(L3\): instance 2\.25\.999 is not among"
    ):
        measure_vbq(roi_set, IMAGES)


def test_instance_of_another_series_is_an_error() -> None:
    images = {"2.25.1": make_image("2.25.1", patchwork(), series="2.25.555")}
    with pytest.raises(
        MeasurementError, match=r"belongs to series 2\.25\.555, not to the ROI set's"
    ):
        measure_vbq(reading(), images)


def test_file_indices_are_used_in_messages() -> None:
    data = reading().to_json()
    data["rois"].insert(0, {"label": "L4", "excluded": True, "reason": "other"})
    data["rois"] = [item for item in data["rois"] if item["label"] != "L4" or "excluded" in item]
    data["rois"][2]["sop_instance_uid"] = "2.25.404"  # L2, third in the file
    with pytest.raises(MeasurementError, match=r"^rois\[2\] \(L2\): instance 2\.25\.404"):
        measure_vbq(parse_roi_set(data), IMAGES)


def test_missing_levels_are_named() -> None:
    rois = tuple(roi for roi in reading().rois if roi.label not in ("L2", "L4"))
    with pytest.raises(MeasurementError, match=r"^L2, L4: neither an ROI nor an exclusion"):
        measure_vbq(RoiSet(SERIES, rois), IMAGES)


def test_missing_csf_is_an_error() -> None:
    rois = tuple(roi for roi in reading().rois if roi.label != "CSF")
    with pytest.raises(MeasurementError, match="no CSF ROI"):
        measure_vbq(RoiSet(SERIES, rois), IMAGES)


@pytest.mark.parametrize(
    "options",
    [
        {"roi_statistic": "mode"},
        {"level_aggregate": "max"},
        {"min_levels": 0},
        {"min_levels": 5},
        {"min_levels": True},
        {"min_levels": 2.0},
    ],
)
def test_invalid_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        measure_vbq(reading(), IMAGES, **options)


def test_roi_mask_type() -> None:
    assert isinstance(roi_mask(patch(0), ROWS, COLUMNS), RoiMask)
