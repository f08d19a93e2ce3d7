"""The DICOM headers of the phantom: the sagittal T1 series and the wrong series.

Why apart: headers are what the ingest judges (eligibility, geometry, rescale), independent of the
pixels, so they are written in one place. Every instance is MR Image Storage in Explicit VR
Little Endian with full file meta; every UID is a ``2.25.`` UID hashed from the seed and the
instance's role, so one seed gives identical files; decimal strings fit DICOM's DS and
round-trip to the values used.

* **The sagittal T1** (:func:`t1_dataset`): geometry per spec section 2, IOP
  ``[0, 1, 0, 0, 0, -1]``, slices stepping along the normal by the slice spacing.
* **Wrong series on request.** A real study holds more than the sagittal T1, so
  :func:`derive_wrong_series` (behind :func:`studies.phantom.case.wrong_series_datasets` and
  ``write_phantom(..., wrong_series=...)``) turns a case's T1 series into an axial T2 or a
  post-contrast T1 series, for the ingest to judge ineligible; the truth keeps describing the T1
  series only.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from studies.phantom.params import Params

MR_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.4"
# Second series a real lumbar study also holds, which the ingest must judge ineligible for VBQ
# (see :func:`studies.phantom.case.wrong_series_datasets`).
WRONG_SERIES_KINDS: Final = ("axial-t2", "post-contrast")
# Series Number of each variant, as a scanner would give it.
_WRONG_SERIES_NUMBER: Final = {"axial-t2": "5", "post-contrast": "7"}
_AXIAL_IOP: Final = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_AXIAL_SPACING_MM: Final = 4.0
_IMPLEMENTATION_VERSION: Final = "VBQPHANTOM_1"

_IOP: Final = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
_NORMAL: Final = (-1.0, 0.0, 0.0)  # row direction x column direction


def _uid(seed: int, *parts: object) -> str:
    """A ``2.25.`` UID hashed from the seed and a role, so the same seed gives the same UIDs."""
    text = "vbq-phantom/1:" + ":".join(str(p) for p in (seed, *parts))
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    return f"2.25.{value}"


def _ds(value: float, digits: int = 6) -> str:
    """A decimal string that fits DICOM's 16-character DS and round-trips to the value we use."""
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _ipp(p: Params, k: int) -> tuple[float, float, float]:
    """Top-left pixel centre of slice k; slices advance by the spacing along the normal."""
    x = round(p.midline_x_mm + p.slice_lateral_mm[k], 3)
    return (x, p.ipp_y0, p.ipp_z0)


def t1_dataset(p: Params, k: int, pixels: npt.NDArray[np.uint16]) -> Dataset:
    """One MR Image Storage instance with full file meta (Explicit VR Little Endian)."""
    sop_uid = UID(_uid(p.seed, p.index, "sop", k + 1))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MR_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(_uid(0, "implementation"))
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = p.study_date
    ds.StudyTime = "091500"
    ds.SeriesTime = "092112"
    ds.AcquisitionTime = "092112"
    ds.ContentTime = f"0923{k % 60:02d}"
    ds.AccessionNumber = f"PHA{p.index:06d}"
    ds.Modality = "MR"
    ds.Manufacturer = "VBQ Phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "LUMBAR SPINE"
    ds.SeriesDescription = "SAG T1"
    ds.ManufacturerModelName = "Synthetic 3T" if p.field_t == 3.0 else "Synthetic 1.5T"
    ds.PatientName = f"PHANTOM^CASE{p.index:03d}"
    ds.PatientID = f"PHANTOM-{p.seed}-{p.index:03d}"
    ds.PatientBirthDate = ""
    ds.PatientSex = p.sex
    ds.PatientAge = f"{p.age:03d}Y"
    ds.PatientSize = _ds(p.height_m, 2)
    ds.PatientWeight = _ds(p.weight_kg, 1)
    ds.BodyPartExamined = "LSPINE"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = ["SK", "SP", "OSP"]
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = f"*tse2d1_{p.etl}"
    ds.SliceThickness = _ds(p.thickness)
    ds.RepetitionTime = _ds(p.tr_ms)
    ds.EchoTime = _ds(p.te_ms)
    ds.NumberOfAverages = "2"
    ds.ImagingFrequency = _ds(42.577478 * p.field_t)
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = "1"
    ds.MagneticFieldStrength = _ds(p.field_t)
    ds.SpacingBetweenSlices = _ds(p.slice_spacing)
    ds.NumberOfPhaseEncodingSteps = str(int(p.n * 0.8))
    ds.EchoTrainLength = str(p.etl)
    ds.PercentSampling = "100"
    ds.PercentPhaseFieldOfView = "100"
    ds.PixelBandwidth = "190"
    ds.SoftwareVersions = "vbq-phantom 1"
    ds.ProtocolName = "t1_tse_sag"
    ds.TransmitCoilName = "Body"
    ds.AcquisitionMatrix = [0, p.n, int(p.n * 0.8), 0]
    ds.InPlanePhaseEncodingDirection = "ROW"
    ds.FlipAngle = _ds(p.flip_deg)
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = _uid(p.seed, p.index, "study")
    ds.SeriesInstanceUID = _uid(p.seed, p.index, "series")
    ds.StudyID = "1"
    ds.SeriesNumber = "3"
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = str(k + 1)
    ipp = _ipp(p, k)
    ds.ImagePositionPatient = [_ds(v, 3) for v in ipp]
    ds.ImageOrientationPatient = [_ds(v) for v in _IOP]
    ds.FrameOfReferenceUID = _uid(p.seed, p.index, "frame")
    ds.PositionReferenceIndicator = ""
    # SliceLocation: the position along the slice normal (vendor-defined in DICOM; ours is exact).
    ds.SliceLocation = _ds(sum(a * b for a, b in zip(ipp, _NORMAL, strict=True)), 3)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = p.n
    ds.Columns = p.n
    ds.PixelSpacing = [p.spacing_str, p.spacing_str]
    ds.BitsAllocated = 16
    ds.BitsStored = p.bits_stored
    ds.HighBit = p.bits_stored - 1
    ds.PixelRepresentation = 0
    fat = p.tissue["fat"]
    ds.WindowCenter = _ds(round(0.47 * fat), 0)
    ds.WindowWidth = _ds(round(0.94 * fat), 0)
    if p.slope != 1.0 or p.intercept != 0.0:
        ds.RescaleIntercept = _ds(p.intercept)
        ds.RescaleSlope = _ds(p.slope)
        ds.RescaleType = "US"
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def wrong_series_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """The requested variants, checked, each once and in the order first named."""
    if isinstance(kinds, str):
        raise TypeError("wrong_series must be a sequence of kinds, not a string")
    for kind in kinds:
        if kind not in WRONG_SERIES_KINDS:
            raise ValueError(
                f"unknown wrong series {kind!r}; choose from {', '.join(WRONG_SERIES_KINDS)}"
            )
    return tuple(dict.fromkeys(kinds))


def derive_wrong_series(seed: int, index: int, t1: Sequence[Dataset], kind: str) -> list[Dataset]:
    """The ``kind`` variant of ``t1``, the T1 series of case ``index`` of the phantom ``seed``
    (see :func:`studies.phantom.case.wrong_series_datasets`)."""
    series_uid = UID(_uid(seed, index, "series", kind))
    out: list[Dataset] = []
    for k, source in enumerate(t1):
        ds = copy.deepcopy(source)
        sop_uid = UID(_uid(seed, index, "sop", kind, k + 1))
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = _WRONG_SERIES_NUMBER[kind]
        if kind == "axial-t2":
            half_fov = 0.5 * float(ds.Rows) * float(ds.PixelSpacing[0])
            z = float(source.ImagePositionPatient[2]) - _AXIAL_SPACING_MM * k
            ds.ImageOrientationPatient = [_ds(v) for v in _AXIAL_IOP]
            ds.ImagePositionPatient = [_ds(-half_fov, 3), _ds(-half_fov, 3), _ds(z, 3)]
            ds.SliceLocation = _ds(z, 3)  # the normal of an axial slice is +z
            ds.SliceThickness = ds.SpacingBetweenSlices = _ds(_AXIAL_SPACING_MM)
            ds.RepetitionTime = _ds(3000.0)
            ds.EchoTime = _ds(90.0)
            ds.FlipAngle = _ds(150.0)
            ds.SeriesDescription = "AX T2"
            ds.ProtocolName = "t2_tse_tra"
            ds.SeriesTime = ds.AcquisitionTime = "093012"
            ds.ContentTime = f"0932{k % 60:02d}"
        else:  # "post-contrast"
            ds.ContrastBolusAgent = "Gadobutrol"
            ds.SeriesTime = ds.AcquisitionTime = "094805"
            ds.ContentTime = f"0950{k % 60:02d}"
        out.append(ds)
    return out
