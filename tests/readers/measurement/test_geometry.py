"""ImageGeometry: spec §2's image <-> world mapping, in DICOM's PixelSpacing order."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readers.measurement.geometry import ImageGeometry, from_cornerstone, to_cornerstone

# The machine is shared: a slow moment must not fail a property test.
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def sagittal(**overrides: object) -> ImageGeometry:
    values: dict[str, object] = {
        "rows": 320,
        "columns": 256,
        "pixel_spacing": (0.8, 0.5),  # rows 0.8 mm apart, columns 0.5 mm apart
        "image_position": (10.0, -100.0, 50.0),
        "image_orientation": SAGITTAL,
    }
    values.update(overrides)
    return ImageGeometry(**values)  # type: ignore[arg-type]


def test_first_pixel_centre_is_the_image_position() -> None:
    assert sagittal().image_to_world(0, 0) == (10.0, -100.0, 50.0)


def test_x_uses_the_column_spacing_and_y_the_row_spacing() -> None:
    g = sagittal()
    # x (column) moves along IOP[0:3] = +Y by PixelSpacing[1] = 0.5 mm per pixel.
    assert g.image_to_world(2, 0) == pytest.approx((10.0, -99.0, 50.0))
    # y (row) moves along IOP[3:6] = -Z by PixelSpacing[0] = 0.8 mm per pixel.
    assert g.image_to_world(0, 5) == pytest.approx((10.0, -100.0, 46.0))
    assert g.image_to_world(2, 5) == pytest.approx((10.0, -99.0, 46.0))


def test_world_to_image_inverts_and_projects() -> None:
    g = sagittal()
    assert g.world_to_image((10.0, -99.0, 46.0)) == pytest.approx((2.0, 5.0))
    # A point 3 mm off the plane projects onto it; its distance is along the normal.
    assert g.world_to_image((13.0, -99.0, 46.0)) == pytest.approx((2.0, 5.0))
    assert g.distance_from_plane((13.0, -99.0, 46.0)) == pytest.approx(-3.0)


def test_normal_is_row_cross_column() -> None:
    assert sagittal().normal == pytest.approx((-1.0, 0.0, 0.0))
    axial = sagittal(image_orientation=(1, 0, 0, 0, 1, 0))
    assert axial.normal == pytest.approx((0.0, 0.0, 1.0))


def test_pixel_area() -> None:
    assert sagittal().pixel_area_mm2 == pytest.approx(0.4)


def test_values_are_normalised_to_float_tuples() -> None:
    g = ImageGeometry(4, 5, [1, 2], [0, 0, 0], [1, 0, 0, 0, 1, 0])  # type: ignore[arg-type]
    assert g.pixel_spacing == (1.0, 2.0)
    assert isinstance(g.image_orientation, tuple)
    assert g == ImageGeometry(4, 5, (1.0, 2.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rows": 0}, "empty"),
        ({"pixel_spacing": (0.0, 0.5)}, "positive"),
        ({"pixel_spacing": (0.5,)}, "2 values"),
        ({"pixel_spacing": (math.nan, 0.5)}, "finite"),
        ({"image_position": (0.0, 0.0)}, "3 values"),
        ({"image_orientation": (0, 2, 0, 0, 0, -1)}, "unit vector"),
        ({"image_orientation": (0, 1, 0, 0, 1, 0)}, "orthogonal"),
        ({"image_orientation": (0, 0, 0, 0, 0, -1)}, "unit vector"),
    ],
)
def test_invalid_geometry_is_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sagittal(**overrides)


def test_rounded_direction_cosines_are_accepted() -> None:
    g = sagittal(image_orientation=(0.0, 0.99999, 0.004, 0.0, 0.004, -0.99999))
    assert g.normal[0] == pytest.approx(-1.0, abs=1e-4)


def test_cornerstone_half_pixel_shift() -> None:
    # Cornerstone3D's first pixel centre is (0.5, 0.5); ours is (0, 0).
    assert from_cornerstone(0.5, 0.5) == (0.0, 0.0)
    assert to_cornerstone(0.0, 0.0) == (0.5, 0.5)


coordinate = st.floats(-1000, 1000, allow_nan=False)
unit_angle = st.floats(0, 2 * math.pi)


@RELAXED
@given(x=coordinate, y=coordinate, a=unit_angle, b=unit_angle, c=unit_angle)
def test_world_round_trip_for_any_orientation(
    x: float, y: float, a: float, b: float, c: float
) -> None:
    # An arbitrary orthonormal pair from three rotation angles.
    row = (math.cos(a) * math.cos(b), math.sin(a) * math.cos(b), math.sin(b))
    helper = (-math.sin(a), math.cos(a), 0.0)
    up = (
        -math.cos(a) * math.sin(b),
        -math.sin(a) * math.sin(b),
        math.cos(b),
    )
    col = tuple(math.cos(c) * h + math.sin(c) * u for h, u in zip(helper, up, strict=True))
    g = ImageGeometry(100, 100, (0.7, 1.3), (5.0, -3.0, 12.0), (*row, *col))  # type: ignore[arg-type]
    world = g.image_to_world(x, y)
    assert g.world_to_image(world) == pytest.approx((x, y), abs=1e-6)
    assert g.distance_from_plane(world) == pytest.approx(0.0, abs=1e-6)
