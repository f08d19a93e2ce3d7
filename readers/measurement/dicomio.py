"""Read the DICOM slices that ROIs are drawn on: pixel values after the Modality LUT, and geometry.

Why this module is careful:

- **Speed.** A case folder holds a whole series (often 15-30 sagittal slices) but a reading
  references three or four instances. :func:`load_images` reads every file's header only
  (``stop_before_pixels``) and reads and decodes pixel data only for the wanted instances.
- **Untrusted input.** Files come from uploads and exports. They must be DICOM Part 10 files
  (128-byte preamble and ``DICM``); ``force=True`` is never used, so a random file is rejected
  instead of being parsed into nonsense. Every problem is a :class:`DicomReadError` whose message
  starts with the file's name.
- **Folders.** Inside a folder (walked recursively, in sorted order, hidden files skipped),
  files that are not DICOM Part 10 at all (a README, a ``DICOMDIR``, ``.DS_Store``) are
  skipped, as DICOM viewers do; a file named explicitly must be DICOM. A file that claims to be
  DICOM but is broken is an error wherever it is: skipping it could hide the instance an ROI
  references behind a vague "not found".
- **Pixel values** are the stored values after the Modality LUT: Rescale Slope and Intercept
  where present (a missing one defaults to 1 or 0), or a Modality LUT Sequence. float64.
- **Not supported yet:** multi-frame (including enhanced MR) and colour images; compressed
  transfer syntaxes decode only when a pydicom decoder plug-in for them is installed.

Pure: pydicom and numpy, no Django.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_modality_lut

from readers.measurement.geometry import ImageGeometry

Source = str | os.PathLike[str] | BinaryIO

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"  # a DICOMDIR: an index, not an image


class DicomReadError(ValueError):
    """A file cannot be used as an image; the message starts with the file's name."""


@dataclass(frozen=True, eq=False)
class SliceImage:
    """One decoded slice. ``pixels`` is a read-only float64 ``rows x columns`` array."""

    sop_instance_uid: str
    series_instance_uid: str
    pixels: NDArray[np.float64]
    geometry: ImageGeometry

    def __post_init__(self) -> None:
        pixels = np.asarray(self.pixels, dtype=np.float64)
        expected = (self.geometry.rows, self.geometry.columns)
        if pixels.shape != expected:
            raise ValueError(f"pixels have shape {pixels.shape}, the geometry says {expected}")
        if pixels.flags.writeable:
            pixels = pixels.copy() if pixels is self.pixels else pixels
            pixels.flags.writeable = False
        object.__setattr__(self, "pixels", pixels)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _source_name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(source, "name", "<file>"))


# Values larger than this are left in the file until used: a folder's files are parsed once,
# and only the instances an ROI references ever have their pixel bytes read.
DEFER_SIZE = 4096


def _read_dataset(source: Source, name: str, *, headers_only: bool) -> Dataset:
    """Parse a file; with ``headers_only`` its large values (pixels) stay deferred in the file."""
    try:
        with warnings.catch_warnings():
            # pydicom warns about harmless oddities (odd-length values, UID syntax); readers of
            # the command's output want one clean error line or none.
            warnings.simplefilter("ignore")
            if headers_only:
                return pydicom.dcmread(source, defer_size=DEFER_SIZE)
            return pydicom.dcmread(source)
    except InvalidDicomError:
        raise DicomReadError(
            f"{name}: not a DICOM file (no DICM marker after the 128-byte preamble)"
        ) from None
    except OSError as error:
        raise DicomReadError(f"{name}: cannot read the file ({error.strerror or error})") from None
    except Exception as error:  # pydicom raises many types for a truncated or corrupt file
        raise DicomReadError(
            f"{name}: not a readable DICOM file ({_one_line(error) or type(error).__name__})"
        ) from None


def _uid(ds: Dataset, keyword: str, name: str) -> str:
    value = str(ds.get(keyword, "") or "").strip().rstrip("\0")
    if not value:
        raise DicomReadError(f"{name}: missing {keyword}")
    return value


def _numbers(ds: Dataset, keyword: str, count: int, name: str) -> list[float]:
    value: Any = ds.get(keyword)
    if value is None or value == "":
        raise DicomReadError(f"{name}: missing {keyword}, needed to place the ROIs")
    values = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise DicomReadError(f"{name}: {keyword} is not numeric ({value!r})") from None
    if len(numbers) != count:
        raise DicomReadError(f"{name}: {keyword} has {len(numbers)} values, expected {count}")
    return numbers


def _check_single_frame(ds: Dataset, name: str) -> None:
    frames = ds.get("NumberOfFrames")
    try:
        n_frames = int(frames) if frames not in (None, "") else 1
    except (TypeError, ValueError):
        raise DicomReadError(f"{name}: NumberOfFrames is not a number ({frames!r})") from None
    if n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        raise DicomReadError(
            f"{name}: multi-frame images ({n_frames} frames) are not supported yet; "
            "export the series as single-frame instances"
        )


def _geometry(ds: Dataset, name: str) -> ImageGeometry:
    rows, columns = ds.get("Rows"), ds.get("Columns")
    if not rows or not columns:
        raise DicomReadError(f"{name}: missing Rows or Columns")
    spacing = _numbers(ds, "PixelSpacing", 2, name)
    position = _numbers(ds, "ImagePositionPatient", 3, name)
    orientation = _numbers(ds, "ImageOrientationPatient", 6, name)
    try:
        return ImageGeometry(
            int(rows),
            int(columns),
            (spacing[0], spacing[1]),
            (position[0], position[1], position[2]),
            (
                orientation[0],
                orientation[1],
                orientation[2],
                orientation[3],
                orientation[4],
                orientation[5],
            ),
        )
    except ValueError as error:
        raise DicomReadError(f"{name}: invalid geometry: {error}") from None


def _optional_float(ds: Dataset, keyword: str, default: float, name: str) -> float:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DicomReadError(f"{name}: {keyword} is not a number ({value!r})") from None
    if not np.isfinite(number):
        raise DicomReadError(f"{name}: {keyword} is not finite ({value!r})")
    return number


def _modality_values(ds: Dataset, name: str) -> NDArray[np.float64]:
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise DicomReadError(f"{name}: colour images are not supported")
    if "PixelData" not in ds:
        raise DicomReadError(f"{name}: no Pixel Data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stored = ds.pixel_array
    except Exception as error:  # decoders raise many types: say which syntax failed and why
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", syntax)
        raise DicomReadError(
            f"{name}: cannot decode the pixel data ({syntax_name}): {_one_line(error)}"
        ) from None
    if "ModalityLUTSequence" in ds and ds.ModalityLUTSequence:
        values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    else:
        slope = _optional_float(ds, "RescaleSlope", 1.0, name)
        intercept = _optional_float(ds, "RescaleIntercept", 0.0, name)
        values = stored.astype(np.float64) * slope + intercept
    return values


def _slice_from_dataset(ds: Dataset, name: str) -> SliceImage:
    _check_single_frame(ds, name)
    geometry = _geometry(ds, name)
    pixels = _modality_values(ds, name)
    if pixels.shape != (geometry.rows, geometry.columns):
        raise DicomReadError(
            f"{name}: pixel data has shape {pixels.shape}, Rows x Columns is "
            f"{geometry.rows} x {geometry.columns}"
        )
    pixels.flags.writeable = False
    return SliceImage(
        _uid(ds, "SOPInstanceUID", name),
        _uid(ds, "SeriesInstanceUID", name),
        pixels,
        geometry,
    )


def read_slice(source: Source, *, name: str | None = None) -> SliceImage:
    """Read one single-frame DICOM image from a path or a binary file object.

    ``name`` is used in error messages (default: the path, or the file object's ``name``),
    so that the site can name an upload by what the user called it.
    """
    label = name if name is not None else _source_name(source)
    return _slice_from_dataset(_read_dataset(source, label, headers_only=False), label)


def _is_part10(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return True  # let the reader report the real problem


def _files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[Path, bool]]:
    """Yield ``(file, named_explicitly)`` for every file under ``paths``, once each."""
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found: list[Path] = []
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(folder) / f for f in sorted(files) if not f.startswith("."))
            candidates = [(f, False) for f in found]
        elif path.exists():
            candidates = [(path, True)]
        else:
            raise DicomReadError(f"{os.fspath(raw)}: no such file or folder")
        for file, explicit in candidates:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file, explicit


def load_images(
    paths: Iterable[str | os.PathLike[str]],
    *,
    wanted_uids: Collection[str] | None = None,
) -> dict[str, SliceImage]:
    """Read the images under ``paths`` (files, or folders walked recursively).

    Returns ``{SOP Instance UID: SliceImage}`` for the wanted instances found (all instances when
    ``wanted_uids`` is None); a wanted UID that is not found is simply absent, so that the
    caller can say which ROI needs it. Two files with the same SOP Instance UID are an error.
    """
    wanted = None if wanted_uids is None else frozenset(wanted_uids)
    where: dict[str, Path] = {}
    images: dict[str, SliceImage] = {}
    for file, explicit in _files(paths):
        name = os.fspath(file)
        try:
            header = _read_dataset(file, name, headers_only=True)
        except DicomReadError:
            if explicit or _is_part10(file):
                raise
            continue  # not DICOM at all: folders may hold other files
        sop_class = getattr(getattr(header, "file_meta", None), "MediaStorageSOPClassUID", None)
        if sop_class == MEDIA_STORAGE_DIRECTORY:
            if explicit:
                raise DicomReadError(f"{name}: a DICOMDIR index, not an image; give its folder")
            continue
        uid = _uid(header, "SOPInstanceUID", name)
        if uid in where:
            raise DicomReadError(
                f"{name}: SOP Instance UID {uid} is also in {os.fspath(where[uid])}"
            )
        where[uid] = file
        if wanted is None or uid in wanted:
            _check_single_frame(header, name)  # before the (deferred) pixels are read
            images[uid] = _slice_from_dataset(header, name)
    return images
