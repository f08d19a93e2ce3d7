"""Test inputs for the ingest: phantom case sets, wrong-series variants and hostile uploads.

The wrong-series variants (an axial T2 series and a post-contrast T1 series, each with its own
series and SOP Instance UIDs so that it joins the phantom case as a second series) are built by
:func:`studies.phantom.case.wrong_series_datasets`, the same code behind ``make_phantom
--wrong-series``; :func:`wrong_series` only encodes them as file bytes.
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

from studies.phantom.case import make_case, wrong_series_datasets
from tests.helpers.paths import SHARED_DATA

DATA = SHARED_DATA


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
    return [dicom_bytes(ds) for ds in wrong_series_datasets(seed, index, kind)]


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
