"""A PHI corpus built here: a DICOM dataset that hides identifiers everywhere the
de-identification must reach, the needles to grep for in every output, and the grep itself."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    MRImageStorage,
)

# Every string that must not survive anywhere in the output (upper-cased for comparison).
PATIENT_NAME = "Zebulonix^Quixotica^Marmadukea"
PATIENT_ID = "PID-8675309"
BIRTH_DATE = "19470312"
OTHER_ID = "OTHERID-4242"
ACCESSION = "ACC-55501"
REFERRING = "Refdoctorov^Rupert"
PERFORMING = "Performerova^Pauline"
OPERATOR = "Operatorius^Oscar"
INSTITUTION = "Mercy Vertebral Hospital"
ADDRESS = "17 Lumbar Lane, Springfieldia"
STATION = "STATION-XJ9"
SERIAL = "SN-99887766"
REQUEST_ID = "REQ-31337"
REQUEST_TEXT = "Requested by Rupert for Zebulonix"
PRIVATE_VALUE = "PRIVATE-SECRET-777"
PRIVATE_CREATOR = "ACME PHI CREATOR"
IMAGE_COMMENT = "IMGCOMMENT-SECRET patient fell"
STUDY_DESCRIPTION = "STUDYDESC-SECRET lumbar"
NEEDLES = (
    "ZEBULONIX",
    "QUIXOTICA",
    "MARMADUKEA",
    PATIENT_ID,
    BIRTH_DATE,
    OTHER_ID,
    ACCESSION,
    "REFDOCTOROV",
    "PERFORMEROVA",
    "OPERATORIUS",
    INSTITUTION,
    "LUMBAR LANE",
    "SPRINGFIELDIA",
    STATION,
    SERIAL,
    REQUEST_ID,
    "REQUESTED BY",
    PRIVATE_VALUE,
    PRIVATE_CREATOR,
    "IMGCOMMENT",
    "STUDYDESC",
)


def _uid(n: int) -> str:
    return f"1.2.826.0.1.3680043.8.498.{n}"


def phi_dataset(
    *,
    index: int = 1,
    series: int = 1,
    patient: str = PATIENT_NAME,
    patient_id: str = PATIENT_ID,
    study: int = 1,
    series_description: str = "SAG T1",
    seed: int = 0,
) -> Dataset:
    """A small MR image whose header hides identifiers in every place the issue lists."""
    rng = np.random.default_rng([seed, series, index])
    pixels = rng.integers(0, 1000, size=(16, 16), dtype=np.uint16)
    sop_uid = _uid(1_000_000 + 1000 * series + index)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _uid(9)
    meta.SourceApplicationEntityTitle = STATION
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = _uid(100 + study)
    ds.SeriesInstanceUID = _uid(200 + 10 * study + series)
    ds.FrameOfReferenceUID = _uid(300 + study)
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20230501"
    ds.StudyTime = "101500"
    ds.SeriesTime = "102000.5"
    ds.AcquisitionDateTime = "20230501102000.5"
    ds.AccessionNumber = ACCESSION
    ds.Modality = "MR"
    ds.Manufacturer = "SIEMENS"
    ds.ManufacturerModelName = "Avanto"
    ds.InstitutionName = INSTITUTION
    ds.InstitutionAddress = ADDRESS
    ds.StationName = STATION
    ds.DeviceSerialNumber = SERIAL
    ds.ReferringPhysicianName = REFERRING
    ds.PerformingPhysicianName = PERFORMING
    ds.OperatorsName = OPERATOR
    ds.StudyDescription = STUDY_DESCRIPTION
    ds.SeriesDescription = series_description
    ds.ProtocolName = "t1_tse_sag"
    ds.PatientName = patient
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = INSTITUTION
    ds.PatientBirthDate = BIRTH_DATE
    ds.PatientSex = "F"
    ds.PatientAge = "076Y"
    ds.PatientSize = "1.62"
    ds.PatientWeight = "58.5"
    ds.PatientAddress = ADDRESS
    ds.PatientComments = IMAGE_COMMENT
    other = Dataset()
    other.PatientID = OTHER_ID
    other.IssuerOfPatientID = INSTITUTION
    ds.OtherPatientIDsSequence = Sequence([other])
    request = Dataset()
    request.RequestedProcedureID = REQUEST_ID
    request.ScheduledProcedureStepDescription = REQUEST_TEXT
    request.RequestedProcedureDescription = REQUEST_TEXT
    nested = Dataset()
    nested.AccessionNumber = ACCESSION
    nested.RequestingPhysician = REFERRING
    request.ReferencedRequestSequence = Sequence([nested])
    ds.RequestAttributesSequence = Sequence([request])
    ds.ImageComments = IMAGE_COMMENT
    ds.ScanningSequence = "SE"
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = "550"
    ds.EchoTime = "11"
    ds.FlipAngle = "150"
    ds.MagneticFieldStrength = "1.5"
    ds.SliceThickness = "4"
    ds.PixelSpacing = [0.5, 0.5]
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.ImagePositionPatient = [float(index * 4), 0.0, 0.0]
    ds.InstanceNumber = index
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    block = ds.private_block(0x0029, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", PRIVATE_VALUE)
    block.add_new(0x11, "LO", patient)
    ds.add_new(0x00091001, "UN", PATIENT_ID.encode())  # a private tag without a creator
    return ds


def assert_clean(data: bytes, where: str = "output") -> None:
    """No needle in ``data`` (case-insensitive)."""
    upper = data.upper()
    for needle in NEEDLES:
        assert needle.upper().encode() not in upper, f"{needle!r} survives in {where}"
