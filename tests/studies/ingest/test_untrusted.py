"""Safe reading of untrusted uploads: hostile zips and folders, corrupt and forged DICOM.

Each hostile input must be rejected with a short reason, quickly, and without allocating what it
claims. The real hostile and compressed files from ``../shared/data`` run in a subprocess that
reports its peak memory.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    MRImageStorage,
    SecondaryCaptureImageStorage,
)

from studies.ingest.deid_engine import DeidConfig, deidentify_dataset
from studies.ingest.sources import IngestError, IngestLimits, Source, iter_sources
from studies.ingest.untrusted import read_untrusted, read_untrusted_bytes
from tests.helpers.paths import REPO

DATA = REPO / ".." / "shared" / "data"


def mr_bytes(rows: int = 8, columns: int = 8, *, uid: str = "1.2.3.4.5", **attrs: object) -> bytes:
    """A valid little MR image as Part 10 bytes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = "1.2.3.1"
    ds.SeriesInstanceUID = "1.2.3.2"
    ds.Modality = "MR"
    ds.PatientName = "Test^Patient"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(rows * columns, dtype=np.uint16).tobytes()
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def reason_of(data: bytes, limits: IngestLimits | None = None) -> str | None:
    result = read_untrusted_bytes(data, limits or IngestLimits())
    assert (result.dataset is None) == (result.reason is not None)
    return result.reason


# --- single files ----------------------------------------------------------------------------


def test_valid_file_is_read() -> None:
    result = read_untrusted_bytes(mr_bytes())
    assert result.reason is None
    assert result.dataset is not None
    assert result.dataset.SOPInstanceUID == "1.2.3.4.5"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"hello world, not an image at all" * 10, "not a DICOM file"),
        (b"%PDF-1.4\n" + b"0" * 300, "PDF"),
        (b"PK\x03\x04" + b"\x00" * 200, "nested archives"),
        (b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI", "file meta"),
    ],
)
def test_non_dicom_rejected(data: bytes, expected: str) -> None:
    reason = reason_of(data)
    assert reason is not None
    assert expected in reason


def test_truncated_inside_pixel_data() -> None:
    data = mr_bytes(64, 64)
    reason = reason_of(data[:-1000])
    assert reason is not None
    assert "truncated" in reason


def test_truncated_inside_header() -> None:
    data = mr_bytes()
    cut = data.index(b"Test^Patient") + 4
    reason = reason_of(data[:cut])
    assert reason is not None


def test_no_pixel_data() -> None:
    ds = pydicom.dcmread(io.BytesIO(mr_bytes()))
    del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert reason_of(buffer.getvalue()) == "no pixel data"


def test_missing_pixel_attribute() -> None:
    ds = pydicom.dcmread(io.BytesIO(mr_bytes()))
    del ds.PixelRepresentation
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    reason = reason_of(buffer.getvalue())
    assert reason is not None
    assert "PixelRepresentation" in reason


def test_forged_dimensions_refused_from_the_header() -> None:
    data = mr_bytes(8, 8)
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.Rows = ds.Columns = 46341
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    start = time.perf_counter()
    reason = reason_of(buffer.getvalue())
    assert time.perf_counter() - start < 1.0
    assert reason is not None
    assert "46341 x 46341" in reason
    assert "limit" in reason


def test_preamble_less_part10_read_with_required_uids() -> None:
    data = mr_bytes()
    stripped = data[132:]  # file meta first, no preamble, no DICM
    result = read_untrusted_bytes(stripped)
    assert result.dataset is not None, result.reason
    # The same without SOP Instance UID: force-read files must carry the UIDs.
    ds = pydicom.dcmread(io.BytesIO(data))
    del ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    reason = reason_of(buffer.getvalue()[132:])
    assert reason is not None
    assert "SOP Instance UID" in reason


def test_raw_dataset_without_meta_rejected() -> None:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = pydicom.dcmread(io.BytesIO(mr_bytes()))
    del ds.file_meta
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)
    raw = buffer.getvalue()
    assert raw[:2] == b"\x08\x00"
    assert b"DICM" not in raw[:200]
    reason = reason_of(raw)
    assert reason is not None
    assert "transfer syntax" in reason


def test_deeply_nested_sequences() -> None:
    ds = pydicom.dcmread(io.BytesIO(mr_bytes()))
    inner = Dataset()
    inner.CodeValue = "1"
    for _ in range(30):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    ds.ContentSequence = Sequence([inner])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    reason = reason_of(buffer.getvalue())
    assert reason is not None
    assert "nested" in reason


def test_deflate_bomb_refused_before_pydicom_inflates() -> None:
    ds = pydicom.dcmread(io.BytesIO(mr_bytes(256, 256)))
    ds.PixelData = bytes(256 * 256 * 2)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    assert len(data) < 5000  # 128 kB of zeros deflate to almost nothing
    reason = reason_of(data, IngestLimits(max_file_bytes=64 * 1024))
    assert reason is not None
    assert "inflates" in reason
    assert reason_of(data) is None


def test_undecodable_compressed_pixels_named_by_transfer_syntax() -> None:
    ds = pydicom.dcmread(io.BytesIO(mr_bytes()))
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xdb garbage, not a JPEG \xff\xd9"])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    reason = reason_of(buffer.getvalue())
    assert reason is not None
    assert "1.2.840.10008.1.2.4.50" in reason


def test_secondary_capture_policy() -> None:
    sc_mr = mr_bytes(SOPClassUID=SecondaryCaptureImageStorage)
    result = read_untrusted_bytes(sc_mr)
    assert result.dataset is not None  # an MR screen capture is read ...
    deid = deidentify_dataset(result.dataset, config=DeidConfig(secret=b"secret-secret"))
    assert deid.quarantine_reason is not None  # ... and quarantined
    reason = reason_of(mr_bytes(SOPClassUID=SecondaryCaptureImageStorage, Modality="OT"))
    assert reason is not None
    assert "MR images only" in reason


def test_colour_and_non_image_sop_classes() -> None:
    reason = reason_of(mr_bytes(SOPClassUID="1.2.840.10008.5.1.4.1.1.104.1"))
    assert reason is not None
    assert "not an image" in reason
    reason = reason_of(mr_bytes(SOPClassUID="1.2.840.10008.5.1.4.1.1.2"))
    assert reason is not None
    assert "not an MR image" in reason
    reason = reason_of(mr_bytes(SOPClassUID="1.2.3.999"))
    assert reason is not None
    assert "unknown SOP class" in reason


# --- zips ----------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes], comment: bytes = b"") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.comment = comment
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _results(path: Path, limits: IngestLimits | None = None) -> dict[str, str | None]:
    limits = limits or IngestLimits()
    return {s.name: read_untrusted(s, limits).reason for s in iter_sources(path, limits)}


def test_zip_members_read_and_names_are_only_reported(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "a.zip",
        {"case/one.dcm": mr_bytes(uid="1.2.3.1.1"), "case/two.dcm": mr_bytes(uid="1.2.3.1.2")},
    )
    assert _results(archive) == {"case/one.dcm": None, "case/two.dcm": None}


def _mark_encrypted(archive: Path, name: str) -> None:
    """Set the "encrypted" flag of one member in its local header and central directory."""
    raw = bytearray(archive.read_bytes())
    at = raw.index(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack("<H", raw[at + 28 : at + 30])[0]
        if raw[at + 46 : at + 46 + length] == name.encode():
            raw[at + 8] |= 0x1
            local = struct.unpack("<I", raw[at + 42 : at + 46])[0]
            raw[local + 6] |= 0x1
            break
        at = raw.find(b"PK\x01\x02", at + 4)
    archive.write_bytes(bytes(raw))


def test_zip_hostile_members(tmp_path: Path) -> None:
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("../escape.dcm", mr_bytes())
        zf.writestr("/etc/absolute.dcm", mr_bytes())
        zf.writestr("C:/windows.dcm", mr_bytes())
        link = zipfile.ZipInfo("link.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("locked.dcm", mr_bytes())
        zf.writestr("inner.zip", (tmp_path / "x").name.encode())
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as nested:
            nested.writestr("deep.dcm", mr_bytes())
        zf.writestr("disguised.bin", inner.getvalue())
        zf.writestr("__MACOSX/._litter.dcm", b"junk")
        zf.writestr("good.dcm", mr_bytes())
    _mark_encrypted(archive, "locked.dcm")
    results = _results(archive)
    assert "__MACOSX/._litter.dcm" not in results
    assert results["good.dcm"] is None
    assert "unsafe path" in str(results["../escape.dcm"])
    assert "unsafe path" in str(results["/etc/absolute.dcm"])
    assert "unsafe path" in str(results["C:/windows.dcm"])
    assert "symbolic link" in str(results["link.dcm"])
    assert "encrypted" in str(results["locked.dcm"])
    assert "nested" in str(results["inner.zip"])
    assert "nested" in str(results["disguised.bin"])
    assert not (tmp_path / "escape.dcm").exists()
    assert not (tmp_path.parent / "escape.dcm").exists()


def test_zip_bomb_rejected_by_ratio_without_extraction(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb.dcm", "w", force_zip64=True) as member:
            for _ in range(200):  # 200 MB of zeros, streamed: never in memory at once
                member.write(zeros)
        zf.writestr("ok.dcm", mr_bytes())
    assert archive.stat().st_size < 1 << 20
    start = time.perf_counter()
    results = _results(archive)
    assert time.perf_counter() - start < 5
    assert "ratio" in str(results["bomb.dcm"])
    assert results["ok.dcm"] is None
    # And the archive total: refused before anything is extracted.
    with pytest.raises(IngestError, match="declares"):
        list(iter_sources(archive, IngestLimits(max_total_bytes=100 << 20)))


def test_zip_member_that_lies_about_its_size(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "liar.zip", {"liar.dcm": bytes(300_000) + mr_bytes()})
    raw = bytearray(archive.read_bytes())
    real = 300_000 + len(mr_bytes())
    lie = struct.pack("<I", 1000)
    # Patch the uncompressed size in the local header (offset 22) and the central directory
    # (offset 24 from its signature).
    assert struct.unpack("<I", raw[22:26])[0] == real
    raw[22:26] = lie
    central = raw.index(b"PK\x01\x02")
    assert struct.unpack("<I", raw[central + 24 : central + 28])[0] == real
    raw[central + 24 : central + 28] = lie
    archive.write_bytes(bytes(raw))
    results = _results(archive)
    assert "header" in str(results["liar.dcm"])


def test_zip_member_over_the_file_cap_while_streaming(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "big.zip", {"big.dcm": os.urandom(300_000)})
    results = _results(archive, IngestLimits(max_file_bytes=100_000))
    assert "limit" in str(results["big.dcm"])


def test_zip_archive_level_refusals(tmp_path: Path) -> None:
    empty = _zip(tmp_path / "empty.zip", {})
    with pytest.raises(IngestError, match="empty"):
        list(iter_sources(empty))
    many = _zip(tmp_path / "many.zip", {f"f{i}.dcm": b"x" for i in range(11)})
    with pytest.raises(IngestError, match="more than the limit"):
        next(iter_sources(many, IngestLimits(max_files=10)))
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04" + os.urandom(100))
    with pytest.raises(IngestError, match="zip"):
        list(iter_sources(junk))


def test_zip_comment_and_names_never_reach_the_dataset(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "c.zip", {"DOE_JOHN/x.dcm": mr_bytes()}, comment=b"ZIPCOMMENT-PHI")
    sources = iter_sources(archive)
    result = read_untrusted(next(sources))
    assert result.dataset is not None
    late = list(iter_sources(archive))  # the archive is closed once the listing ends
    assert "closed" in str(read_untrusted(late[0]).reason)
    buffer = io.BytesIO()
    result.dataset.save_as(buffer)
    assert b"ZIPCOMMENT" not in buffer.getvalue()
    assert b"DOE_JOHN" not in buffer.getvalue()


# --- folders ---------------------------------------------------------------------------------


def test_folder_symlinks_and_special_files(tmp_path: Path) -> None:
    root = tmp_path / "upload"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.dcm").write_bytes(mr_bytes())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.dcm").write_bytes(mr_bytes(uid="1.2.9"))
    (root / "link.dcm").symlink_to(outside / "secret.dcm")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "pipe.dcm")
    (root / ".DS_Store").write_bytes(b"junk")
    start = time.perf_counter()
    results = _results(root)
    assert time.perf_counter() - start < 5  # the FIFO is never opened for reading
    assert results["sub/a.dcm"] is None
    assert "symbolic link" in str(results["link.dcm"])
    assert "symbolic link" in str(results["linkdir"])
    assert "regular file" in str(results["pipe.dcm"])
    assert ".DS_Store" not in results
    assert "secret.dcm" not in " ".join(results)


def test_folder_limits(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="empty"):
        list(iter_sources(tmp_path))
    for i in range(4):
        (tmp_path / f"{i}.dcm").write_bytes(b"x")
    with pytest.raises(IngestError, match="more than 3"):
        list(iter_sources(tmp_path, IngestLimits(max_files=3)))
    with pytest.raises(IngestError, match="no such"):
        list(iter_sources(tmp_path / "missing"))


def test_source_without_opener_reports_reason() -> None:
    result = read_untrusted(Source("x", 0, "symbolic link: not followed"))
    assert result.reason == "symbolic link: not followed"


# --- the real files, in a subprocess that reports its peak memory -----------------------------

_PROBE = """
import json, sys, time
from studies.ingest.sources import iter_sources
from studies.ingest.untrusted import read_untrusted
out = []
for folder in sys.argv[1:]:
    for source in iter_sources(folder):
        start = time.perf_counter()
        result = read_untrusted(source)
        out.append({"folder": folder, "name": source.name, "ok": result.dataset is not None,
                    "reason": result.reason, "seconds": time.perf_counter() - start})
# VmHWM is this process's own peak: getrusage's ru_maxrss would also carry the peak of the
# (large) pytest process it was forked from, since Linux keeps it across execve.
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
rss_mb = int(hwm.split()[1]) / 1024
print(json.dumps({"results": out, "rss_mb": rss_mb}))
"""


def _probe(*folders: str) -> dict[str, object]:
    paths = []
    for folder in folders:
        path = DATA / folder
        if not path.is_dir():
            pytest.skip(f"shared test data not found at {path} (see ../shared/data/README.md)")
        paths.append(str(path))
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, *paths],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def test_hostile_files_each_rejected_quickly_without_allocating() -> None:
    report = _probe("hostile")
    results = report["results"]
    assert isinstance(results, list)
    assert len(results) >= 16
    for item in results:
        assert not item["ok"], f"{item['name']} was accepted"
        assert item["reason"], item
        assert len(item["reason"]) < 200, item
        assert item["seconds"] < 10, item
    by_name = {item["name"]: item["reason"] for item in results}
    assert "46341 x 46341" in by_name["2026-05-26-oob-monochrome-46341.dcm"]
    assert "65535 x 65535" in by_name["2026-05-26-oob-monochrome-65535.dcm"]
    assert "nested" in by_name["2026-05-06-Deeply-Nested-Sequence.dcm"]
    assert "PDF" in by_name["HelloWorld.pdf"]
    assert report["rss_mb"] < 400  # a decoded 46341^2 image alone would be 4 GB


def test_compressed_files_decoded_or_rejected_with_reason() -> None:
    report = _probe("compressed")
    results = report["results"]
    assert isinstance(results, list)
    accepted = [r for r in results if r["ok"]]
    assert len(accepted) >= 6  # the MR files in JPEG lossless, JPEG-LS, JPEG 2000, RLE, native
    for item in results:
        assert item["ok"] or item["reason"], item
    by_name = {item["name"]: item for item in results}
    extended = by_name["1.2.840.10008.1.2.4.51.dcm"]
    assert not extended["ok"]
    assert "1.2.840.10008.1.2.4.51" in extended["reason"]
    assert by_name["JPEG2000Lossless__MR2_J2KR.dcm"]["ok"]
    assert by_name["RLELossless__emri_small_RLE.dcm"]["ok"]
    assert "transfer syntax" in by_name["1.2.840.10008.1.2.dcm"]["reason"]
    assert report["rss_mb"] < 400


def test_accepted_compressed_files_really_decode() -> None:
    folder = DATA / "compressed"
    if not folder.is_dir():
        pytest.skip(f"shared test data not found at {folder}")
    for name in (
        "JPEGLSLossless__emri_small_jpeg_ls_lossless.dcm",
        "RLELossless__emri_small_RLE.dcm",
    ):
        result = read_untrusted(next(iter_sources(folder / name)))
        assert result.dataset is not None
        assert result.dataset.pixel_array.shape == (10, 64, 64)


def test_zlib_available_for_deflate() -> None:
    assert zlib.decompress(zlib.compress(b"x")) == b"x"
