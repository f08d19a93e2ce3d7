"""Reading slices: Modality LUT values, geometry, folders, and clear errors for bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import JPEGBaseline8Bit, RLELossless

from readers.measurement import dicomio
from readers.measurement.dicomio import DicomReadError, SliceImage, load_images, read_slice
from readers.measurement.geometry import ImageGeometry
from tests.helpers.dicomfactory import SERIES_UID, mr_dataset, write_mr

PIXELS = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10)


def test_read_slice_from_a_path(tmp_path: Path) -> None:
    path = write_mr(
        tmp_path / "a.dcm",
        PIXELS,
        sop_instance_uid="2.25.7",
        image_position=(1.0, 2.0, 3.0),
        pixel_spacing=(0.8, 0.5),
    )
    image = read_slice(path)
    assert image.sop_instance_uid == "2.25.7"
    assert image.series_instance_uid == SERIES_UID
    assert image.pixels.dtype == np.float64
    np.testing.assert_array_equal(image.pixels, PIXELS)
    assert image.geometry == ImageGeometry(
        12, 10, (0.8, 0.5), (1.0, 2.0, 3.0), (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    )
    assert not image.pixels.flags.writeable


def test_read_slice_from_a_file_object(tmp_path: Path) -> None:
    path = write_mr(tmp_path / "a.dcm", PIXELS)
    with path.open("rb") as handle:
        image = read_slice(handle, name="upload.dcm")
    np.testing.assert_array_equal(image.pixels, PIXELS)
    with pytest.raises(DicomReadError, match=r"^upload\.dcm: not a DICOM file"):
        read_slice(io.BytesIO(b"hello" * 100), name="upload.dcm")


def test_rescale_slope_and_intercept_are_applied(tmp_path: Path) -> None:
    path = write_mr(tmp_path / "a.dcm", PIXELS, rescale_slope=2.5, rescale_intercept=-100)
    np.testing.assert_allclose(read_slice(path).pixels, PIXELS * 2.5 - 100)


def test_a_lone_rescale_slope_uses_intercept_zero(tmp_path: Path) -> None:
    path = write_mr(tmp_path / "a.dcm", PIXELS, rescale_slope=0.5)
    np.testing.assert_allclose(read_slice(path).pixels, PIXELS * 0.5)


def test_signed_pixels(tmp_path: Path) -> None:
    signed = PIXELS.astype(np.int16) - 50
    path = write_mr(tmp_path / "a.dcm", signed, rescale_intercept=1000)
    np.testing.assert_array_equal(read_slice(path).pixels, signed + 1000.0)


def test_rle_compressed_pixels_decode(tmp_path: Path) -> None:
    ds = mr_dataset(PIXELS)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    path = tmp_path / "rle.dcm"
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(read_slice(path).pixels, PIXELS)


def test_undecodable_pixels_name_the_transfer_syntax(tmp_path: Path) -> None:
    ds = mr_dataset(PIXELS)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00" + b"\xfe\xff\x00\xe0\x04\x00\x00\x00junk"
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = tmp_path / "jpeg.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomReadError, match=r"jpeg\.dcm: cannot decode the pixel data \(JPEG"):
        read_slice(path)


@pytest.mark.parametrize(
    ("omit", "message"),
    [
        ("PixelSpacing", "missing PixelSpacing"),
        ("ImagePositionPatient", "missing ImagePositionPatient"),
        ("ImageOrientationPatient", "missing ImageOrientationPatient"),
        ("SOPInstanceUID", "missing SOPInstanceUID"),
        ("PixelData", "no Pixel Data"),
    ],
)
def test_missing_tags_are_named(tmp_path: Path, omit: str, message: str) -> None:
    path = write_mr(tmp_path / "a.dcm", PIXELS, omit=[omit])
    with pytest.raises(DicomReadError, match=rf"a\.dcm: {message}"):
        read_slice(path)


def test_bad_geometry_is_named(tmp_path: Path) -> None:
    path = write_mr(tmp_path / "a.dcm", PIXELS, pixel_spacing=(0.0, 0.5))
    with pytest.raises(DicomReadError, match=r"a\.dcm: invalid geometry: pixel_spacing must be"):
        read_slice(path)


def test_multi_frame_is_not_supported_yet(tmp_path: Path) -> None:
    frames = np.stack([PIXELS, PIXELS])
    ds = mr_dataset(PIXELS)
    ds.NumberOfFrames = 2
    ds.PixelData = frames.astype(np.uint16).tobytes()
    path = tmp_path / "multi.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomReadError, match=r"multi\.dcm: multi-frame .* not supported yet"):
        read_slice(path)
    with pytest.raises(DicomReadError, match="not supported yet"):
        load_images([tmp_path], wanted_uids=[ds.SOPInstanceUID])


def test_colour_is_not_supported(tmp_path: Path) -> None:
    ds = mr_dataset(PIXELS)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = np.zeros((12, 10, 3), dtype=np.uint8).tobytes()
    path = tmp_path / "rgb.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomReadError, match="colour images are not supported"):
        read_slice(path)


def test_truncated_file_is_an_error(tmp_path: Path) -> None:
    path = write_mr(tmp_path / "a.dcm", PIXELS)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DicomReadError, match=r"a\.dcm: "):
        read_slice(path)


def test_slice_image_checks_shape_and_freezes_a_copy() -> None:
    geometry = ImageGeometry(2, 2, (1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0))
    data = np.ones((2, 2))
    image = SliceImage("1", "2", data, geometry)
    assert not image.pixels.flags.writeable
    assert data.flags.writeable  # the caller's array is left alone
    with pytest.raises(ValueError, match="shape"):
        SliceImage("1", "2", np.ones((3, 2)), geometry)


# --- load_images ------------------------------------------------------------------------------


def make_series(folder: Path, n: int = 4) -> list[Path]:
    return [
        write_mr(folder / f"sub{i % 2}" / f"{i}.dcm", PIXELS + i, sop_instance_uid=f"2.25.{i}")
        for i in range(n)
    ]


def test_folders_are_walked_recursively_and_junk_is_skipped(tmp_path: Path) -> None:
    make_series(tmp_path / "case")
    (tmp_path / "case" / "README.txt").write_text("not DICOM")
    (tmp_path / "case" / ".DS_Store").write_bytes(b"\0" * 200)
    images = load_images([tmp_path / "case"])
    assert sorted(images) == ["2.25.0", "2.25.1", "2.25.2", "2.25.3"]
    np.testing.assert_array_equal(images["2.25.3"].pixels, PIXELS + 3)


def test_only_wanted_instances_are_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_series(tmp_path)
    decoded: list[str] = []
    original = dicomio._modality_values

    def spy(ds: object, name: str) -> object:
        decoded.append(name)
        return original(ds, name)  # type: ignore[arg-type]

    monkeypatch.setattr(dicomio, "_modality_values", spy)
    images = load_images([tmp_path], wanted_uids={"2.25.2", "2.25.99"})
    assert list(images) == ["2.25.2"]  # a wanted UID that is absent is simply missing
    assert len(decoded) == 1
    assert decoded[0].endswith("2.dcm")


def test_files_and_folders_can_be_mixed_and_repeated(tmp_path: Path) -> None:
    files = make_series(tmp_path)
    images = load_images([files[0], tmp_path, files[0]])
    assert len(images) == 4


def test_an_explicit_non_dicom_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(DicomReadError, match=r"notes\.txt: not a DICOM file"):
        load_images([path])


def test_a_broken_dicom_file_in_a_folder_is_an_error(tmp_path: Path) -> None:
    make_series(tmp_path)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    with pytest.raises(DicomReadError, match=r"broken\.dcm: "):
        load_images([tmp_path])


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DicomReadError, match=r"nowhere: no such file or folder"):
        load_images([tmp_path / "nowhere"])


def test_duplicate_sop_instance_uids_are_an_error(tmp_path: Path) -> None:
    write_mr(tmp_path / "a.dcm", PIXELS, sop_instance_uid="2.25.5")
    write_mr(tmp_path / "b.dcm", PIXELS, sop_instance_uid="2.25.5")
    with pytest.raises(
        DicomReadError, match=r"b\.dcm: SOP Instance UID 2\.25\.5 is also in .*a\.dcm"
    ):
        load_images([tmp_path])


def test_dicomdir_is_skipped_in_a_folder(tmp_path: Path) -> None:
    make_series(tmp_path, 1)
    # A media directory: the index of a CD export, with no image of its own.
    ds = mr_dataset(PIXELS, omit=["PixelData", "SOPClassUID", "SOPInstanceUID"])
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)
    assert list(load_images([tmp_path])) == ["2.25.0"]
    with pytest.raises(DicomReadError, match="DICOMDIR index, not an image"):
        load_images([tmp_path / "DICOMDIR"])
