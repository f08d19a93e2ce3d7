"""The synthetic lumbar spine phantom (:mod:`studies.phantom`): real DICOM, known truth.

The phantom is what every other test of the measurement path trusts, so it is checked on three
sides: the files are valid MR Image Storage with consistent geometry (read back by pydicom
without ``force``); generation is deterministic; and the truth it claims is recovered by the
project's own measurement code from its suggested ROIs.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID, ExplicitVRLittleEndian

from studies.ingest.eligibility import classify_series
from studies.phantom.acquisition import MR_IMAGE_STORAGE, WRONG_SERIES_KINDS
from studies.phantom.case import SCHEMA, make_case, wrong_series_datasets
from studies.phantom.writer import is_phantom_output, write_phantom

SEED = 1
N_CASES = 12
LUMBAR = ("L1", "L2", "L3", "L4")
TRUTH_KEYS = {
    "schema",
    "case",
    "seed",
    "index",
    "patient_id",
    "study_instance_uid",
    "series_instance_uid",
    "field_strength_t",
    "tr_ms",
    "te_ms",
    "n_slices",
    "midsagittal_sop_instance_uid",
    "midsagittal_instance_number",
    "pixel_spacing_mm",
    "rescale",
    "noise_sd",
    "texture_sd_rel",
    "roi_sd",
    "truth",
    "rois",
}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Twelve cases of one seed, written once for the whole module (about 3 s)."""
    return write_phantom(tmp_path_factory.mktemp("phantom"), cases=N_CASES, seed=SEED)


def truth_of(case_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((case_dir / "truth.json").read_text(encoding="utf-8"))
    return result


def read_series(case_dir: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(path) for path in sorted(case_dir.glob("IM*.dcm"))]


def modality(ds: pydicom.Dataset) -> np.ndarray:
    slope = float(getattr(ds, "RescaleSlope", 1.0))
    intercept = float(getattr(ds, "RescaleIntercept", 0.0))
    return ds.pixel_array.astype(np.float64) * slope + intercept


# -- determinism -----------------------------------------------------------------------------


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    write_phantom(tmp_path / "a", cases=2, seed=7)
    write_phantom(tmp_path / "b", cases=2, seed=7)
    first, second = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert len(first) >= 2 * 12
    assert first == second


def test_different_seed_gives_different_images_and_uids() -> None:
    one, other = make_case(7, 1), make_case(8, 1)
    assert one.truth["truth"] != other.truth["truth"]
    assert one.truth["series_instance_uid"] != other.truth["series_instance_uid"]
    mid = one.datasets[one.midsagittal_index]
    assert {ds.SOPInstanceUID for ds in one.datasets}.isdisjoint(
        ds.SOPInstanceUID for ds in other.datasets
    )
    assert all(ds.PixelData != mid.PixelData for ds in other.datasets)


def test_a_case_does_not_depend_on_how_many_cases_are_made(phantom: list[Path]) -> None:
    case = make_case(SEED, 3)
    assert case.truth == truth_of(phantom[2])
    assert [ds.SOPInstanceUID for ds in case.datasets] == [
        ds.SOPInstanceUID for ds in read_series(phantom[2])
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1, "index": 1}, "seed"),
        ({"seed": 1, "index": 0}, "index"),
        ({"seed": 1, "index": 1, "n_slices": 16}, "n_slices"),
    ],
)
def test_make_case_rejects_bad_arguments(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_case(**kwargs)


# -- DICOM validity and geometry -------------------------------------------------------------


def test_files_are_part10_mr_image_storage(phantom: list[Path]) -> None:
    for case_dir in phantom:
        for path in sorted(case_dir.glob("IM*.dcm")):
            raw = path.read_bytes()
            assert raw[128:132] == b"DICM"
            ds = pydicom.dcmread(path)  # no force: a real Part 10 file or an exception
            meta = ds.file_meta
            assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
            assert meta.MediaStorageSOPClassUID == MR_IMAGE_STORAGE == ds.SOPClassUID
            assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
                uid = UID(getattr(ds, keyword))
                assert uid.is_valid
                assert uid.startswith("2.25.")
            assert ds.Modality == "MR"
            assert ds.PhotometricInterpretation == "MONOCHROME2"
            assert (ds.BitsAllocated, ds.PixelRepresentation, ds.SamplesPerPixel) == (16, 0, 1)
            assert ds.BitsStored in (12, 16)
            assert ds.HighBit == ds.BitsStored - 1
            assert ds.Rows >= 256
            assert ds.Columns >= 256
            assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
            assert int(ds.pixel_array.max()) < 2**ds.BitsStored


def test_series_geometry_is_consistent(phantom: list[Path]) -> None:
    for case_dir in phantom:
        series = read_series(case_dir)
        assert 11 <= len(series) <= 15
        assert [int(ds.InstanceNumber) for ds in series] == list(range(1, len(series) + 1))
        assert len({ds.SeriesInstanceUID for ds in series}) == 1
        assert len({ds.FrameOfReferenceUID for ds in series}) == 1
        first = series[0]
        iop = np.array([float(v) for v in first.ImageOrientationPatient])
        np.testing.assert_allclose(iop, [0, 1, 0, 0, 0, -1])  # sagittal: A->P, H->F
        normal = np.cross(iop[:3], iop[3:])
        spacing = float(first.SpacingBetweenSlices)
        assert float(first.SliceThickness) < spacing  # a gap between slices
        row_mm, col_mm = (float(v) for v in first.PixelSpacing)
        assert row_mm == col_mm
        assert 0.9 <= row_mm <= 1.1
        assert 280 <= row_mm * first.Rows <= 330  # field of view
        positions = [np.array([float(v) for v in ds.ImagePositionPatient]) for ds in series]
        for ds, position in zip(series, positions, strict=True):
            assert [float(v) for v in ds.ImageOrientationPatient] == list(iop)
            assert float(ds.SliceLocation) == pytest.approx(float(position @ normal), abs=1e-3)
        for before, after in itertools.pairwise(positions):
            step = after - before
            assert float(step @ normal) == pytest.approx(spacing, abs=1e-3)
            np.testing.assert_allclose(step - (step @ normal) * normal, 0.0, atol=1e-3)


def test_acquisition_and_patient_are_plausible_and_fake(phantom: list[Path]) -> None:
    fields = set()
    for index, case_dir in enumerate(phantom, start=1):
        ds = pydicom.dcmread(next(case_dir.glob("IM*.dcm")))
        truth = truth_of(case_dir)
        fields.add(float(ds.MagneticFieldStrength))
        assert float(ds.MagneticFieldStrength) in (1.5, 3.0)
        assert 400 <= float(ds.RepetitionTime) <= 700
        assert 8 <= float(ds.EchoTime) <= 15
        assert (ds.ScanningSequence, ds.MRAcquisitionType) == ("SE", "2D")
        assert ds.SeriesDescription == "SAG T1"
        assert ds.BodyPartExamined == "LSPINE"
        assert ds.PatientPosition == "HFS"
        assert str(ds.PatientName) == f"PHANTOM^CASE{index:03d}"
        assert ds.PatientSex in ("F", "M")
        assert ds.PatientAge.endswith("Y")
        assert truth["field_strength_t"] == float(ds.MagneticFieldStrength)
        assert truth["tr_ms"] == float(ds.RepetitionTime)
        assert truth["te_ms"] == float(ds.EchoTime)
        assert truth["patient_id"] == ds.PatientID
        assert truth["n_slices"] == len(list(case_dir.glob("IM*.dcm")))
    assert fields == {1.5, 3.0}


def test_every_third_case_needs_the_modality_lut(phantom: list[Path]) -> None:
    """Rescaled cases store values whose raw median is far from the truth (modality units)."""
    for index, case_dir in enumerate(phantom, start=1):
        truth = truth_of(case_dir)
        mid = pydicom.dcmread(case_dir / f"IM{truth['midsagittal_instance_number']:04d}.dcm")
        assert mid.SOPInstanceUID == truth["midsagittal_sop_instance_uid"]
        rescaled = index % 3 == 0
        assert ("RescaleSlope" in mid) == rescaled
        if rescaled:
            slope, intercept = float(mid.RescaleSlope), float(mid.RescaleIntercept)
            assert (slope, intercept) != (1.0, 0.0)
            assert truth["rescale"] == {"slope": slope, "intercept": intercept}
            stored = mid.pixel_array.astype(np.float64)
            assert abs(np.median(stored) * slope + intercept - np.median(stored)) > 10


# -- truth -----------------------------------------------------------------------------------


def test_truth_sidecar_has_the_documented_shape(phantom: list[Path]) -> None:
    for case_dir in phantom:
        truth = truth_of(case_dir)
        assert set(truth) == TRUTH_KEYS
        assert truth["schema"] == SCHEMA
        assert truth["case"] == case_dir.name
        assert truth["seed"] == SEED
        assert set(truth["truth"]["levels"]) == set(LUMBAR)
        assert set(truth["truth"]["other_levels"]) == {"T12", "L5"}
        assert truth["truth"]["csf"]["level"] == "L3"
        rois = truth["rois"]
        assert rois["schema"] == "vbq.rois/1"
        assert rois["series_instance_uid"] == truth["series_instance_uid"]
        labels = [roi["label"] for roi in rois["rois"]]
        assert sorted(labels) == ["CSF", "L1", "L2", "L3", "L4"]
        for roi in rois["rois"]:
            assert roi["sop_instance_uid"] == truth["midsagittal_sop_instance_uid"]
            assert roi["shape"] == "ellipse"
            assert min(roi["radii"]) > 2
            assert roi.get("level", "L3") == "L3"
        assert set(truth["roi_sd"]) == set(labels)
        assert all(sd > 0 for sd in truth["roi_sd"].values())


def test_true_vbq_is_the_median_level_over_csf(phantom: list[Path]) -> None:
    for case_dir in phantom:
        truth = truth_of(case_dir)["truth"]
        levels = sorted(truth["levels"].values())
        assert 80 <= truth["csf"]["si"] <= 160
        assert truth["vbq"] == pytest.approx((levels[1] + levels[2]) / 2 / truth["csf"]["si"])
        assert max(levels) / min(levels) < 1.15  # a few per cent around VBQ x CSF


def test_true_vbq_spans_the_clinical_range(phantom: list[Path]) -> None:
    values = [truth_of(case_dir)["truth"]["vbq"] for case_dir in phantom]
    assert all(2.0 <= v <= 4.0 for v in values)
    assert min(values) <= 2.2
    assert max(values) >= 3.8


# -- the suggested ROIs recover the truth through the project's measurement code ---------------


def median_tolerance(noise_sd: float, roi_sd: float, n_pixels: int, slope: float) -> float:
    """Four standard errors of an ROI median, plus half a quantisation step.

    The standard error of a sample median is sqrt(pi/2) * sd / sqrt(n). ``sd`` combines the
    Rician noise (``noise_sd``, nearly Gaussian at these SNRs) with the anatomy's own variation
    over the ROI (``roi_sd``: texture, gradients, flow, partial volume) as if it were noise too.
    It is not noise (the phantom makes the noise-free median over the suggested ROI exactly the
    SI), but a spread-out signal lowers the density at the median and so widens the noisy
    median's scatter, which this bounds conservatively. Stored values are integers, so half a
    Rescale Slope step is added (with CSF noise sd of 2-6 units the median's own rounding to
    half-integers is not negligible). Over 360 generated cases (seeds 1-30) the largest error
    used 49 % of this tolerance for marrow and 66 % for CSF. The VBQ is allowed 5 %: its error
    is mostly the CSF median's (sd about 1 %, largest 3.7 % over those cases).
    """
    sd = math.hypot(noise_sd, roi_sd)
    return 4.0 * math.sqrt(math.pi / 2.0) * sd / math.sqrt(n_pixels) + 0.5 * slope


def test_suggested_rois_recover_the_truth(phantom: list[Path]) -> None:
    dicomio = pytest.importorskip("readers.measurement.dicomio")
    measure = pytest.importorskip("readers.measurement.measure")
    rois_module = pytest.importorskip("readers.measurement.rois")
    for case_dir in phantom:
        truth = truth_of(case_dir)
        roi_set = rois_module.parse_roi_set(truth["rois"])
        images = dicomio.load_images([case_dir], wanted_uids=roi_set.referenced_uids)
        result = measure.measure_vbq(roi_set, images)
        noise, roi_sd, slope = truth["noise_sd"], truth["roi_sd"], truth["rescale"]["slope"]
        for level, si in truth["truth"]["levels"].items():
            got = result["levels"][level]
            tolerance = median_tolerance(noise, roi_sd[level], got["n_pixels"], slope)
            assert got["n_pixels"] >= 150, (case_dir.name, level)
            assert got["si"] == pytest.approx(si, abs=tolerance), (case_dir.name, level)
        csf = result["csf"]
        csf_si = truth["truth"]["csf"]["si"]
        csf_tol = median_tolerance(noise, roi_sd["CSF"], csf["n_pixels"], slope)
        assert csf["n_pixels"] >= 60, case_dir.name
        assert csf["level"] == "L3"
        assert csf["si"] == pytest.approx(csf_si, abs=csf_tol)
        assert result["vbq"] == pytest.approx(truth["truth"]["vbq"], rel=0.05), case_dir.name


def moved_along(doc: dict[str, Any], labels: set[str], pixels: float) -> dict[str, Any]:
    """A copy of an ROI set with the ``labels`` ROIs moved ``pixels`` along their second axis
    (the spine's long axis: the first axis of every suggested ellipse crosses the spine)."""
    doc = copy.deepcopy(doc)
    for roi in doc["rois"]:
        if roi["label"] in labels:
            angle = math.radians(roi["angle_deg"])
            x, y = roi["center"]
            roi["center"] = [x - pixels * math.sin(angle), y + pixels * math.cos(angle)]
    return doc


def test_roi_placement_changes_the_median_as_in_real_images(phantom: list[Path]) -> None:
    """Marrow and CSF are heterogeneous (gradients, fatty endplate zones, flow, partial volume),
    so where a reader puts an ROI matters: without that, readers would agree perfectly.

    Moved 5 px along the sac (it stays in CSF), the CSF ROI's median changes by several per
    cent; moved 3 px along the spine (it stays in marrow), a marrow ROI's by a few per cent.
    The larger change of the two directions is taken: a gradient may be flat on one side.
    """
    dicomio = pytest.importorskip("readers.measurement.dicomio")
    measure = pytest.importorskip("readers.measurement.measure")
    rois_module = pytest.importorskip("readers.measurement.rois")
    csf_changes: list[float] = []
    marrow_changes: list[float] = []
    for case_dir in phantom:
        doc = truth_of(case_dir)["rois"]
        roi_set = rois_module.parse_roi_set(doc)
        images = dicomio.load_images([case_dir], wanted_uids=roi_set.referenced_uids)
        base = measure.measure_vbq(roi_set, images)
        moves = [
            measure.measure_vbq(rois_module.parse_roi_set(moved_along(doc, {"CSF"}, 5 * s)), images)
            for s in (-1, 1)
        ]
        csf_changes.append(max(abs(m["csf"]["si"] / base["csf"]["si"] - 1) for m in moves))
        moves = [
            measure.measure_vbq(
                rois_module.parse_roi_set(moved_along(doc, set(LUMBAR), 3 * s)), images
            )
            for s in (-1, 1)
        ]
        for level in LUMBAR:
            si = base["levels"][level]["si"]
            marrow_changes.append(max(abs(m["levels"][level]["si"] / si - 1) for m in moves))
    assert np.mean(csf_changes) >= 0.03
    assert np.mean(np.array(csf_changes) >= 0.03) >= 0.5
    assert np.mean(marrow_changes) >= 0.02
    assert max(csf_changes + marrow_changes) < 0.3  # heterogeneous, not chaotic


def test_is_phantom_output_recognises_only_its_own_folders(
    phantom: list[Path], tmp_path: Path
) -> None:
    assert is_phantom_output(phantom[0].parent)
    assert not is_phantom_output(tmp_path)  # empty: nothing to replace
    (tmp_path / "case-001").mkdir()
    (tmp_path / "case-001" / "notes.txt").write_text("mine", encoding="utf-8")
    assert not is_phantom_output(tmp_path)
    with pytest.raises(ValueError, match=r"notes\.txt"):
        write_phantom(tmp_path, cases=1, seed=1)
    assert [p.name for p in (tmp_path / "case-001").iterdir()] == ["notes.txt"]


# -- wrong series (``write_phantom(wrong_series=...)``, ``make_phantom --wrong-series``) -------


def floats(value: Any) -> list[float]:
    return [float(v) for v in value]


def test_wrong_series_are_axial_t2_or_post_contrast_and_ineligible() -> None:
    case = make_case(SEED, 2)
    t1 = case.datasets[0]
    before = [copy.deepcopy(ds) for ds in case.datasets]
    axial = wrong_series_datasets(SEED, 2, "axial-t2")
    contrast = wrong_series_datasets(SEED, 2, "post-contrast")
    assert len(axial) == len(contrast) == len(case.datasets)

    for ds in axial:
        assert floats(ds.ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]
        assert (float(ds.RepetitionTime), float(ds.EchoTime)) == (3000.0, 90.0)
        assert ds.SeriesDescription == "AX T2"
        assert "ContrastBolusAgent" not in ds
    # Distinct axial slices (4 mm apart along z), each SliceLocation on its own position.
    z = [floats(ds.ImagePositionPatient)[2] for ds in axial]
    assert [float(ds.SliceLocation) for ds in axial] == z
    assert np.allclose(np.diff(z), -4.0)
    for ds in contrast:
        assert ds.ContrastBolusAgent == "Gadobutrol"
        # Nothing else gives it away: still a sagittal T1 described as such.
        assert floats(ds.ImageOrientationPatient) == floats(t1.ImageOrientationPatient)
        assert (ds.RepetitionTime, ds.EchoTime) == (t1.RepetitionTime, t1.EchoTime)
        assert ds.SeriesDescription == "SAG T1"

    # Same patient, study and frame; a series (and SOP Instance UIDs) of their own.
    series = [case.datasets, axial, contrast]
    for datasets in series:
        assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
        assert {(ds.PatientID, ds.StudyInstanceUID, ds.FrameOfReferenceUID) for ds in datasets} == {
            (t1.PatientID, t1.StudyInstanceUID, t1.FrameOfReferenceUID)
        }
        assert [int(ds.InstanceNumber) for ds in datasets] == list(range(1, len(datasets) + 1))
        for ds in datasets:
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert UID(ds.SeriesInstanceUID).is_valid
            assert UID(ds.SOPInstanceUID).is_valid
    assert len({datasets[0].SeriesInstanceUID for datasets in series}) == 3
    sops = [ds.SOPInstanceUID for datasets in series for ds in datasets]
    assert len(set(sops)) == len(sops)

    # What the ingest makes of them: only the T1 series may be read.
    assert classify_series(case.datasets).eligible
    judged_axial = classify_series(axial)
    assert not judged_axial.eligible
    assert judged_axial.orientation == "axial"
    assert any("axial slices" in r for r in judged_axial.reasons)
    assert any("TR 3000 ms" in r for r in judged_axial.reasons)
    assert any("TE 90 ms" in r for r in judged_axial.reasons)
    judged_contrast = classify_series(contrast)
    assert not judged_contrast.eligible
    assert judged_contrast.contrast is True
    assert judged_contrast.orientation == "sagittal"

    # Deterministic, and the case they were made from is left as it was.
    again = wrong_series_datasets(SEED, 2, "axial-t2")
    assert [ds.SOPInstanceUID for ds in again] == [ds.SOPInstanceUID for ds in axial]
    assert [ds.SOPInstanceUID for ds in make_case(SEED, 2).datasets] == [
        ds.SOPInstanceUID for ds in before
    ]
    assert wrong_series_datasets(SEED + 1, 2, "axial-t2")[0].SeriesInstanceUID != (
        axial[0].SeriesInstanceUID
    )


def test_wrong_series_rejects_an_unknown_kind(tmp_path: Path) -> None:
    assert WRONG_SERIES_KINDS == ("axial-t2", "post-contrast")
    with pytest.raises(ValueError, match="unknown wrong series 'sag-t2'"):
        wrong_series_datasets(SEED, 1, "sag-t2")
    with pytest.raises(ValueError, match="unknown wrong series 'dwi'"):
        write_phantom(tmp_path / "out", cases=1, seed=1, wrong_series=["axial-t2", "dwi"])
    with pytest.raises(TypeError, match="not a string"):
        write_phantom(tmp_path / "out", cases=1, seed=1, wrong_series="axial-t2")
    assert list(tmp_path.iterdir()) == []


def test_write_phantom_adds_wrong_series_beside_the_t1(tmp_path: Path) -> None:
    kinds = ["post-contrast", "axial-t2", "post-contrast"]  # a repeat is written once
    [case_dir] = write_phantom(tmp_path / "mixed", cases=1, seed=5, wrong_series=kinds)
    [plain_dir] = write_phantom(tmp_path / "plain", cases=1, seed=5)
    truth = truth_of(case_dir)
    n = truth["n_slices"]
    t1_names = [f"IM{k:04d}.dcm" for k in range(1, n + 1)]
    names = sorted(p.name for p in case_dir.iterdir())
    assert names == sorted(
        [*t1_names, "rois.json", "truth.json"]
        + [f"IM{2000 + k:04d}.dcm" for k in range(1, n + 1)]
        + [f"IM{3000 + k:04d}.dcm" for k in range(1, n + 1)]
    )
    # The T1 files and the truth are exactly those written without wrong series.
    for name in [*t1_names, "truth.json", "rois.json"]:
        assert (case_dir / name).read_bytes() == (plain_dir / name).read_bytes()
    by_series: dict[str, list[str]] = {}
    for path in sorted(case_dir.glob("IM*.dcm")):
        ds = pydicom.dcmread(path)  # valid Part 10 files, like the T1 ones
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(path.name)
    assert len(by_series) == 3
    assert by_series[truth["series_instance_uid"]] == t1_names
    assert truth["rois"]["series_instance_uid"] == truth["series_instance_uid"]
    axial = pydicom.dcmread(case_dir / "IM2001.dcm")
    contrast = pydicom.dcmread(case_dir / "IM3001.dcm")
    assert axial.SeriesDescription == "AX T2"
    assert contrast.ContrastBolusAgent == "Gadobutrol"
    assert axial.SeriesInstanceUID == wrong_series_datasets(5, 1, "axial-t2")[0].SeriesInstanceUID

    # Still recognised as phantom output: a re-run replaces it, wrong series and all.
    assert is_phantom_output(tmp_path / "mixed")
    write_phantom(tmp_path / "mixed", cases=1, seed=5)
    assert sorted(p.name for p in case_dir.iterdir()) == sorted(p.name for p in plain_dir.iterdir())
