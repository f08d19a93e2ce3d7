"""De-identification profile (spec section 4) on a PHI corpus built here and on real files.

The corpus hides identifiers everywhere the issue lists (and a few more); the tests grep the raw
bytes of every output for them. ``phi_dataset`` and ``NEEDLES`` are reused by the command tests.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ImplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
)

from studies.ingest.deid_engine import (
    DEIDENTIFICATION_CODES,
    IMPLEMENTATION_CLASS_UID,
    DeidConfig,
    deidentify_dataset,
)
from studies.ingest.deid_identity import (
    date_shift_days,
    descriptor_is_clean,
    new_uid,
    patient_identity,
)
from studies.ingest.deid_table import E11_ROWS
from studies.ingest.deid_writer import deidentified_bytes
from tests.helpers.paths import SHARED_DATA
from tests.helpers.phi import ACCESSION, assert_clean, phi_dataset

DATA = SHARED_DATA
SECRET = b"unit-test-site-secret"
CONFIG = DeidConfig(secret=SECRET)


@pytest.fixture
def corpus_result() -> Iterator[tuple[Dataset, Dataset, bytes]]:
    original = phi_dataset()
    ds = phi_dataset()
    result = deidentify_dataset(ds, config=CONFIG)
    assert result.dataset is ds
    return original, ds, deidentified_bytes(ds)


def test_no_identifier_survives_in_the_bytes(corpus_result: tuple[Dataset, Dataset, bytes]) -> None:
    original, _ds, data = corpus_result
    assert_clean(data)
    for uid in (original.SOPInstanceUID, original.StudyInstanceUID, original.SeriesInstanceUID):
        assert uid.encode() not in data
    assert original.FrameOfReferenceUID.encode() not in data


def test_output_rereads_without_force_with_zero_preamble_and_clean_meta(
    corpus_result: tuple[Dataset, Dataset, bytes],
) -> None:
    _original, _ds, data = corpus_result
    assert data[:128] == b"\x00" * 128
    assert data[128:132] == b"DICM"
    out = pydicom.dcmread(io.BytesIO(data))  # no force
    meta = out.file_meta
    assert meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == out.SOPClassUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert "SourceApplicationEntityTitle" not in meta
    assert out.SOPInstanceUID.startswith("2.25.")
    assert len(out.SOPInstanceUID) <= 64


def test_patient_characteristics_kept_and_identity_pseudonymised(
    corpus_result: tuple[Dataset, Dataset, bytes],
) -> None:
    _original, ds, _data = corpus_result
    assert ds.PatientSex == "F"
    assert ds.PatientAge == "076Y"
    assert float(ds.PatientSize) == pytest.approx(1.62)
    assert float(ds.PatientWeight) == pytest.approx(58.5)
    assert ds.PatientBirthDate == ""
    assert str(ds.PatientName).startswith("VBQ-")
    assert len(str(ds.PatientName)) == 14
    assert ds.PatientID == str(ds.PatientName)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"


def test_device_and_acquisition_attributes(corpus_result: tuple[Dataset, Dataset, bytes]) -> None:
    _original, ds, _data = corpus_result
    for keyword in ("StationName", "DeviceSerialNumber", "InstitutionName", "InstitutionAddress"):
        assert keyword not in ds
    assert ds.Manufacturer == "SIEMENS"
    assert ds.ManufacturerModelName == "Avanto"
    assert float(ds.MagneticFieldStrength) == 1.5
    assert float(ds.RepetitionTime) == 550
    assert float(ds.EchoTime) == 11
    assert float(ds.FlipAngle) == 150
    assert float(ds.SliceThickness) == 4
    assert [float(v) for v in ds.PixelSpacing] == [0.5, 0.5]


def test_free_text_private_and_requests_removed(
    corpus_result: tuple[Dataset, Dataset, bytes],
) -> None:
    _original, ds, _data = corpus_result
    for keyword in (
        "StudyDescription",
        "ImageComments",
        "PatientComments",
        "OtherPatientIDsSequence",
        "RequestAttributesSequence",
        "ReferringPhysicianName",  # Z: kept empty (Type 2)
    ):
        assert not ds.get(keyword), keyword
    assert not any(elem.tag.is_private for elem in ds.iterall())
    assert ds.AccessionNumber == ""
    assert ds.SeriesDescription == "SAG T1"
    assert ds.ProtocolName == "t1_tse_sag"


def test_codes_and_method(corpus_result: tuple[Dataset, Dataset, bytes]) -> None:
    _original, ds, _data = corpus_result
    codes = [(c.CodeValue, c.CodingSchemeDesignator) for c in ds.DeidentificationMethodCodeSequence]
    assert codes == [(value, "DCM") for value, _meaning in DEIDENTIFICATION_CODES]
    assert {v for v, _ in codes} == {"113100", "113107", "113108", "113105"}
    assert all(len(v) <= 64 for v in ds.DeidentificationMethod)


def test_codes_match_pydicoms_cid_7050() -> None:
    from pydicom.sr.codedict import codes

    expected = {
        codes.DCM.BasicApplicationConfidentialityProfile,
        codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption,
        codes.DCM.RetainPatientCharacteristicsOption,
        codes.DCM.CleanDescriptorsOption,
    }
    assert {(c.value, c.meaning) for c in expected} == set(DEIDENTIFICATION_CODES)


def test_pixel_data_byte_equal(corpus_result: tuple[Dataset, Dataset, bytes]) -> None:
    original, _ds, data = corpus_result
    assert pydicom.dcmread(io.BytesIO(data)).PixelData == original.PixelData


def test_dates_shifted_per_patient_times_kept() -> None:
    a1 = deidentify_dataset(phi_dataset(index=1), config=CONFIG)
    a2 = deidentify_dataset(phi_dataset(index=2, series=2), config=CONFIG)
    b = deidentify_dataset(
        phi_dataset(patient="Otherperson^Olga", patient_id="PID-1111"), config=CONFIG
    )
    assert a1.date_shift_days == a2.date_shift_days != b.date_shift_days
    assert -3652 <= a1.date_shift_days <= -365
    import datetime as dt

    shifted = (dt.date(2023, 5, 1) + dt.timedelta(days=a1.date_shift_days)).strftime("%Y%m%d")
    ds = a1.dataset
    assert ds.StudyDate == ds.SeriesDate == ds.AcquisitionDate == ds.ContentDate == shifted
    assert ds.AcquisitionDateTime == shifted + "102000.5"
    assert ds.StudyTime == "101500"
    assert ds.SeriesTime == "102000.5"
    assert a1.patient_key == a2.patient_key != b.patient_key


def test_uids_consistent_within_series_and_deterministic() -> None:
    first = [deidentify_dataset(phi_dataset(index=i), config=CONFIG) for i in (1, 2, 3)]
    again = [deidentify_dataset(phi_dataset(index=i), config=CONFIG) for i in (1, 2, 3)]
    assert len({r.series_uid for r in first}) == 1
    assert len({r.study_uid for r in first}) == 1
    assert len({r.sop_uid for r in first}) == 3
    assert [deidentified_bytes(r.dataset) for r in first] == [
        deidentified_bytes(r.dataset) for r in again
    ]
    frames = {r.dataset.FrameOfReferenceUID for r in first}
    assert len(frames) == 1
    other = deidentify_dataset(phi_dataset(), config=DeidConfig(secret=b"another-site-secret"))
    assert other.sop_uid != first[0].sop_uid


def test_new_uid_shape() -> None:
    uids = {new_uid(f"1.2.3.{i}", SECRET) for i in range(2000)}
    assert len(uids) == 2000
    for uid in uids:
        assert uid.startswith("2.25.")
        digits = uid[5:]
        assert digits.isdigit()
        assert len(digits) <= 39
        assert digits == "0" or digits[0] != "0"
        assert len(uid) <= 64
    assert new_uid("1.2.3", SECRET) == new_uid("1.2.3", SECRET) != new_uid("1.2.3", b"x" * 16)


def test_date_shift_spread() -> None:
    shifts = {date_shift_days(f"patient-{i}", SECRET) for i in range(200)}
    assert len(shifts) > 150
    assert all(-3652 <= s <= -365 for s in shifts)


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("SAG T1", True),
        ("t1_tse_sag_p2_320", True),
        ("REST1 w SMS PF7-8", True),
        ("Accelerated SAG IR-SPGR", True),
        ("HELLO^SERIES", False),
        ("SAG T1 2023-05-01", False),
        ("SAG T1 01.05.2023", False),
        ("T1 20230501", False),
        ("T1 May 1, 2023", False),
        ("T1 1 May 2023", False),
        ("T1 MRN 1234567", False),
        ("Dr. Who protocol", False),
        ("Doe, John T1", False),
        ("T1 #4521", False),
    ],
)
def test_descriptor_shapes(text: str, clean: bool) -> None:
    assert descriptor_is_clean(text) is clean


def test_series_description_with_patient_identifier_removed() -> None:
    for description in ("SAG T1 Zebulonix", f"T1 {ACCESSION}", "HELLO^SERIES"):
        result = deidentify_dataset(phi_dataset(series_description=description), config=CONFIG)
        assert "SeriesDescription" not in result.dataset


def test_contrast_agent_reduced_to_a_flag() -> None:
    given = phi_dataset()
    given.ContrastBolusAgent = "Gadovist 7.5 ml by Dr Rupert"
    none = phi_dataset()
    none.ContrastBolusAgent = "NONE"
    assert deidentify_dataset(given, config=CONFIG).dataset.ContrastBolusAgent == "CONTRAST"
    assert deidentify_dataset(none, config=CONFIG).dataset.ContrastBolusAgent == ""


@pytest.mark.parametrize(
    ("change", "quarantined"),
    [
        ({}, False),
        ({"BurnedInAnnotation": "YES"}, True),
        ({"BurnedInAnnotation": "NO"}, False),
        ({"SOPClassUID": SecondaryCaptureImageStorage}, True),
        ({"ConversionType": "WSD"}, True),
        ({"ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]}, True),
        ({"ImageType": ["DERIVED", "SECONDARY", "OTHER", "CSA REPORT"]}, True),
        ({"ImageType": ["DERIVED", "SECONDARY", "MPR"]}, False),
    ],
)
def test_burned_in_annotation_quarantine(change: dict[str, object], quarantined: bool) -> None:
    ds = phi_dataset()
    for keyword, value in change.items():
        setattr(ds, keyword, value)
    result = deidentify_dataset(ds, config=CONFIG)
    assert (result.quarantine_reason is not None) is quarantined
    if quarantined:
        assert result.quarantine_reason
        assert "ZEBULONIX" not in result.quarantine_reason.upper()


def test_referenced_image_uids_replaced_consistently() -> None:
    ds = phi_dataset(index=2)
    ref = Dataset()
    ref.ReferencedSOPClassUID = MRImageStorage
    ref.ReferencedSOPInstanceUID = phi_dataset(index=1).SOPInstanceUID
    ds.ReferencedImageSequence = Sequence([ref])
    target = deidentify_dataset(phi_dataset(index=1), config=CONFIG)
    result = deidentify_dataset(ds, config=CONFIG)
    item = result.dataset.ReferencedImageSequence[0]
    assert item.ReferencedSOPInstanceUID == target.sop_uid
    assert item.ReferencedSOPClassUID == MRImageStorage  # DICOM-defined UIDs are kept


def _sample_value(vr: str) -> object:
    if vr == "SQ":
        item = Dataset()
        item.CodeValue = "X1"
        return Sequence([item])
    samples: dict[str, object] = {
        "DA": "20200101",
        "DT": "20200101120000",
        "TM": "120000",
        "UI": "1.2.826.0.1.3680043.8.498.777",
        "AS": "050Y",
        "DS": "1.5",
        "IS": "3",
        "FL": 1.5,
        "FD": 1.5,
        "SS": 1,
        "US": 1,
        "SL": 1,
        "UL": 1,
        "OB": b"\x01\x02",
        "OW": b"\x01\x02",
        "UN": b"\x01\x02",
        "AT": 0x00100010,
    }
    return samples.get(vr, "SAMPLEVALUE")


def test_agrees_with_grand_challenge_basic_profile_rows() -> None:
    """Cross-check against a second, independent (2025c) extraction of Table E.1-1.

    Grand Challenge's procedure marks the rows it took from the Basic Profile. For every row it
    removes (X) outright, an attribute with a sample value must come out of our profile removed
    or emptied, unless one of our options keeps it (patient characteristics, modified dates,
    narrow clean descriptors). ``test_deid_table.py`` holds the engine to every row of our own
    (generated) table; this test holds the table to an extraction made by someone else.
    """
    from pydicom.datadict import dictionary_VR

    procedure = pytest.importorskip("grand_challenge_dicom_de_id_procedure").procedure
    ours = {row[0]: row for row in E11_ROWS}
    checked = 0
    for sop_class in procedure["sopClass"].values():
        for tag_text, action in sop_class["tag"].items():
            if "Basic Profile" not in action.get("justification", ""):
                continue
            if action["default"] != "X" or "X" in tag_text[1:5] + tag_text[6:10]:
                continue
            tag = int(tag_text[1:5] + tag_text[6:10], 16)
            row = ours.get(tag)
            if row is not None and row[3]:
                continue  # an option we apply decides (K, C or our narrow rule)
            ds = phi_dataset()
            try:
                vr = dictionary_VR(tag).split(" or ")[0]
            except KeyError:
                vr = "UC"  # newer than pydicom's dictionary: removed as unknown anyway
            ds.add_new(tag, vr, _sample_value(vr))
            deidentify_dataset(ds, config=CONFIG)
            assert tag not in ds or ds[tag].value in (None, "", b"") or not len(ds[tag].value), (
                f"{tag_text} survives: Basic Profile X"
            )
            checked += 1
    assert checked > 80


def test_patient_identity_distinguishes_shared_ids() -> None:
    a = phi_dataset(patient="HELLO", patient_id="COMMON")
    b = phi_dataset(patient="WORLD", patient_id="COMMON")
    assert patient_identity(a) != patient_identity(b)
    empty = Dataset()
    empty.StudyInstanceUID = "1.2.3"
    assert patient_identity(empty).endswith("1.2.3")


# --- real files ----------------------------------------------------------------------------


def _data(folder: str) -> Path:
    path = DATA / folder
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (see ../shared/data/README.md)")
    return path


def _strings(ds: Dataset, keywords: tuple[str, ...]) -> list[bytes]:
    found = []
    for elem in ds.iterall():
        if elem.keyword in keywords and elem.value not in (None, ""):
            found.append(str(elem.value).encode())
    return found


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_enhanced_mr_cleaned_inside_functional_groups() -> None:
    folder = _data("enhanced-mr")
    for path in sorted(folder.glob("*.dcm")):
        original = pydicom.dcmread(path)
        secrets = _strings(
            original,
            ("InstitutionAddress", "StationName", "InstitutionName", "ReferringPhysicianName"),
        )
        birth = str(original.get("PatientBirthDate", "") or "")
        ds = pydicom.dcmread(path)
        result = deidentify_dataset(ds, config=CONFIG)
        data = deidentified_bytes(ds)
        for secret in secrets:
            if len(secret) >= 4:
                assert secret not in data, (path.name, secret)
        if birth:
            assert birth.encode() not in data
        assert not any(e.tag.is_private for e in ds.iterall())
        out = pydicom.dcmread(io.BytesIO(data))
        assert out.PixelData == original.PixelData
        assert "PerFrameFunctionalGroupsSequence" in out
        frame = out.PerFrameFunctionalGroupsSequence[0]
        content = frame.FrameContentSequence[0]
        if "FrameAcquisitionDateTime" in content:
            before = original.PerFrameFunctionalGroupsSequence[0].FrameContentSequence[0]
            assert content.FrameAcquisitionDateTime[8:] == before.FrameAcquisitionDateTime[8:]
            assert content.FrameAcquisitionDateTime[:8] != before.FrameAcquisitionDateTime[:8]
        for uid in (original.SOPInstanceUID, original.SeriesInstanceUID):
            assert uid.encode() not in data
        assert result.sop_uid == out.SOPInstanceUID == out.file_meta.MediaStorageSOPInstanceUID


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_real_brain_sample_keeps_acquisition_parameters() -> None:
    folder = _data("real-mr-sagittal-t1-brain")
    for path in sorted(folder.glob("*.dcm"))[::49]:
        original = pydicom.dcmread(path)
        ds = pydicom.dcmread(path)
        deidentify_dataset(ds, config=CONFIG)
        data = deidentified_bytes(ds)
        out = pydicom.dcmread(io.BytesIO(data))
        assert out.PixelData == original.PixelData
        assert float(out.RepetitionTime) == pytest.approx(6.964)
        assert float(out.MagneticFieldStrength) == 3
        assert out.Manufacturer == original.Manufacturer
        assert out.SeriesDescription == "Accelerated SAG IR-SPGR"
        assert b"FRUIT" not in data.upper()
        assert original.StudyInstanceUID.encode() not in data


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_character_set_files_come_out_clean() -> None:
    folder = _data("deid-cases")
    for name in ("Encodings_Lena-utf8.dcm", "Encodings_Lena-shift-jis.dcm"):
        raw = (folder / name).read_bytes()
        original = pydicom.dcmread(folder / name)
        encoded_name = original["PatientName"]
        ds = pydicom.dcmread(folder / name)
        result = deidentify_dataset(ds, config=CONFIG)
        data = deidentified_bytes(ds)
        assert result.quarantine_reason is not None  # Secondary Capture
        name_bytes = raw[raw.find(b"\x10\x00\x10\x00") :][8:24]
        assert name_bytes
        assert name_bytes not in data
        assert str(encoded_name.value).encode("utf-8") not in data
        assert pydicom.dcmread(io.BytesIO(data)).PatientName == result.patient_key


def test_shared_patient_id_and_two_studies_grouping() -> None:
    folder = _data("deid-cases")
    keys = set()
    for i in (1, 2, 3):
        ds = pydicom.dcmread(folder / f"PatientIdsCollision_Image{i}.dcm")
        result = deidentify_dataset(ds, config=CONFIG)
        keys.add(result.patient_key)
        assert "SeriesDescription" not in ds  # "HELLO^SERIES": the patient's name
    assert len(keys) == 3  # one shared PatientID, three different people

    path = folder / "PatientWith2studies_TEST_1_study_1234.dcm"
    first = pydicom.dcmread(path)
    second = pydicom.dcmread(path)
    second.StudyInstanceUID = "1.2.3.4.5"
    second.SOPInstanceUID = "1.2.3.4.5.6"
    a = deidentify_dataset(first, config=CONFIG)
    b = deidentify_dataset(second, config=CONFIG)
    assert a.patient_key == b.patient_key
    assert a.date_shift_days == b.date_shift_days
    assert a.study_uid != b.study_uid


def test_result_path_uses_new_uids_only(corpus_result: tuple[Dataset, Dataset, bytes]) -> None:
    original, ds, _data = corpus_result
    result = deidentify_dataset(phi_dataset(), config=CONFIG)
    parts = result.relative_path.split("/")
    assert parts == [result.study_uid, result.series_uid, result.sop_uid + ".dcm"]
    assert original.SOPInstanceUID not in result.relative_path
    assert json.dumps(parts)
    assert ds.SOPInstanceUID == result.sop_uid


def test_config_rejects_weak_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        DeidConfig(secret=b"short")
    assert DeidConfig.from_text("django-secret").secret == b"django-secret"


def _writer_inputs() -> Iterator[tuple[str, Dataset]]:
    yield "corpus", phi_dataset()
    implicit = io.BytesIO()
    source = phi_dataset()
    source.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    source.save_as(implicit, enforce_file_format=True)
    yield "implicit", pydicom.dcmread(io.BytesIO(implicit.getvalue()))
    explicit = io.BytesIO()
    phi_dataset().save_as(explicit, enforce_file_format=True)
    yield "explicit", pydicom.dcmread(io.BytesIO(explicit.getvalue()))
    for folder in ("enhanced-mr", "compressed", "real-mr-sagittal-t1-brain"):
        path = DATA / folder
        for file in sorted(path.glob("*.dcm"))[:12] if path.is_dir() else []:
            ds = pydicom.dcmread(file)
            if ds.get("SOPClassUID", "").startswith("1.2.840.10008.5.1.4.1.1.4"):
                yield file.name, ds


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fast_writer_matches_dcmwrite() -> None:
    """``write_deidentified`` copies raw elements itself: it must produce dcmwrite's bytes."""
    checked = 0
    for name, ds in _writer_inputs():
        deidentify_dataset(ds, config=CONFIG)
        ours = deidentified_bytes(ds)
        reference = io.BytesIO()
        pydicom.dcmwrite(reference, ds, enforce_file_format=True)
        assert ours == reference.getvalue(), name
        checked += 1
    assert checked >= 3
