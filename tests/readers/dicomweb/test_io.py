"""The DICOMweb wire formats (readers.dicomweb.io), without a server."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.encaps import encapsulate

from readers.dicomweb import io
from tests.helpers.dicomfactory import mr_dataset

JPEG2000 = "1.2.840.10008.1.2.4.90"


def _choose(accept: str, stored: str = io.EXPLICIT_LE, n: int = 1) -> io.FrameRepresentation:
    return io.frame_representation(io.parse_accept(accept), stored_syntax=stored, n_frames=n)


def test_accept_headers_parse_with_quoted_parameters() -> None:
    ranges = io.parse_accept('multipart/related; type="application/dicom"; q=0.9, */*')
    assert ranges[0].media_type == "multipart/related"
    assert ranges[0].params == {"type": "application/dicom", "q": "0.9"}
    assert ranges[1].media_type == "*/*"
    assert io.parse_accept(None)[0].media_type == "*/*"


@pytest.mark.parametrize(
    ("accept", "stored", "expected"),
    [
        ("multipart/related; type=application/octet-stream; transfer-syntax=*", JPEG2000,
         io.FrameRepresentation(True, io.ORIGINAL)),
        (f'multipart/related; type="application/octet-stream"; transfer-syntax={JPEG2000}',
         JPEG2000, io.FrameRepresentation(True, io.ORIGINAL)),
        ("multipart/related; type=application/octet-stream", JPEG2000,
         io.FrameRepresentation(True, io.EXPLICIT_LE)),
        (f"application/octet-stream; transfer-syntax={io.EXPLICIT_LE}", JPEG2000,
         io.FrameRepresentation(False, io.EXPLICIT_LE)),
        ("*/*", JPEG2000, io.FrameRepresentation(True, io.EXPLICIT_LE)),
        ("image/jpeg, application/octet-stream", io.EXPLICIT_LE,
         io.FrameRepresentation(False, io.EXPLICIT_LE)),
    ],
)  # fmt: skip
def test_frame_representation_follows_the_accept_header(accept, stored, expected) -> None:
    assert _choose(accept, stored) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "image/jpeg",
        "multipart/related; type=image/jp2",
        "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50",
    ],
)
def test_unsupported_frame_requests_are_not_acceptable(accept) -> None:
    with pytest.raises(io.NotAcceptable):
        _choose(accept, JPEG2000)


def test_a_single_part_holds_one_frame_only() -> None:
    with pytest.raises(io.NotAcceptable):
        _choose("application/octet-stream", n=2)


def test_native_frames_are_slices_of_pixel_data_or_decoded_values() -> None:
    pixels = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    ds = mr_dataset(pixels)
    (raw,), syntax = io.frames(ds, [1], syntax=io.ORIGINAL)
    assert (raw, syntax) == (ds.PixelData, io.EXPLICIT_LE)
    (decoded,), _ = io.frames(ds, [1], syntax=io.EXPLICIT_LE)
    assert np.array_equal(np.frombuffer(decoded, dtype="<i2").reshape(3, 4), pixels)
    with pytest.raises(io.FrameError, match="frame 2 does not exist"):
        io.frames(ds, [2], syntax=io.ORIGINAL)


def test_encapsulated_frames_are_sent_as_stored() -> None:
    ds = mr_dataset(np.zeros((2, 2)))
    ds.file_meta.TransferSyntaxUID = JPEG2000
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51fake"])
    (frame,), syntax = io.frames(ds, [1], syntax=io.ORIGINAL)
    assert frame == b"\xff\x4f\xff\x51fake"
    assert syntax == JPEG2000


def test_multipart_bodies_frame_each_part() -> None:
    body = io.multipart_body([("a/b", b"one"), ("c/d", b"two\r\n")], "XYZ")
    assert body == (
        b"--XYZ\r\nContent-Type: a/b\r\n\r\none\r\n"
        b"--XYZ\r\nContent-Type: c/d\r\n\r\ntwo\r\n\r\n--XYZ--\r\n"
    )
    assert io.parse_frame_list("1,3") == [1, 3]
    for bad in ("0", "x", ""):
        with pytest.raises(io.FrameError):
            io.parse_frame_list(bad)


def test_instance_json_points_at_the_frames_and_names_the_syntax() -> None:
    ds = mr_dataset(np.zeros((2, 2)), rescale_slope=0.5)
    result = io.instance_json(ds, pixel_data_uri="http://x/frames/1")
    assert result["7FE00010"] == {"vr": "OW", "BulkDataURI": "http://x/frames/1"}
    assert result["00083002"] == {"vr": "UI", "Value": [io.EXPLICIT_LE]}
    assert result["00281053"]["Value"] == [0.5]
    assert list(result) == sorted(result)
