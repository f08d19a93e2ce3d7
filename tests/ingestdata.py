"""Test inputs for the ingest: phantom case sets, wrong-series variants and hostile uploads.

The wrong-series variants (``--wrong-series`` in the issue) are built here from phantom
datasets rather than in ``studies/phantom.py``: an axial T2 series (axial IOP, TR 3000 ms,
TE 90 ms) and a post-contrast T1 series (Contrast/Bolus Agent set). Each gets its own series
and SOP Instance UIDs so that it joins the phantom case as a second series.
"""

from __future__ import annotations

import copy
import io
import stat
import zipfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from studies.phantom import make_case

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def dicom_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@lru_cache(maxsize=8)
def phantom_case_bytes(seed: int, index: int) -> tuple[bytes, ...]:
    """One phantom case's files (cached: generation costs a quarter second per case)."""
    return tuple(dicom_bytes(ds) for ds in make_case(seed, index).datasets)


def wrong_series(seed: int, index: int, kind: str) -> list[bytes]:
    """A second series for phantom case ``index``: ``"axial-t2"`` or ``"post-contrast"``."""
    datasets = [copy.deepcopy(ds) for ds in make_case(seed, index).datasets]
    series_uid = generate_uid(entropy_srcs=[str(seed), str(index), kind])
    out = []
    for k, ds in enumerate(datasets):
        ds.SeriesInstanceUID = series_uid
        sop = generate_uid(entropy_srcs=[str(seed), str(index), kind, str(k)])
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SeriesNumber = "7"
        if kind == "axial-t2":
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [0.0, 0.0, float(4 * k)]
            ds.RepetitionTime = "3000"
            ds.EchoTime = "90"
            ds.SeriesDescription = "AX T2"
        elif kind == "post-contrast":
            ds.ContrastBolusAgent = "Gadobutrol"
            ds.SeriesDescription = "SAG T1"
        else:
            raise ValueError(kind)
        out.append(dicom_bytes(ds))
    return out


def write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``{relative name: bytes}`` under ``folder``; return the paths in name order."""
    paths = []
    for name, data in sorted(files.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def zip_bytes(
    members: Iterable[tuple[str, bytes]], *, comment: bytes = b"", symlinks: Iterable[str] = ()
) -> bytes:
    """A zip of ``(name, bytes)`` members, plus symbolic-link members pointing at /etc/passwd."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.comment = comment
        for name, data in members:
            archive.writestr(name, data)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def bomb_zip_bytes(*, members: int = 1, size: int = 200 << 20) -> bytes:
    """A zip whose member inflates at a ratio far above the limit (nothing is ever inflated)."""
    buffer = io.BytesIO()
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for m in range(members):
            with archive.open(f"bomb-{m}.dcm", "w", force_zip64=True) as member:
                for _ in range(size >> 20):
                    member.write(zeros)
    return buffer.getvalue()


def many_entries_zip_bytes(entries: int) -> bytes:
    """A zip of ``entries`` empty members (for the entry-count limit)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(entries):
            archive.writestr(f"e{i}", b"")
    return buffer.getvalue()


def no_pixel_data_bytes(seed: int = 3) -> bytes:
    ds = copy.deepcopy(make_case(seed, 1).datasets[0])
    del ds.PixelData
    sop = generate_uid(entropy_srcs=["no-pixels"])
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    return dicom_bytes(ds)


def shared_data(folder: str) -> Path | None:
    path = DATA / folder
    return path if path.is_dir() else None
