"""Series eligibility for VBQ: every failed rule is a reason, every passed rule is reported."""

from __future__ import annotations

import copy

import pydicom
import pytest
from pydicom.dataset import Dataset

from studies.ingest.deid_engine import DeidConfig, deidentify_dataset
from studies.ingest.eligibility import classify_series
from studies.phantom.case import make_case
from tests.helpers.paths import SHARED_DATA

DATA = SHARED_DATA
AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


@pytest.fixture(scope="module")
def phantom() -> list[Dataset]:
    return list(make_case(3, 1, n_slices=11).datasets)


def _copy(datasets: list[Dataset], **attrs: object) -> list[Dataset]:
    out = []
    for ds in datasets:
        ds = copy.deepcopy(ds)
        for keyword, value in attrs.items():
            setattr(ds, keyword, value)
        out.append(ds)
    return out


def test_phantom_series_is_eligible(phantom: list[Dataset]) -> None:
    result = classify_series(phantom)
    assert result.eligible, result.reasons
    assert result.reasons == []
    assert result.orientation == "sagittal"
    assert result.n_slices == 11
    assert result.modality == "MR"
    assert result.contrast is False
    assert result.field_strength_t in (1.5, 3.0)
    assert result.manufacturer == "VBQ Phantom"
    assert any(p.startswith("TR ") for p in result.passed)
    assert "no contrast agent recorded" in result.passed
    assert result.to_dict()["eligible"] is True


def test_still_eligible_after_deidentification(phantom: list[Dataset]) -> None:
    config = DeidConfig(secret=b"eligibility-secret")
    cleaned = [deidentify_dataset(ds, config=config).dataset for ds in _copy(phantom)]
    result = classify_series(cleaned)
    assert result.eligible, result.reasons


def test_axial_t2_lists_every_failed_rule(phantom: list[Dataset]) -> None:
    series = _copy(phantom, ImageOrientationPatient=AXIAL, RepetitionTime="4000", EchoTime="95")
    for k, ds in enumerate(series):
        ds.ImagePositionPatient = [0.0, 0.0, float(k) * 5]
    result = classify_series(series)
    assert not result.eligible
    assert result.orientation == "axial"
    assert "axial slices: VBQ needs a sagittal series" in result.reasons
    assert "TR 4000 ms is far above the T1 spin-echo range 300–1000 ms" in result.reasons
    assert "TE 95 ms is far above the T1 spin-echo range 5–30 ms" in result.reasons
    assert "modality MR" in result.passed


@pytest.mark.parametrize(
    ("attrs", "contrast"),
    [
        ({"SeriesDescription": "SAG T1 +C"}, True),
        ({"SeriesDescription": "T1 SAG POST"}, True),
        ({"ProtocolName": "t1_tse_sag_gad"}, True),
        ({"SeriesDescription": "T1 FS C+"}, True),
        ({"ContrastBolusAgent": "Gadovist"}, True),
        ({"SeriesDescription": "SAG T1 pre"}, False),
        ({"SeriesDescription": "T1 non-contrast"}, False),
        ({"SeriesDescription": "T1 without gad"}, False),
        ({"SeriesDescription": "SAG T1 posterior"}, False),
        ({"ContrastBolusAgent": "NONE"}, False),
    ],
)
def test_contrast_rules(phantom: list[Dataset], attrs: dict[str, object], contrast: bool) -> None:
    result = classify_series(_copy(phantom, **attrs))
    assert result.contrast is contrast
    assert result.eligible is not contrast
    if contrast:
        assert any("contrast" in r for r in result.reasons)


def test_contrast_survives_deidentification(phantom: list[Dataset]) -> None:
    config = DeidConfig(secret=b"eligibility-secret")
    series = _copy(phantom, ContrastBolusAgent="Dotarem 15 ml")
    cleaned = [deidentify_dataset(ds, config=config).dataset for ds in series]
    result = classify_series(cleaned)
    assert result.contrast is True
    assert not result.eligible


def test_too_few_slices_and_custom_ranges(phantom: list[Dataset]) -> None:
    result = classify_series(phantom[:3])
    assert "3 slice(s): at least 5 needed" in result.reasons
    assert classify_series(phantom[:3], min_slices=3).eligible
    tr = float(phantom[0].RepetitionTime)
    narrow = classify_series(phantom, tr_range_ms=(tr + 10, tr + 100))
    assert not narrow.eligible
    assert any(r.startswith(f"TR {tr:g} ms is below") for r in narrow.reasons)


def test_missing_parameters_are_reasons(phantom: list[Dataset]) -> None:
    series = _copy(phantom)
    for ds in series:
        del ds.RepetitionTime
        del ds.ImageOrientationPatient
    result = classify_series(series)
    assert "TR not recorded: T1 weighting cannot be judged" in result.reasons
    assert any("orientation" in r for r in result.reasons)


def test_not_mr(phantom: list[Dataset]) -> None:
    result = classify_series(_copy(phantom, Modality="CT"))
    assert "modality CT: VBQ is measured on MR images" in result.reasons


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_real_3d_gradient_echo_brain_series_is_ineligible() -> None:
    folder = DATA / "real-mr-sagittal-t1-brain"
    if not folder.is_dir():
        pytest.skip(f"shared test data not found at {folder} (see ../shared/data/README.md)")
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("*.dcm"))]
    result = classify_series(headers)
    assert not result.eligible
    assert "TR 6.96 ms is far below the T1 spin-echo range 300–1000 ms" in result.reasons
    assert any(r.startswith("3D gradient echo") for r in result.reasons)
    assert result.orientation == "sagittal"
    assert result.n_slices == 196
    assert result.field_strength_t == 3.0
    assert result.manufacturer == "GE MEDICAL SYSTEMS"
    assert result.acquisition_type == "3D"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_enhanced_mr_parameters_from_functional_groups() -> None:
    path = DATA / "enhanced-mr" / "Siemens__XA10__6_1.dcm"
    if not path.is_file():
        pytest.skip(f"shared test data not found at {path}")
    result = classify_series([pydicom.dcmread(path)])
    assert result.tr_ms == 500.0
    assert result.te_ms == 30.0
    assert result.orientation == "axial"
    assert result.n_slices == 6
    assert any("Echo Pulse Sequence GRADIENT" in r for r in result.reasons)
