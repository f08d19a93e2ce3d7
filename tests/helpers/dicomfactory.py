"""Write small synthetic single-frame MR Image Storage files for tests.

Real patient data must never be needed to test the measurement, so tests build the exact pixel
values they reason about, with the geometry and rescale tags they want.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

SERIES_UID = "2.25.1000000000000000000000000001"
STUDY_UID = "2.25.1000000000000000000000000002"
SAGITTAL_IOP = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def mr_dataset(
    pixels: ArrayLike,
    *,
    sop_instance_uid: str | None = None,
    series_instance_uid: str = SERIES_UID,
    image_position: Sequence[float] = (0.0, 0.0, 0.0),
    image_orientation: Sequence[float] = SAGITTAL_IOP,
    pixel_spacing: Sequence[float] = (0.5, 0.5),
    rescale_slope: float | None = None,
    rescale_intercept: float | None = None,
    omit: Sequence[str] = (),
) -> Dataset:
    """An MR image dataset with ``pixels`` stored as 16-bit integers (signed if any is < 0)."""
    array = np.asarray(pixels)
    if array.ndim != 2:
        raise ValueError("pixels must be 2-D")
    signed = bool((array < 0).any())
    stored = array.astype(np.int16 if signed else np.uint16)
    uid = sop_instance_uid or generate_uid(prefix="2.25.")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_instance_uid
    ds.Modality = "MR"
    ds.Rows, ds.Columns = stored.shape
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    ds.ImagePositionPatient = [float(v) for v in image_position]
    ds.ImageOrientationPatient = [float(v) for v in image_orientation]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    if rescale_slope is not None:
        ds.RescaleSlope = rescale_slope
    if rescale_intercept is not None:
        ds.RescaleIntercept = rescale_intercept
    ds.PixelData = stored.tobytes()
    for keyword in omit:
        delattr(ds, keyword)
    return ds


def write_mr(path: Path, pixels: ArrayLike, **kwargs: object) -> Path:
    """Write :func:`mr_dataset` (same keyword arguments) as a DICOM Part 10 file at ``path``."""
    ds = mr_dataset(pixels, **kwargs)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
