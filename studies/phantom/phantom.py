"""Synthetic sagittal T1-weighted lumbar spine series with a known VBQ, written as real DICOM.

Why a phantom: no openly licensed lumbar spine MRI with a known marrow and CSF signal exists, yet
every part of the project (ingest, viewer, ROI geometry, measurement, agreement statistics) needs
series whose answer is known in advance. The phantom draws that answer first and then paints an
image that honours it:

* **Truth first.** Per case a VBQ is drawn in [2.0, 4.0] (stratified in blocks of ten cases so that
  any ten consecutive cases 1-10, 11-20, ... hit every 0.2-wide band once), a CSF signal in
  [80, 160], and L1-L4 marrow signals spread a few per cent around ``VBQ x CSF`` whose median (the
  mean of the middle two) is exactly ``VBQ x CSF``. All truth is in modality units (after Rescale
  Slope/Intercept).
* **Heterogeneous like a patient.** Were marrow and CSF uniform, any two readers' ROIs would give
  the same medians and inter-reader ICCs near 1, which no real VBQ study sees (about 0.8-0.95).
  So within each body the marrow has a head-to-feet gradient (6-14 %, either sign) and a
  front-to-back one, brighter fatty zones under the endplates (up to +25 %, fading over
  5-7 mm), a smooth low-frequency field (sd 5-7 %, Gaussian sigma 7 mm) and a fine texture
  (sd ``texture_sd_rel``);
  the CSF gets brighter caudally (flow slows; +-12-20 % over 10-16 mm, centred near L3), carries
  two flow waves along the sac, a front-to-back gradient, partial-volume brightening at the dura
  and around the roots, filum and conus (fading over 1-2 mm), and off the midline from the
  lateral dura. A suggested ROI moved 3 px (marrow) or 5 px along the sac (CSF) thus changes its
  median by a few per cent, and three readers with realistic hand jitter agree with an ICC of
  about 0.9. ``roi_sd`` in ``truth.json`` gives the noise-free sd over each suggested ROI.
  The smooth fields are shared by neighbouring slices (blended by lateral offset), the texture
  is not; the heterogeneity draws come from a stream of their own, so the truth and geometry of a
  seed do not depend on them.
* **Unbiased where it matters.** Marrow and CSF variations are multiplicative and smooth; after
  painting, each body (and the CSF) is offset so that the median of the noise-free image over its
  suggested ROI on the midsagittal slice (over its marrow >= 3 mm inside the cortex on other
  slices; the CSF of other slices keeps the midsagittal gain) *is* the true SI. Every suggested
  ROI is checked to stay, grown by 2 mm, inside its own tissue (not cortex, endplate,
  basivertebral cleft, root, dura), or generation fails. Noise is Rician (magnitude of complex
  Gaussian noise of sd ``noise_sd`` per channel); the noise-free amplitude is set to
  ``sqrt(SI^2 - sd^2)`` so that the *median of the noisy magnitude* of a pixel equals its SI to
  well under 0.1 % at the SNRs used (checked numerically: SNR 8 gives +0.02 %). A reader's
  median over the suggested ROI therefore recovers the truth within sampling noise, which the
  heterogeneity widens (the CSF median scatters by 0.5-1 %, noise alone would give 0.4 %).
* **Looks like a spine.** T11/T12-sacrum along a lordotic curve with a sacral kink; rounded
  vertebral bodies with a dark cortex and endplates and a posterior basivertebral cleft; discs that
  bulge a little; a thecal sac with the conus ending at L1-L2 and cauda equina roots lying dorsally
  (supine); posterior elements, ligamentum flavum, epidural fat, paraspinal muscle, subcutaneous
  fat, prevertebral vessels, bowel, air. Structures narrow or vanish on parasagittal slices the way
  they do in patients (body depth, sac width, pedicles and foramina laterally, psoas).
* **Wrong series on request.** A real study holds more than the sagittal T1, so
  :func:`wrong_series_datasets` (and ``write_phantom(..., wrong_series=...)``) adds an axial T2
  or a post-contrast T1 series to a case, for the ingest to judge ineligible; the truth keeps
  describing the T1 series only.
* **Deterministic.** Every random draw comes from ``numpy.random.SeedSequence([seed, index, ...])``
  and every UID is a ``2.25.`` UID hashed from the seed, so one seed gives byte-identical files on
  one platform; nothing time-dependent is written.

Image coordinates follow spec section 2: ``(x, y) = (column, row)`` with the centre of the first
pixel at (0, 0); physically ``u = x * spacing`` runs anterior to posterior and ``v = y * spacing``
head to feet (IOP ``[0, 1, 0, 0, 0, -1]``).

Pure module: numpy and pydicom only (no Django), ``mypy --strict`` clean.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

__all__ = [
    "MR_IMAGE_STORAGE",
    "SCHEMA",
    "WRONG_SERIES_KINDS",
    "PhantomCase",
    "is_phantom_output",
    "make_case",
    "write_phantom",
    "wrong_series_datasets",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int16]
Window = tuple[slice, slice]
Painter = Callable[[Window, BoolArray, "float | FloatArray", int], None]
FULL: Final[Window] = (slice(None), slice(None))

SCHEMA: Final = "vbq.phantom/1"
ROI_SCHEMA: Final = "vbq.rois/1"
MR_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.4"
LUMBAR: Final = ("L1", "L2", "L3", "L4")
VBQ_LOW: Final = 2.0
VBQ_HIGH: Final = 4.0
VBQ_BLOCK: Final = 10
CSF_LEVEL: Final = "L3"
# Second series a real lumbar study also holds, which the ingest must judge ineligible for VBQ
# (see :func:`wrong_series_datasets`).
WRONG_SERIES_KINDS: Final = ("axial-t2", "post-contrast")
# First file number (``IM2001.dcm`` ...) of each variant in a case folder: far above the 11-15
# slices of the sagittal T1, so the names never collide; Series Number as a scanner would give it.
_WRONG_SERIES_FIRST_FILE: Final = {"axial-t2": 2001, "post-contrast": 3001}
_WRONG_SERIES_NUMBER: Final = {"axial-t2": "5", "post-contrast": "7"}
_AXIAL_IOP: Final = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_AXIAL_SPACING_MM: Final = 4.0

_CASE_DIR = re.compile(r"^case-\d{3,}$")
_CASE_FILE = re.compile(r"^(IM\d{4}\.dcm|truth\.json|rois\.json)$")
_IMPLEMENTATION_VERSION: Final = "VBQPHANTOM_1"
_ROOT_HALF_WIDTH: Final = 0.55  # mm
_FILUM: Final = 0.82  # position of the filum terminale, as a fraction of the sac's depth
_ROI_MARGIN_MM: Final = 2.0  # every suggested ROI, grown by this, must stay in its tissue

# Tissue labels of the label map (used to verify that the suggested ROIs sit in pure tissue).
AIR, FAT, MUSCLE, SKIN, BOWEL, VESSEL, DISC, CORTEX, MARROW = range(9)
BVV, CSF, CORD, ROOT, EPIFAT, LIGAMENT, POST_MARROW = range(9, 16)


_SOFT_TISSUE: Final = np.isin(np.arange(16), [FAT, MUSCLE, SKIN, DISC, EPIFAT, CORD, LIGAMENT])
_MARROW: Final = np.isin(np.arange(16), [MARROW, POST_MARROW])

# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhantomCase:
    """One generated case: the DICOM instances (InstanceNumber order) and its truth document.

    ``truth`` is exactly what ``truth.json`` holds; ``midsagittal_index`` is the 0-based position of
    the midsagittal instance in ``datasets`` (the one the truth ROIs reference).
    """

    name: str
    datasets: list[Dataset]
    truth: dict[str, Any]
    midsagittal_index: int

    @property
    def file_names(self) -> list[str]:
        """File names used by :func:`write_phantom`, ``IM0001.dcm`` ... in instance order."""
        return [f"IM{i + 1:04d}.dcm" for i in range(len(self.datasets))]


def make_case(
    seed: int,
    index: int,
    *,
    n_slices: int | None = None,
    rescaled: bool | None = None,
) -> PhantomCase:
    """Generate case number ``index`` (1-based, ``case-001`` is index 1) of the phantom ``seed``.

    Cases are independent: case 7 is the same whether 7 or 15 cases are generated. ``n_slices``
    (11-15) and ``rescaled`` override the seeded choices (by default every third case stores pixels
    with a Rescale Slope/Intercept other than 1/0), e.g. for benchmarks that want a fixed size.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if index < 1:
        raise ValueError(f"index must be >= 1, got {index}")
    if n_slices is not None and not 11 <= n_slices <= 15:
        raise ValueError(f"n_slices must be between 11 and 15, got {n_slices}")
    params = _draw_params(seed, index, n_slices=n_slices, rescaled=rescaled)
    anatomy = _Anatomy(params)
    images: list[npt.NDArray[np.uint16]] = []
    mid = params.mid_index
    rois: list[dict[str, Any]] = []
    roi_sd: dict[str, float] = {}
    for k, x_lat in enumerate(params.slice_lateral_mm):
        rng = np.random.default_rng(np.random.SeedSequence([seed, index, 1000 + k]))
        if k == mid:
            rois = anatomy.suggested_rois(x_lat)
            pixels, roi_sd = anatomy.render(x_lat, rng, rois)
        else:
            pixels, _ = anatomy.render(x_lat, rng, None)
        images.append(pixels)
    datasets = [_dataset(params, k, pix) for k, pix in enumerate(images)]
    truth = _truth_document(params, datasets, rois, roi_sd)
    return PhantomCase(
        name=params.name, datasets=datasets, truth=truth, midsagittal_index=params.mid_index
    )


def is_phantom_output(path: Path) -> bool:
    """True when ``path`` is a directory holding nothing but earlier phantom case folders.

    This is what makes it safe for :func:`write_phantom` to replace its contents: every entry is a
    ``case-NNN`` folder holding only ``IM####.dcm`` files and a ``truth.json`` of this schema. An
    empty directory is not phantom output (it needs no replacing) and returns False.
    """
    return path.is_dir() and _foreign_entry(path) is None and any(path.iterdir())


def write_phantom(
    out_dir: Path, *, cases: int, seed: int, wrong_series: Sequence[str] = ()
) -> list[Path]:
    """Write ``cases`` cases under ``out_dir`` and return the case folders, in order.

    Layout: ``out_dir/case-001/IM0001.dcm ...``, ``out_dir/case-001/truth.json`` and
    ``out_dir/case-001/rois.json`` (the suggested ROI set alone, for ``measure_vbq --rois``).

    ``wrong_series`` names variants of :data:`WRONG_SERIES_KINDS` to add to every case as a
    further series (see :func:`wrong_series_datasets`; a kind named twice is written once):
    ``IM2001.dcm ...`` for ``"axial-t2"``, ``IM3001.dcm ...`` for ``"post-contrast"``. The truth
    and its ROIs still describe the sagittal T1 series alone (its ``n_slices`` counts only that
    series), so a reader of the folder picks the T1 files by their Series Instance UID.

    ``out_dir`` may be missing, empty, or a previous phantom output (see :func:`is_phantom_output`),
    whose case folders are then replaced so that no stale case survives. Anything else raises
    ``ValueError`` naming the offending entry: the writer never deletes what it did not write.
    Everything is generated into a sibling temporary folder first, so a failure leaves ``out_dir``
    as it was.
    """
    if cases < 1:
        raise ValueError(f"cases must be >= 1, got {cases}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    kinds = _wrong_series_kinds(wrong_series)
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ValueError(f"{out_dir}: exists and is not a directory")
        foreign = _foreign_entry(out_dir)
        if foreign is not None:
            raise ValueError(
                f"{out_dir}: not empty and not a previous phantom output ({foreign.name!r})"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        names: list[str] = []
        for index in range(1, cases + 1):
            case = make_case(seed, index)
            case_dir = staging / case.name
            case_dir.mkdir()
            for name, ds in zip(case.file_names, case.datasets, strict=True):
                dcmwrite(case_dir / name, ds, enforce_file_format=True)
            for kind in kinds:
                first = _WRONG_SERIES_FIRST_FILE[kind]
                for k, ds in enumerate(_wrong_series(case, kind)):
                    dcmwrite(case_dir / f"IM{first + k:04d}.dcm", ds, enforce_file_format=True)
            (case_dir / "truth.json").write_text(
                json.dumps(case.truth, indent=2, sort_keys=False) + "\n", encoding="utf-8"
            )
            # The suggested ROIs alone, ready for ``manage.py measure_vbq --rois``.
            (case_dir / "rois.json").write_text(
                json.dumps(case.truth["rois"], indent=2) + "\n", encoding="utf-8"
            )
            names.append(case.name)
        if out_dir.exists():
            for old in sorted(out_dir.iterdir()):
                shutil.rmtree(old)
            for name in names:
                os.replace(staging / name, out_dir / name)
            staging.rmdir()
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out_dir / name for name in names]


def wrong_series_datasets(seed: int, index: int, kind: str) -> list[Dataset]:
    """A second series of phantom case ``index`` that VBQ must not be read on.

    Why: a lumbar spine study as it leaves a PACS holds more than the sagittal T1, and the
    ingest has to judge every other series ineligible yet still select the T1. Each variant
    fails different rules of ``studies.ingest.untrusted.classify_series``:

    * ``"axial-t2"``: axial slices (IOP ``[1, 0, 0, 0, 1, 0]``, 4 mm apart along the patient's
      feet-head axis) with TR 3000 ms and TE 90 ms, described ``AX T2``;
    * ``"post-contrast"``: the sagittal T1 itself after gadolinium, with Contrast/Bolus Agent
      set and *nothing else* giving it away (still described ``SAG T1``), so the agent alone
      must exclude it.

    The variant shares the case's patient, study and frame of reference (it joins the case as
    another series) and has its own Series and SOP Instance UIDs, hashed from the seed like every
    phantom UID, so one seed gives identical files. Its pixels are the T1 slices': the ingest
    judges headers, and no truth is claimed for these images. Instance Numbers run 1..n as in
    any series. Raises ``ValueError`` for a kind not in :data:`WRONG_SERIES_KINDS` (and for the
    arguments :func:`make_case` refuses).
    """
    _wrong_series_kinds([kind])
    return _wrong_series(make_case(seed, index), kind)


def _wrong_series_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """The requested variants, checked, each once and in the order first named."""
    if isinstance(kinds, str):
        raise TypeError("wrong_series must be a sequence of kinds, not a string")
    for kind in kinds:
        if kind not in WRONG_SERIES_KINDS:
            raise ValueError(
                f"unknown wrong series {kind!r}; choose from {', '.join(WRONG_SERIES_KINDS)}"
            )
    return tuple(dict.fromkeys(kinds))


def _wrong_series(case: PhantomCase, kind: str) -> list[Dataset]:
    """The ``kind`` variant of ``case``'s T1 series (see :func:`wrong_series_datasets`)."""
    seed, index = case.truth["seed"], case.truth["index"]
    series_uid = UID(_uid(seed, index, "series", kind))
    out: list[Dataset] = []
    for k, source in enumerate(case.datasets):
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


def _foreign_entry(path: Path) -> Path | None:
    """The first entry of ``path`` that the phantom writer did not create, or None."""
    for entry in sorted(path.iterdir()):
        if not (entry.is_dir() and _CASE_DIR.match(entry.name)):
            return entry
        for item in sorted(entry.iterdir()):
            if not (item.is_file() and _CASE_FILE.match(item.name)):
                return item
        truth = entry / "truth.json"
        try:
            doc = json.loads(truth.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return truth
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            return truth
    return None


# --------------------------------------------------------------------------------------------
# Parameters drawn per case
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Vertebra:
    """A vertebral body (or sacral segment) in its own rigid frame along the spine curve."""

    name: str
    s: float  # arc length of the centre along the curve (mm, 0 at L3, positive feet-ward)
    height: float  # mm along the curve
    depth: float  # mm, anterior-posterior
    marrow: float  # SI of the trabecular marrow (modality units)
    sacral: bool
    # Smooth marrow heterogeneity, relative to ``marrow``: a linear gradient from the body's
    # centre to its endplates (head to feet, + brighter caudally) and to its walls (anterior to
    # posterior), and the peak of the brighter fatty zone under each endplate.
    grad_si: float = 0.0
    grad_ap: float = 0.0
    fat_top: float = 0.0
    fat_bottom: float = 0.0


@dataclass(frozen=True)
class _Sac:
    """The thecal sac in the canal window: curve coordinates and its walls (all mm)."""

    s: FloatArray
    d: FloatArray
    front: FloatArray  # anterior wall, ignoring disc bulges
    back: FloatArray
    dura_front: FloatArray  # anterior wall, indented by the discs
    ap: FloatArray
    mask: BoolArray
    cord_r: FloatArray  # cord / conus radius in this slice (0 below the conus)


@dataclass(frozen=True)
class _Params:
    """Everything drawn for one case, in millimetres and modality units; rendering adds no
    randomness beyond per-slice noise and texture shifts."""

    seed: int
    index: int
    name: str
    # acquisition
    n: int  # rows = columns
    spacing: float  # mm, square pixels
    spacing_str: str
    thickness: float
    slice_spacing: float
    slice_lateral_mm: tuple[float, ...]  # lateral offset of each slice from the midline (left +)
    mid_index: int
    midline_x_mm: float  # patient x of the anatomical midline
    ipp_y0: float
    ipp_z0: float
    field_t: float
    tr_ms: float
    te_ms: float
    etl: int
    flip_deg: float
    slope: float
    intercept: float
    bits_stored: int
    noise_sd: float
    texture_rel: float
    # heterogeneity, relative to the tissue's SI (the module docstring gives the ranges)
    marrow_field_rel: float  # sd of the smooth low-frequency marrow field
    endplate_fat_mm: float  # decay length of the fatty zones under the endplates
    csf_trend: tuple[float, float, float]  # (amplitude, centre s, width mm): brighter caudally
    csf_flow: tuple[tuple[float, float, float], ...]  # (amplitude, wavelength mm, phase) along s
    csf_ap_rel: float  # front-to-back CSF gradient across the sac (flow is not uniform)
    csf_wall_rel: float  # partial-volume brightening at the dura (peak)
    csf_wall_mm: float  # ... and its decay length
    csf_root_rel: float  # partial-volume brightening around roots, filum and conus (peak)
    csf_root_mm: float
    csf_field_rel: float  # sd of a smooth low-frequency CSF field
    # patient
    sex: str
    age: int
    height_m: float
    weight_kg: float
    study_date: str
    # truth
    csf: float
    levels: dict[str, float]  # T12, L1..L5
    vbq: float
    # tissue signal (modality units)
    tissue: dict[str, float]
    # anatomy
    vertebrae: tuple[_Vertebra, ...]
    discs: tuple[tuple[float, float, float, float], ...]  # (s_top, s_bottom, bulge, si)
    lordosis_deg: float
    sacral_slope_deg: float
    l3_u: float
    l3_v: float
    canal_ap: float  # bony canal, posterior body wall to lamina (mm)
    sac_ap: float
    sac_half_width: float
    epidural_ant: float
    conus_tip_s: float
    sac_end_s: float
    roots: tuple[tuple[float, float, float, float], ...]  # (fraction, s_exit, phase, amp)
    body_half_width: float
    spinous_len: float
    spinous_tilt_deg: float
    aorta: tuple[float, float, float]  # lateral x, radius, bifurcation s
    front_depth: float
    sc_fat_back: float
    sc_fat_front: float
    envelope_phase: tuple[float, float, float]


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


def _stratified_vbq(seed: int, index: int, u: float) -> float:
    """VBQ for case ``index``: one 0.2-wide stratum of [2, 4] per case within each block of ten."""
    block, pos = divmod(index - 1, VBQ_BLOCK)
    perm = np.random.default_rng(np.random.SeedSequence([seed, 7, block])).permutation(VBQ_BLOCK)
    width = (VBQ_HIGH - VBQ_LOW) / VBQ_BLOCK
    return VBQ_LOW + width * (float(perm[pos]) + 0.02 + 0.96 * u)


def _draw_params(seed: int, index: int, *, n_slices: int | None, rescaled: bool | None) -> _Params:
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))

    def uni(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    # Acquisition. Matrix and pixel size give a ~300 mm field of view.
    n, spacing_str = [(320, "0.9375"), (288, "1.041667"), (304, "0.986842"), (320, "1")][
        int(rng.integers(4))
    ]
    spacing = float(spacing_str)
    drawn_count = int(rng.integers(11, 16))  # always drawn: overrides change nothing else
    count = drawn_count if n_slices is None else n_slices
    thickness = [3.0, 3.5, 4.0][int(rng.integers(3))]
    gap = round(uni(0.3, 0.9), 1)
    slice_spacing = round(thickness + gap, 1)
    # The anatomical midline falls within +-1 mm of the central slice (a well-positioned scan).
    centre = (count - 1) // 2 + (int(rng.integers(2)) if count % 2 == 0 else 0)
    mid_offset = round(uni(-1.0, 1.0), 2)
    lateral = tuple(round((centre - k) * slice_spacing + mid_offset, 3) for k in range(count))
    mid_index = int(np.argmin(np.abs(np.array(lateral))))
    field_t = 1.5 if rng.uniform() < 0.5 else 3.0
    tr_ms = float(round(uni(400, 700)))
    te_ms = round(uni(8.0, 15.0), 1)
    etl = int(rng.integers(2, 5))
    flip = 90.0 if field_t == 1.5 else 150.0
    is_rescaled = (index % 3 == 0) if rescaled is None else rescaled
    slope, intercept = round(uni(0.35, 0.8), 6), float(-int(rng.integers(10, 60)))
    if is_rescaled:
        bits = 16  # values / slope need more than 12 bits
    else:
        slope, intercept, bits = 1.0, 0.0, 12

    # Truth. The L1-L4 median is VBQ x CSF exactly (before rounding to 0.01).
    vbq_drawn = _stratified_vbq(seed, index, uni(0.0, 1.0))
    csf = round(uni(80.0, 160.0), 2)
    spread = rng.uniform(0.94, 1.06, size=4)
    ordered = np.sort(spread)
    spread = spread / (0.5 * (ordered[1] + ordered[2]))
    lumbar = {
        name: round(vbq_drawn * csf * float(f), 2) for name, f in zip(LUMBAR, spread, strict=True)
    }
    ordered_si = sorted(lumbar.values())
    vbq = 0.5 * (ordered_si[1] + ordered_si[2]) / csf
    levels = {
        "T12": round(vbq_drawn * csf * uni(0.95, 1.04), 2),
        **lumbar,
        "L5": round(vbq_drawn * csf * uni(0.97, 1.06), 2),
    }
    noise_sd = round(csf / uni(26.0, 38.0), 3)
    texture_rel = round(uni(0.045, 0.07), 4)

    fat = csf * uni(4.6, 5.6)
    muscle = csf * uni(1.5, 1.9)
    tissue = {
        "fat": fat,
        "epifat": fat * 0.92,
        "muscle": muscle,
        "skin": muscle * 1.2,
        "disc": csf * min(uni(1.4, 1.8), 0.8 * vbq_drawn),
        "cortex": csf * 0.22,
        "ligament": csf * 0.55,
        "flavum": muscle * 0.9,
        "cord": csf * uni(1.9, 2.3),
        "root": csf * uni(1.6, 1.85),
        "vessel": csf * 0.35,
        "bowel": csf * uni(1.4, 1.8),
        "bvv": csf * uni(1.0, 1.3),
        "interspinous": csf * uni(2.0, 2.6),
    }

    # Anatomy: heights along the curve, L3 centre at s = 0.
    names = ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1", "S2", "S3", "S4"]
    heights = {nm: uni(27.0, 31.0) for nm in names[:7]}
    heights.update({"S1": uni(26.0, 29.0), "S2": uni(21.0, 24.0), "S3": 18.0, "S4": 15.0})
    depth0 = uni(34.0, 38.0)
    depths = {nm: depth0 + 1.1 * (i - 1) + uni(-0.8, 0.8) for i, nm in enumerate(names[:7])}
    depths.update({"S1": depths["L5"] + 2.0, "S2": 30.0, "S3": 24.0, "S4": 18.0})
    disc_h = {
        "T11": uni(5.0, 6.0),
        "T12": uni(6.0, 7.5),
        "L1": uni(7.0, 9.0),
        "L2": uni(8.0, 10.0),
        "L3": uni(9.0, 11.0),
        "L4": uni(8.0, 12.0),
        "L5": uni(7.0, 11.0),
        "S1": 2.0,
        "S2": 1.5,
        "S3": 1.2,
    }
    s_centre: dict[str, float] = {"L3": 0.0}
    li = names.index("L3")
    for i in range(li - 1, -1, -1):
        up, lo = names[i], names[i + 1]
        s_centre[up] = s_centre[lo] - heights[lo] / 2 - disc_h[up] - heights[up] / 2
    for i in range(li + 1, len(names)):
        up, lo = names[i - 1], names[i]
        s_centre[lo] = s_centre[up] + heights[up] / 2 + disc_h[up] + heights[lo] / 2
    marrow = dict(levels)
    marrow["T11"] = levels["T12"] * uni(0.97, 1.03)
    sacral_si = levels["L5"] * uni(1.0, 1.08)
    for nm in ("S1", "S2", "S3", "S4"):
        marrow[nm] = sacral_si
    # Heterogeneity comes from a stream of its own, so that it leaves every draw above alone.
    het = np.random.default_rng(np.random.SeedSequence([seed, index, 11]))

    def hu(lo: float, hi: float) -> float:
        return float(het.uniform(lo, hi))

    vertebrae = tuple(
        _Vertebra(
            nm,
            s_centre[nm],
            heights[nm],
            depths[nm],
            marrow[nm],
            nm.startswith("S"),
            grad_si=(1.0 if het.uniform() < 0.5 else -1.0) * hu(0.06, 0.14),
            grad_ap=hu(-0.06, 0.06),
            fat_top=hu(0.08, 0.25),
            fat_bottom=hu(0.08, 0.25),
        )
        for nm in names
    )
    discs = []
    for i in range(len(names) - 1):
        upper, lower = vertebrae[i], vertebrae[i + 1]
        bulge = uni(0.5, 2.5) if upper.name in ("L3", "L4", "L5") else uni(0.0, 1.0)
        si = tissue["disc"] * uni(0.85, 1.08)
        if upper.sacral:
            bulge, si = -1.0, tissue["disc"] * 0.8  # rudimentary sacral discs: thin grey lines
        discs.append((upper.s + upper.height / 2, lower.s - lower.height / 2, bulge, si))

    l1, l2 = s_centre["L1"], s_centre["L2"]
    conus_tip = uni(l1, l2 - heights["L2"] / 2)
    sac_end = uni(s_centre["S1"] + 6.0, s_centre["S2"])
    roots = tuple(
        (
            uni(0.76, 0.95),
            uni(s_centre["L2"], s_centre["S2"]),
            uni(0.0, 2 * math.pi),
            uni(0.2, 0.6),
        )
        for _ in range(int(rng.integers(5, 9)))
    )
    fov = n * spacing
    sac_ap, epidural_ant = uni(14.0, 16.5), uni(1.2, 1.8)
    return _Params(
        seed=seed,
        index=index,
        name=f"case-{index:03d}",
        n=n,
        spacing=spacing,
        spacing_str=spacing_str,
        thickness=thickness,
        slice_spacing=slice_spacing,
        slice_lateral_mm=lateral,
        mid_index=mid_index,
        midline_x_mm=round(uni(-8.0, 8.0), 2),
        ipp_y0=round(uni(-0.55, -0.45) * fov, 3),
        ipp_z0=round(uni(80.0, 140.0), 3),
        field_t=field_t,
        tr_ms=tr_ms,
        te_ms=te_ms,
        etl=etl,
        flip_deg=flip,
        slope=slope,
        intercept=intercept,
        bits_stored=bits,
        noise_sd=noise_sd,
        texture_rel=texture_rel,
        marrow_field_rel=hu(0.05, 0.07),
        endplate_fat_mm=hu(5.0, 7.0),
        csf_trend=(hu(0.12, 0.2), s_centre[CSF_LEVEL] + hu(-6.0, 6.0), hu(10.0, 16.0)),
        csf_flow=(
            (hu(0.06, 0.1), hu(30.0, 45.0), hu(0.0, 2 * math.pi)),
            (hu(0.03, 0.05), hu(10.0, 16.0), hu(0.0, 2 * math.pi)),
        ),
        csf_ap_rel=hu(-0.08, 0.08),
        csf_wall_rel=hu(0.3, 0.5),
        csf_wall_mm=hu(1.2, 2.0),
        csf_root_rel=hu(0.2, 0.35),
        csf_root_mm=hu(1.0, 1.6),
        csf_field_rel=hu(0.02, 0.04),
        sex="F" if rng.uniform() < 0.6 else "M",
        age=int(rng.integers(50, 86)),
        height_m=round(uni(1.52, 1.85), 2),
        weight_kg=float(round(uni(50.0, 98.0))),
        study_date=f"{2019 + int(rng.integers(6))}{int(rng.integers(1, 13)):02d}"
        f"{int(rng.integers(1, 29)):02d}",
        csf=csf,
        levels=levels,
        vbq=vbq,
        tissue=tissue,
        vertebrae=vertebrae,
        discs=tuple(discs),
        lordosis_deg=uni(38.0, 55.0),
        sacral_slope_deg=uni(34.0, 46.0),
        l3_u=uni(0.45, 0.50) * fov,
        l3_v=uni(0.45, 0.50) * fov,
        canal_ap=sac_ap + epidural_ant + uni(2.0, 4.0),
        sac_ap=sac_ap,
        sac_half_width=uni(8.5, 10.5),
        epidural_ant=epidural_ant,
        conus_tip_s=conus_tip,
        sac_end_s=sac_end,
        roots=roots,
        body_half_width=uni(23.0, 27.0),
        spinous_len=uni(27.0, 34.0),
        spinous_tilt_deg=uni(8.0, 20.0),
        aorta=(uni(6.0, 10.0), uni(9.0, 11.5), s_centre["L4"] + uni(-8.0, 4.0)),
        front_depth=uni(95.0, 140.0),
        sc_fat_back=uni(12.0, 30.0),
        sc_fat_front=uni(10.0, 30.0),
        envelope_phase=(uni(0, 6.3), uni(0, 6.3), uni(0, 6.3)),
    )


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _smoothstep(x: FloatArray, lo: float, hi: float) -> FloatArray:
    """0 below lo, 1 above hi, a smooth cubic between: soft transitions between regions."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    result: FloatArray = t * t * (3.0 - 2.0 * t)
    return result


def _rounded_box(a: FloatArray, b: FloatArray, ha: Any, hb: Any, r: float) -> FloatArray:
    """Signed distance (mm, negative inside) to a box of half-sizes ha x hb with corner radius r."""
    qa = np.abs(a) - (ha - r)
    qb = np.abs(b) - (hb - r)
    outside = np.hypot(np.maximum(qa, 0.0), np.maximum(qb, 0.0))
    inside = np.minimum(np.maximum(qa, qb), 0.0)
    result: FloatArray = outside + inside - r
    return result


def _bbox(mask: BoolArray) -> Window:
    """The smallest window holding every true pixel of ``mask`` (empty if none)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _gaussian_kernel(sigma_px: float) -> FloatArray:
    radius = max(1, math.ceil(3.0 * sigma_px))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma_px) ** 2)
    result: FloatArray = k / k.sum()
    return result


def _blur(image: FloatArray, sigma_px: float) -> FloatArray:
    """Separable Gaussian blur by shifted sums (edge-replicated): cheap for sub-pixel sigmas."""
    kernel = _gaussian_kernel(sigma_px)
    r = len(kernel) // 2
    out = image
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for i, w in enumerate(kernel):
            acc += w * (padded[i : i + n, :] if axis == 0 else padded[:, i : i + n])
        out = acc
    return out


class _NoiseFields:
    """Smooth Gaussian random fields of unit sd, two per complex FFT (real and imaginary parts)."""

    def __init__(self, n: int, spacing: float) -> None:
        f = np.fft.fftfreq(n)
        self._f2 = f[:, None] ** 2 + f[None, :] ** 2
        self._spacing = spacing
        self._cache: dict[float, FloatArray] = {}

    def _transfer(self, sigma_mm: float) -> FloatArray:
        if sigma_mm not in self._cache:
            s = sigma_mm / self._spacing
            h = np.exp(-2.0 * math.pi**2 * s * s * self._f2)
            self._cache[sigma_mm] = h / math.sqrt(float(np.mean(h * h)))
        return self._cache[sigma_mm]

    def pair(self, rng: np.random.Generator, sigma_mm: float) -> tuple[FloatArray, FloatArray]:
        z = rng.standard_normal((2, *self._f2.shape))
        c = np.fft.ifft2(np.fft.fft2(z[0] + 1j * z[1]) * self._transfer(sigma_mm))
        return c.real.copy(), c.imag.copy()


class _Anatomy:
    """The case's anatomy in image millimetres, rendered slice by slice at a lateral offset."""

    def __init__(self, p: _Params) -> None:
        self.p = p
        n, ps = p.n, p.spacing
        idx = np.arange(n, dtype=np.float64) * ps
        self.gu, self.gv = np.meshgrid(idx, idx)  # gu[row, col] = col * ps, gv = row * ps
        self.fields = _NoiseFields(n, ps)
        self._build_curve()
        self._project()
        # Texture banks, drawn once per case; each slice uses them at its own random shift
        # (the fields decorrelate within a few pixels, so shifted copies are as good as new
        # ones and cost no FFT per slice).
        bank = np.random.default_rng(np.random.SeedSequence([p.seed, p.index, 999]))
        self.bowel_a, self.bowel_b = self.fields.pair(bank, 5.0)
        self.fine, self.fine_b = self.fields.pair(bank, 0.9)
        self.coarse, self.coarse_b = self.fields.pair(bank, 3.0)
        # Low-frequency heterogeneity of marrow and CSF: not shifted per slice but blended
        # between two fields by the lateral offset (see _lateral_field), so that neighbouring
        # slices see much the same pattern, as in a real spine.
        self.marrow_lf = self.fields.pair(bank, 7.0)
        self.csf_lf = self.fields.pair(bank, 3.0)
        self.env_img, self.env_lab, self.belly = self._envelope()
        # Windows holding the canal and the prevertebral space: painting is confined to them.
        sac_end = p.sac_end_s + 5.0
        self.win_canal = _bbox((self.nrm > 0.0) & (self.nrm < 50.0) & (self.arc < sac_end))
        s1 = next(vb.s for vb in p.vertebrae if vb.name == "S1")
        self.win_front = _bbox((self.nrm > -110.0) & (self.nrm < 25.0) & (self.arc < s1 + 20.0))
        # CSF gain: the CSF modulation's median over the suggested CSF ROI on the midsagittal
        # slice becomes 1, on every slice alike (render then pins the exact median).
        x_mid = p.slice_lateral_mm[p.mid_index]
        csf_roi = self.suggested_rois(x_mid)[-1]
        sac = self._sac(abs(x_mid))
        modulation = self._csf_modulation(x_mid, sac, self._root_lines(sac))
        in_roi = _ellipse_mask(csf_roi, (p.n, p.n))[self.win_canal] & sac.mask
        self.csf_gain = 1.0 / float(np.median(modulation[in_roi]))

    def _lateral_field(self, pair: tuple[FloatArray, FloatArray], x_lat: float) -> FloatArray:
        """A unit-sd field that varies smoothly with the lateral offset (correlation
        ``cos(dx / 8 mm)`` between slices ``dx`` apart)."""
        angle = x_lat / 8.0
        result: FloatArray = math.cos(angle) * pair[0] + math.sin(angle) * pair[1]
        return result

    # -- the spine curve: centres of the vertebral bodies ------------------------------------

    def _phi(self, s: FloatArray) -> FloatArray:
        """Tilt of the curve from the feet-ward vertical towards posterior (radians)."""
        p = self.p
        v = {vb.name: vb for vb in p.vertebrae}
        s_l1, s_l5, s_s1 = v["L1"].s, v["L5"].s, v["S1"].s
        phi_s1 = p.sacral_slope_deg
        phi_l1 = phi_s1 - p.lordosis_deg
        phi_l5 = phi_l1 + 0.62 * p.lordosis_deg
        t = np.clip((s - s_l1) / (s_l5 - s_l1), 0.0, 1.0)
        lumbar = phi_l1 + (phi_l5 - phi_l1) * t**1.5
        above = np.where(s < s_l1, 0.08 * (s_l1 - s), 0.0)  # towards the thoracic kyphosis
        kink = (phi_s1 - phi_l5) * _smoothstep(s, s_l5 + 6.0, s_s1 + 4.0)
        below = 0.45 * np.maximum(s - (s_s1 + 4.0), 0.0)  # sacral kyphosis
        deg = np.minimum(lumbar + above + kink + below, 72.0)
        result: FloatArray = np.radians(deg)
        return result

    def _build_curve(self) -> None:
        """Sample the curve every 0.5 mm by integrating its tangent from L3's centre."""
        p = self.p
        s = np.arange(-260.0, 260.0 + 0.25, 0.5)
        phi = self._phi(s)
        tu, tv = np.sin(phi), np.cos(phi)
        cu = np.concatenate([[0.0], np.cumsum(0.5 * (tu[1:] + tu[:-1]) * 0.5)])
        cv = np.concatenate([[0.0], np.cumsum(0.5 * (tv[1:] + tv[:-1]) * 0.5)])
        i0 = int(np.argmin(np.abs(s)))
        self.cs, self.cphi = s, phi
        self.cu = cu - cu[i0] + p.l3_u
        self.cv = cv - cv[i0] + p.l3_v
        # Depth profile of the bodies along the curve (interpolated through the discs).
        vs = p.vertebrae
        self.depth_s = np.interp(s, [vb.s for vb in vs], [vb.depth for vb in vs])

    def at(self, s: float) -> tuple[float, float, float]:
        """Curve point (u, v) and tilt phi at arc length s."""
        return (
            float(np.interp(s, self.cs, self.cu)),
            float(np.interp(s, self.cs, self.cv)),
            float(np.interp(s, self.cs, self.cphi)),
        )

    def _project(self) -> None:
        """Curve coordinates of every pixel: arc length ``arc`` and signed depth ``nrm``.

        ``nrm`` is positive posterior of the curve.

        Starts from the curve point on the same row and refines by projecting on the tangent;
        it converges wherever the pixel is closer to the curve than its radius of curvature, which
        holds for every structure placed in these coordinates (|nrm| < 60 mm).
        """
        u, v = self.gu, self.gv
        s = np.interp(v, self.cv, self.cs)
        for _ in range(5):
            phi = np.interp(s, self.cs, self.cphi)
            du = u - np.interp(s, self.cs, self.cu)
            dv = v - np.interp(s, self.cs, self.cv)
            s = np.clip(s + du * np.sin(phi) + dv * np.cos(phi), self.cs[0], self.cs[-1])
        phi = np.interp(s, self.cs, self.cphi)
        du = u - np.interp(s, self.cs, self.cu)
        dv = v - np.interp(s, self.cs, self.cv)
        self.arc: FloatArray = s
        self.nrm: FloatArray = du * np.cos(phi) - dv * np.sin(phi)
        self.depth_at: FloatArray = np.interp(s, self.cs, self.depth_s)
        # Horizontal offset from the curve on the same row, for the body envelope.
        row_v = self.gv[:, 0]
        self.row_s = np.interp(row_v, self.cv, self.cs)
        self.row_phi = np.interp(self.row_s, self.cs, self.cphi)
        self.hor: FloatArray = u - np.interp(row_v, self.cv, self.cu)[:, None]

    def _frame(self, s: float, sl: Window) -> tuple[FloatArray, FloatArray]:
        """Rigid (along, across) coordinates about the curve point at s, within window sl."""
        cu, cv, phi = self.at(s)
        du = self.gu[sl] - cu
        dv = self.gv[sl] - cv
        a: FloatArray = du * math.sin(phi) + dv * math.cos(phi)
        b: FloatArray = du * math.cos(phi) - dv * math.sin(phi)
        return a, b

    def _window(self, s: float, radius: float, shift: float = 0.0, along: float = 0.0) -> Window:
        """Pixel window of half-size ``radius`` mm around a point of the rigid frame at s.

        The point lies ``along`` mm feet-ward and ``shift`` mm posterior of the curve point;
        a radius of the half-diagonal of a structure's box in that frame always contains it.
        """
        cu, cv, phi = self.at(s)
        cu += shift * math.cos(phi) + along * math.sin(phi)
        cv += -shift * math.sin(phi) + along * math.cos(phi)
        ps, n = self.p.spacing, self.p.n
        c0 = min(n, max(0, int((cu - radius) / ps)))
        c1 = min(n, max(0, int((cu + radius) / ps) + 2))
        r0 = min(n, max(0, int((cv - radius) / ps)))
        r1 = min(n, max(0, int((cv + radius) / ps) + 2))
        return slice(r0, r1), slice(c0, c1)

    # -- ROIs ------------------------------------------------------------------------------------

    def _marrow_roi_mm(self, vb: _Vertebra) -> tuple[float, float, float, float, float]:
        """Centre (u, v), radii (across, along) and angle of the suggested marrow ellipse in mm.

        Anterior-central part of the body: 10 % of the depth anterior to the centre, so that the
        ellipse stays >= 3 mm clear of the cortex, both endplates (with their concavity) and the
        basivertebral cleft entering from the posterior wall.
        """
        cu, cv, phi = self.at(vb.s)
        shift = -0.10 * vb.depth
        return (
            cu + shift * math.cos(phi),
            cv - shift * math.sin(phi),
            0.27 * vb.depth,
            0.27 * vb.height,
            phi,
        )

    def _csf_roi_mm(self, x_lat: float) -> tuple[float, float, float, float, float]:
        """The CSF ellipse at mid-L3: between the anterior dura and the dorsal cauda equina."""
        p = self.p
        l3 = next(vb for vb in p.vertebrae if vb.name == CSF_LEVEL)
        ap = p.sac_ap * math.sqrt(max(0.0, 1.0 - (x_lat / p.sac_half_width) ** 2))
        front = l3.depth / 2 + p.epidural_ant + (p.sac_ap - ap) / 2
        # The most anterior root reaches frac * ap minus its wave amplitude and half-width.
        nearest = min(_FILUM * ap, *(r[0] * ap - r[3] for r in p.roots))
        root_front = front + nearest - _ROOT_HALF_WIDTH
        lo, hi = front + 2.5, root_front - 2.7  # 2 mm margin + canal curvature
        cu, cv, phi = self.at(l3.s)
        centre = 0.5 * (lo + hi)
        return (
            cu + centre * math.cos(phi),
            cv - centre * math.sin(phi),
            0.5 * (hi - lo),
            0.4 * l3.height,
            phi,
        )

    def suggested_rois(self, x_lat: float) -> list[dict[str, Any]]:
        """ROI dicts (spec section 2 coordinates, without UIDs) for L1-L4 and CSF."""
        ps = self.p.spacing
        out: list[dict[str, Any]] = []
        by_name = {vb.name: vb for vb in self.p.vertebrae}
        for label in LUMBAR:
            out.append(_ellipse(label, *self._marrow_roi_mm(by_name[label]), ps))
        csf = _ellipse("CSF", *self._csf_roi_mm(x_lat), ps)
        csf["level"] = CSF_LEVEL
        out.append(csf)
        return out

    # -- painting ---------------------------------------------------------------------------------

    def render(
        self, x_lat: float, rng: np.random.Generator, rois: list[dict[str, Any]] | None
    ) -> tuple[npt.NDArray[np.uint16], dict[str, float]]:
        """Stored pixel values of the slice at lateral offset ``x_lat`` mm (left positive), and
        the sd of the noise-free signal over each ROI (modality units; empty without ROIs).

        With ``rois`` (the midsagittal slice) every ROI is first checked to lie, with a 2 mm
        margin, inside the tissue it claims, and each body (and the CSF) is offset so that the
        median of the noise-free image over its ROI is exactly the true SI; on other slices the
        same is done over each body's marrow >= 3 mm inside its cortex (the CSF keeps the gain
        found for the midsagittal slice).
        """
        p = self.p
        n = p.n
        img = self.env_img.copy()
        lab = self.env_lab.copy()
        level = np.full((n, n), -1, dtype=np.int16)
        ax = abs(x_lat)
        shifts = [int(v) for v in rng.integers(0, n, size=6)]
        tex_fine = np.roll(self.fine, (shifts[0], shifts[1]), axis=(0, 1))
        tex_coarse = np.roll(self.coarse, (shifts[2], shifts[3]), axis=(0, 1))
        tex_tissue = np.roll(self.fine_b, (shifts[4], shifts[5]), axis=(0, 1))

        def paint(sl: Window, mask: BoolArray, value: float | FloatArray, label: int) -> None:
            target = img[sl]
            target[mask] = value[mask] if isinstance(value, np.ndarray) else value
            lab[sl][mask] = label

        # Painting order matters: later structures cover earlier ones.
        self._paint_bowel(paint, ax)
        self._paint_vessels_psoas(paint, x_lat)
        self._paint_canal(paint, ax)
        self._paint_sac(paint, x_lat)
        self._paint_flava(paint, ax)
        self._paint_posterior(paint, ax)
        self._paint_discs(paint, ax)
        bodies = self._paint_bodies(paint, ax, level)

        # Mild texture in soft tissue (not in CSF or marrow: marrow has its own, below).
        soft = _SOFT_TISSUE[lab]
        img[soft] *= 1.0 + 0.025 * tex_tissue[soft]

        texture = p.texture_rel * (0.8 * tex_fine + 0.6 * tex_coarse)
        texture += p.marrow_field_rel * self._lateral_field(self.marrow_lf, x_lat)
        marrow = _MARROW[lab]
        img[marrow] *= 1.0 + texture[marrow]
        value = _blur(img, 0.5)  # partial volume at edges; the texture is smooth already
        by_index = {vb.name: i for i, vb in enumerate(p.vertebrae)}
        roi_masks = {}
        for roi in rois or []:
            roi_masks[roi["label"]] = self._check_roi(roi, lab, level, by_index)
        # Centre each body's texture: its median over the ROI (or the interior) becomes the SI.
        for i, sl, interior in bodies:
            body = (lab[sl] == MARROW) & (level[sl] == i)
            vb = p.vertebrae[i]
            zone = value[roi_masks[vb.name]] if vb.name in roi_masks else value[sl][interior & body]
            if zone.size:
                value[sl][body] += vb.marrow - float(np.median(zone))
        if "CSF" in roi_masks:  # the gain got it to within the blur's doing: now exactly
            csf = lab == CSF
            value[csf] += p.csf - float(np.median(value[roi_masks["CSF"]]))
        roi_sd = {label: round(float(np.std(value[mask])), 3) for label, mask in roi_masks.items()}
        value = value.astype(np.float32)
        # Rician noise; float32 from here on is ample (values < 10^4, noise sd > 2) and faster.
        sd = np.float32(p.noise_sd)
        amplitude = np.sqrt(np.maximum(value * value - sd * sd, np.float32(0.0)))
        z = rng.standard_normal((2, n, n), dtype=np.float32)
        z *= sd
        z[0] += amplitude
        magnitude = np.hypot(z[0], z[1])
        magnitude -= np.float32(p.intercept)
        magnitude *= np.float32(1.0 / p.slope)
        np.rint(magnitude, out=magnitude)
        np.clip(magnitude, 0, 2**p.bits_stored - 1, out=magnitude)
        result: npt.NDArray[np.uint16] = magnitude.astype(np.uint16)
        return result, roi_sd

    def _check_roi(
        self,
        roi: dict[str, Any],
        lab: IntArray,
        level: IntArray,
        by_index: dict[str, int],
    ) -> BoolArray:
        """Pixel mask of ``roi``; raises if the ROI grown by the margin leaves its tissue.

        A self-check of the generator: it proves the suggested ROIs avoid cortex, endplates, the
        basivertebral cleft, roots and the dura, whatever the seed drew.
        """
        margin = _ROI_MARGIN_MM / self.p.spacing
        grown = dict(roi, radii=[roi["radii"][0] + margin, roi["radii"][1] + margin])
        inside = _ellipse_mask(grown, lab.shape)
        if roi["label"] == "CSF":
            ok = bool(np.all(lab[inside] == CSF))
        else:
            ok = bool(
                np.all(lab[inside] == MARROW) and np.all(level[inside] == by_index[roi["label"]])
            )
        if not ok:
            found = sorted({int(v) for v in lab[inside]})
            raise AssertionError(
                f"{self.p.name}: ROI {roi['label']} leaves its tissue (labels {found})"
            )
        return _ellipse_mask(roi, lab.shape)

    def _body_scale(self, ax: float) -> float:
        """Fraction of the vertebral body's depth cut by a slice ``ax`` mm off the midline."""
        w = self.p.body_half_width
        return math.sqrt(max(0.0, 1.0 - (ax / w) ** 2)) if ax < 0.97 * w else 0.0

    def _envelope(self) -> tuple[FloatArray, IntArray, BoolArray]:
        """Air, skin, subcutaneous fat, paraspinal muscle, abdominal wall and fat, once per case.

        Laid out by the horizontal offset from the spine curve on each row, which stays
        well-defined far from the curve (unlike the curve's own normal coordinates). The same
        for every slice (only the bowel changes), so it is painted once and copied. Returns the
        image, the labels, and the abdominal cavity where bowel goes.
        """
        n = self.p.n
        img = np.zeros((n, n))
        lab = np.zeros((n, n), dtype=np.int16)

        def paint(sl: Window, mask: BoolArray, value: float | FloatArray, label: int) -> None:
            img[sl][mask] = value[mask] if isinstance(value, np.ndarray) else value
            lab[sl][mask] = label

        tex = self.coarse_b
        p, t = self.p, self.p.tissue
        ph = p.envelope_phase
        rows = self.gv[:, 0]
        cosphi = np.cos(self.row_phi)
        s1, s2 = p.vertebrae[7].s, p.vertebrae[8].s
        sacral = _smoothstep(self.row_s, s1 - 10.0, s2 + 10.0)
        depth_row = np.interp(self.row_s, self.cs, self.depth_s)
        wave = np.sin(rows / 37.0 + ph[0]) * 2.5 + np.sin(rows / 91.0 + ph[1]) * 4.0
        post = depth_row / 2 + p.canal_ap + p.spinous_len * (1.0 - 0.6 * sacral) + 4.0
        h_muscle = (post + wave * 0.4) / cosphi
        h_skin = h_muscle + (p.sc_fat_back + 14.0 * sacral + wave) / cosphi
        h_front = -(depth_row / 2 + p.front_depth + np.sin(rows / 53.0 + ph[2]) * 6.0) / cosphi
        h = self.hor
        hm, hs, hf = h_muscle[:, None], h_skin[:, None], h_front[:, None]
        inside = (h > hf) & (h < hs)
        paint(FULL, inside, t["skin"], SKIN)
        paint(FULL, inside & (h < hs - 2.0) & (h > hf + 2.0), t["fat"], FAT)
        paint(FULL, inside & (h > 0) & (h < hm), t["muscle"] * (1.0 + 0.05 * tex), MUSCLE)
        wall = (h > hf + 2.0 + p.sc_fat_front) & (h < hf + 12.0 + p.sc_fat_front)
        paint(FULL, inside & wall, t["muscle"], MUSCLE)
        retro = -(depth_row[:, None] / 2 + 14.0) / cosphi[:, None]
        belly = inside & (h > hf + 12.0 + p.sc_fat_front) & (h < retro)
        return img, lab, belly

    def _paint_bowel(self, paint: Painter, ax: float) -> None:
        """Bowel: loops of intermediate signal, mesenteric fat, a few gas pockets; the pattern
        drifts from slice to slice."""
        p, t = self.p, self.p.tissue
        shift = round(ax / p.spacing * 0.7)
        ba = np.roll(self.bowel_a, shift, axis=1)
        bb = np.roll(self.bowel_b, -shift, axis=0)
        belly = self.belly
        bowel = belly & (ba < 1.2)
        paint(FULL, bowel, t["bowel"] * (1.0 + 0.15 * bb), BOWEL)
        paint(FULL, bowel & (bb > 2.0), t["cortex"] * 0.3, AIR)
        paint(FULL, belly & (np.abs(ba - 0.3) < 0.12), t["muscle"] * 0.8, BOWEL)

    def _paint_vessels_psoas(self, paint: Painter, x_lat: float) -> None:
        """Aorta (left) and IVC (right) as flow voids in front of the spine; psoas laterally."""
        p, t = self.p, self.p.tissue
        w = self.win_front
        s, d = self.arc[w], self.nrm[w]
        half = self.depth_at[w] / 2
        for xc, r, s_end, gap in (
            (p.aorta[0], p.aorta[1], p.aorta[2], 3.0),
            (-17.0, 10.5, p.aorta[2] + 12.0, 2.0),
        ):
            if abs(x_lat - xc) < r:
                chord = math.sqrt(r * r - (x_lat - xc) ** 2)
                mask = (np.abs(d + half + gap + r) < chord) & (s < s_end)
                paint(w, mask, t["vessel"], VESSEL)
        ax = abs(x_lat)
        if ax > 11.0:
            q = float(np.clip((ax - 11.0) / 10.0, 0.0, 1.0))
            by = {vb.name: vb.s for vb in p.vertebrae}
            grow = np.clip((s - by["T12"]) / (by["L5"] - by["T12"]), 0.0, 1.2)
            g = self._body_scale(ax)
            front = -half * g - 6.0 - 30.0 * grow * q
            back = -half * g + 4.0 if g > 0 else half * 0.6
            mask = (d > front) & (d < back) & (s > by["T12"]) & (s < by["S1"])
            paint(w, mask, t["muscle"] * 0.97, MUSCLE)

    def _canal_shape(self) -> tuple[FloatArray, FloatArray]:
        """Bony canal depth and half-width in the canal window (narrower in the sacrum)."""
        p = self.p
        s1 = p.vertebrae[7].s
        narrowing = _smoothstep(self.arc[self.win_canal], s1 - 10.0, s1 + 30.0)
        return p.canal_ap - 7.0 * narrowing, 12.5 - 3.0 * narrowing

    def _paint_canal(self, paint: Painter, ax: float) -> None:
        """Bony canal filled with epidural fat; the thin dark posterior longitudinal ligament."""
        t = self.p.tissue
        w = self.win_canal
        d = self.nrm[w]
        half = self.depth_at[w] / 2
        canal, width = self._canal_shape()
        if ax < 12.5:
            mask = (d > half) & (d < half + canal) & (ax < width)
            paint(w, mask, t["epifat"], EPIFAT)
            if ax < 6.0:
                paint(w, (d > half) & (d < half + 0.9) & (ax < width), t["ligament"], LIGAMENT)

    def _paint_flava(self, paint: Painter, ax: float) -> None:
        """Ligamenta flava at the disc levels, in front of the laminae (they indent the sac)."""
        p, t = self.p, self.p.tissue
        if ax >= 12.5:
            return
        w = self.win_canal
        s, d = self.arc[w], self.nrm[w]
        half = self.depth_at[w] / 2
        canal, width = self._canal_shape()
        thick = 3.5 + (1.5 if ax > 5.0 else 0.0)
        for top, bottom, _, _ in p.discs[:7]:
            near = np.abs(s - 0.5 * (top + bottom)) < 7.0
            lf = near & (d > half + canal - thick) & (d < half + canal + 0.5) & (ax < width)
            paint(w, lf, t["flavum"], LIGAMENT)

    def _sac(self, ax: float) -> _Sac:
        """The thecal sac's geometry in the canal window, ``ax`` mm off the midline."""
        p = self.p
        w = self.win_canal
        s, d = self.arc[w], self.nrm[w]
        half = self.depth_at[w] / 2
        bulge = np.zeros_like(s)
        for top, bottom, amount, _ in p.discs[:7]:
            if amount > 0:
                centre, hw = 0.5 * (top + bottom), 0.5 * (bottom - top) + 3.0
                bulge = np.maximum(bulge, amount * np.clip(1 - ((s - centre) / hw) ** 2, 0, 1))
        lateral = math.sqrt(max(0.0, 1.0 - (ax / p.sac_half_width) ** 2))
        taper = 1.0 - _smoothstep(s, p.sac_end_s - 25.0, p.sac_end_s)
        ap0 = p.sac_ap * (1.0 - 0.25 * _smoothstep(s, p.vertebrae[6].s, p.vertebrae[7].s))
        ap = ap0 * taper * lateral
        front = half + p.epidural_ant + (ap0 - ap) / 2
        back = front + ap
        mask = (d > front + bulge) & (d < back) & (s < p.sac_end_s) & (ap > 0.5)
        cord_r = 3.8 * np.clip((p.conus_tip_s - s) / 18.0, 0.0, 1.0) ** 0.6
        cord_r = cord_r * math.sqrt(max(0.0, 1.0 - (ax / 5.0) ** 2))
        return _Sac(s, d, front, back, front + bulge, ap, mask, cord_r)

    def _root_lines(self, sac: _Sac) -> list[tuple[FloatArray, BoolArray]]:
        """Depth of each cauda equina root along the sac, and where it runs."""
        p, s = self.p, sac.s
        return [
            (
                sac.front + frac * sac.ap + amp * np.sin(s / 9.0 + phase),
                (s > p.conus_tip_s - 20.0) & (s < s_exit),
            )
            for frac, s_exit, phase, amp in p.roots
        ]

    def _csf_modulation(
        self, x_lat: float, sac: _Sac, roots: list[tuple[FloatArray, BoolArray]]
    ) -> FloatArray:
        """Relative CSF signal in the canal window (1 = the sac's nominal SI).

        Pulsatile flow makes the signal vary smoothly along the sac (two waves) and from its
        front to its back; the dura, the roots, the filum and the conus, all thinner than the
        slice or blurred by the point spread, brighten the CSF next to them (partial volume),
        and a sac cut off the midline is brightened by the lateral dura in the slice; a faint
        low-frequency field does the rest.
        """
        p = self.p
        s, d = sac.s, sac.d
        ax = abs(x_lat)
        m = np.ones_like(s)
        amplitude, centre, width = p.csf_trend
        m += amplitude * np.tanh((s - centre) / width)
        for amplitude, wavelength, phase in p.csf_flow:
            m += amplitude * np.sin(2.0 * math.pi * s / wavelength + phase)
        depth = np.clip((d - sac.front) / np.maximum(sac.ap, 0.5), 0.0, 1.0)
        m += p.csf_ap_rel * (2.0 * depth - 1.0)
        to_wall = np.minimum(np.abs(d - sac.dura_front), np.abs(sac.back - d))
        m += p.csf_wall_rel * np.exp(-to_wall / p.csf_wall_mm)
        to_nerve = np.where(sac.cord_r > 0, np.abs(d - (sac.front + sac.ap / 2)) - sac.cord_r, 99.0)
        for line, runs in roots:
            to_nerve = np.where(runs, np.minimum(to_nerve, np.abs(d - line)), to_nerve)
        if ax < 1.5:
            filum = np.abs(d - (sac.front + _FILUM * sac.ap))
            to_nerve = np.where(s > p.conus_tip_s, np.minimum(to_nerve, filum), to_nerve)
        to_nerve = np.maximum(to_nerve - _ROOT_HALF_WIDTH, 0.0)
        m += p.csf_root_rel * np.exp(-to_nerve / p.csf_root_mm)
        m += 0.5 * p.csf_wall_rel * (ax / p.sac_half_width) ** 2
        m += p.csf_field_rel * self._lateral_field(self.csf_lf, x_lat)[self.win_canal]
        return m

    def _paint_sac(self, paint: Painter, x_lat: float) -> None:
        """Thecal sac: CSF, cord and conus, dorsal cauda equina roots and the filum."""
        p, t = self.p, self.p.tissue
        ax = abs(x_lat)
        if ax >= p.sac_half_width:
            return
        w = self.win_canal
        sac = self._sac(ax)
        s, d, sac_mask = sac.s, sac.d, sac.mask
        roots = self._root_lines(sac)
        csf = p.csf * self.csf_gain * self._csf_modulation(x_lat, sac, roots)
        paint(w, sac_mask, csf, CSF)
        # Spinal cord and conus medullaris (a cone over its last 18 mm), centred in the sac.
        mid_d = sac.front + sac.ap / 2
        cord = sac_mask & (np.abs(d - mid_d) < sac.cord_r)
        if cord.any():
            paint(w, cord, t["cord"], CORD)
        # Roots of the cauda equina (and the filum terminale) lie dorsally in a supine patient.
        for line, runs in roots:
            wt = np.clip(1.0 - np.abs(d - line) / _ROOT_HALF_WIDTH, 0.0, 1.0)
            mask = sac_mask & (wt > 0) & runs
            paint(w, mask, csf + (t["root"] - csf) * wt, ROOT)
        filum_d = sac.front + _FILUM * sac.ap
        filum = sac_mask & (np.abs(d - filum_d) < 0.45) & (s > p.conus_tip_s) & (ax < 1.5)
        paint(w, filum, t["root"], ROOT)

    def _paint_discs(self, paint: Painter, ax: float) -> None:
        """Discs between the bodies (slightly wider than them laterally, bulging posteriorly)."""
        p = self.p
        g = self._body_scale(ax * 0.95)
        if g <= 0:
            return
        for top, bottom, bulge, si in p.discs:
            centre, hh = 0.5 * (top + bottom), 0.5 * (bottom - top) + 2.5
            w = self._window(centre, 0.5 * float(np.interp(centre, self.cs, self.depth_s)) + 12)
            s, d = self.arc[w], self.nrm[w]
            half = self.depth_at[w] / 2 * g
            dc = self.depth_at[w] / 2 * (1.0 - g) * 0.35
            prof = np.clip(1.0 - ((s - centre) / hh) ** 2, 0.0, 1.0)
            extent = half + max(bulge, 0.0) * np.sqrt(prof) - 0.5
            mask = (np.abs(s - centre) < hh) & (np.abs(d - dc) < extent)
            paint(w, mask, si, DISC)

    def _paint_bodies(
        self,
        paint: Painter,
        ax: float,
        level: IntArray,
    ) -> list[tuple[int, Window, BoolArray]]:
        """Vertebral bodies: cortex, concave endplates and waist, marrow, basivertebral cleft.

        Returns, per body painted, its index, window and the window's marrow >= 3 mm inside
        the cortex (for centring the marrow texture).

        The sacral segments are fused: all their cortices are painted before any of their marrow,
        and their marrow boxes reach into the neighbours', so only the faint S1/S2 remnant disc
        separates them.
        """
        p, t = self.p, self.p.tissue
        g = self._body_scale(ax)
        bodies: list[tuple[int, Window, BoolArray]] = []
        if g <= 0:
            return bodies
        sacral_marrow: list[tuple[Window, BoolArray, int, FloatArray]] = []
        for i, vb in enumerate(p.vertebrae):
            sl = self._window(vb.s, math.hypot(0.5 * vb.height + 3.0, 0.5 * vb.depth + 2.0) + 2.0)
            a, b = self._frame(vb.s, sl)
            hd = 0.5 * vb.depth * g
            # Laterally the body loses depth mostly anteriorly (its axial section is a bean).
            bb = b - 0.5 * vb.depth * (1.0 - g) * 0.35
            # Anterior waist: the anterior wall is ~1 mm concave at mid-height.
            waist = np.clip(1.0 - (a / (0.5 * vb.height)) ** 2, 0.0, 1.0)
            bb = np.where(bb < 0, bb - 1.0 * waist, bb)
            concave = (1.4 if not vb.sacral else 0.0) * np.clip(1 - (bb / hd) ** 2, 0, 1)
            hh = 0.5 * vb.height - concave
            r = 4.0 if not vb.sacral else 2.0
            if vb.sacral:
                reach = 0.0 if vb.name == "S1" else 2.5  # overlap the segment above
                outer = _rounded_box(a + reach / 2, bb, hh + 1.5 + reach / 2, hd, r)
                inner = _rounded_box(a + reach / 2, bb, hh + 1.5 + reach / 2 - 1.4, hd - 1.4, r)
                if vb.name == "S1":  # the S1 upper endplate is a real endplate
                    inner = np.maximum(inner, -(a + 0.5 * vb.height - 1.6))
                paint(sl, outer <= 0, t["cortex"], CORTEX)
                si = vb.marrow * (1.0 + vb.grad_si * a / (0.5 * vb.height))
                sacral_marrow.append((sl, inner <= 0, i, si))
                bodies.append((i, sl, inner < -3.0))
                continue
            outer = _rounded_box(a, bb, hh, hd, r)
            inner = _rounded_box(a, bb, hh - 1.8, hd - 1.2, r - 1.0)
            marrow = inner <= 0
            paint(sl, outer <= 0, t["cortex"], CORTEX)
            paint(sl, marrow, self._marrow_si(vb, a, bb, hh, hd), MARROW)
            level[sl][marrow] = i
            bodies.append((i, sl, inner < -3.0))
            if ax < 5.0:
                # Basivertebral vein: a cleft entering the posterior wall at mid-height.
                length = 0.22 * vb.depth
                depth_in = (hd - bb) / length
                width = 0.6 + 1.6 * np.clip(1.0 - depth_in, 0.0, 1.0)
                cleft = (depth_in > -0.1) & (depth_in < 1.0) & (np.abs(a - 0.5) < width)
                cleft &= outer <= 0.3
                paint(sl, cleft, t["bvv"], BVV)
                level[sl][cleft] = -1
        for sl, marrow, i, si in sacral_marrow:
            paint(sl, marrow, si, MARROW)
            level[sl][marrow] = i
        # The S1/S2 remnant disc: a thin grey line across the central sacrum.
        s1 = next(vb for vb in p.vertebrae if vb.name == "S1")
        sl = self._window(s1.s, 0.75 * s1.depth + 10)
        a, b = self._frame(s1.s, sl)
        line = (np.abs(a - 0.5 * s1.height - 1.0) < 0.7) & (np.abs(b) < 0.32 * s1.depth * g)
        paint(sl, line, t["disc"] * 0.85, DISC)
        level[sl][line] = -1
        return bodies

    def _marrow_si(
        self, vb: _Vertebra, a: FloatArray, b: FloatArray, hh: FloatArray, hd: float
    ) -> FloatArray:
        """Marrow SI of a lumbar or thoracic body in its frame (a along, b across, mm).

        Linear gradients head to feet and front to back, and a brighter (fattier) zone under
        each endplate, fading over ``endplate_fat_mm``; ``hh`` is the local half-height of the
        body (the endplates are concave), ``hd`` its half-depth in this slice.
        """
        lam = self.p.endplate_fat_mm
        rel = vb.grad_si * a / (0.5 * vb.height) + vb.grad_ap * b / max(hd, 1.0)
        rel += vb.fat_top * np.exp(-np.maximum(a + hh, 0.0) / lam)
        rel += vb.fat_bottom * np.exp(-np.maximum(hh - a, 0.0) / lam)
        result: FloatArray = vb.marrow * (1.0 + rel)
        return result

    def _bone(
        self,
        paint: Painter,
        sl: Window,
        sdf: FloatArray,
        si: float,
        cortex: float = 1.2,
    ) -> None:
        """Paint a bony element from its signed distance: cortex shell around marrow."""
        paint(sl, sdf <= 0, self.p.tissue["cortex"], CORTEX)
        inner = sdf <= -cortex
        paint(sl, inner, si, POST_MARROW)

    def _paint_posterior(self, paint: Painter, ax: float) -> None:
        """Laminae, spinous processes, pedicles, facets, foramina and sacral crest (rough).

        The bony parts of one vertebra are united (minimum of their signed distances) before
        painting, so they share one continuous cortex as in a real neural arch.
        """
        p, t = self.p, self.p.tissue
        tilt = math.radians(p.spinous_tilt_deg)
        ca, cb = math.sin(tilt), math.cos(tilt)
        for k, vb in enumerate(p.vertebrae):
            if vb.name == "S4":
                continue
            si = vb.marrow * 0.96
            b0 = 0.5 * vb.depth + (p.canal_ap if not vb.sacral else p.canal_ap - 7.0)
            if ax < 4.0:  # spinous process and interspinous space
                centre_b, half_b = b0 + 0.5 * p.spinous_len + 3.0, 0.5 * p.spinous_len + 6.0
            else:  # pedicle, foramen, lamina and facets
                centre_b, half_b = (
                    0.25 * vb.depth + 0.5 * b0 + 3.5,
                    0.5 * (b0 - 0.5 * vb.depth) + 9.0,
                )
            radius = math.hypot(0.6 * vb.height + 14.0, half_b) + 2.0
            sl = self._window(vb.s, radius, shift=centre_b, along=0.6 * vb.height - 4.0)
            a, b = self._frame(vb.s, sl)
            h = vb.height
            disc = p.discs[k][1] - p.discs[k][0] if k < len(p.discs) else 2.0
            parts: list[FloatArray] = []
            if vb.sacral:
                if ax < 12.0:  # the roof of the sacral canal, with the median crest
                    crest = 6.0 if ax < 3.0 else 0.0
                    parts.append(
                        _rounded_box(
                            a - 0.1 * h,
                            b - b0 - 3.0 - crest / 2,
                            0.5 * h + 1.5,
                            3.0 + crest / 2,
                            1.5,
                        )
                    )
            else:
                if ax < 4.0:
                    # Interspinous ligament and fat between the processes; the process itself.
                    inter = (
                        (b > b0 + 3.0)
                        & (b < b0 + p.spinous_len * 0.9)
                        & (np.abs(a - 0.6 * h) < 0.8 * h)
                    )
                    paint(sl, inter, t["interspinous"], LIGAMENT)
                    a1, b1 = a - 0.25 * h, b - b0
                    along = a1 * ca + b1 * cb
                    across = a1 * cb - b1 * ca
                    # A plate, tallest at the spinolaminar junction and tapering to the tip.
                    taper = 1.0 - 0.3 * np.clip(along / p.spinous_len, 0.0, 1.0)
                    parts.append(
                        _rounded_box(
                            along - p.spinous_len / 2,
                            across / taper,
                            p.spinous_len / 2,
                            0.27 * h,
                            4.0,
                        )
                    )
                if ax < 17.0:  # lamina: more anterior the further from the midline
                    length = 0.42 * h if ax > 4.0 else 0.3 * h
                    parts.append(
                        _rounded_box(a - 0.22 * h, b - (b0 + 3.6 - 0.28 * ax), length, 3.6, 1.5)
                    )
                if 11.0 < ax < 21.0:
                    # Neural foramen (fat, with the exiting root) below the pedicle; the pedicle.
                    fa = a - (0.5 * h + 0.5 * disc - 0.1 * h)
                    fb = b - (0.5 * vb.depth + 0.45 * p.canal_ap)
                    # An inverted teardrop: wide above (the root), narrow towards the disc.
                    fw = 0.45 * p.canal_ap * (1.0 - 0.45 * np.clip(fa / (0.5 * h), 0.0, 1.0))
                    foramen = (fa / (0.5 * h + 0.3 * disc)) ** 2 + (fb / fw) ** 2 < 1.0
                    paint(sl, foramen, t["epifat"], EPIFAT)
                    root = ((fa + 0.15 * h) / 4.0) ** 2 + (fb / 3.2) ** 2 < 1.0
                    paint(sl, root & foramen, t["muscle"] * 0.9, ROOT)
                    pb = b - (0.5 * vb.depth + 0.5 * p.canal_ap)
                    parts.append(
                        _rounded_box(a + 0.22 * h, pb, 0.22 * h + 1.0, 0.5 * p.canal_ap + 3.0, 3.0)
                    )
                if 10.5 < ax < 24.0:  # articular processes at the disc level below
                    fa = a - (0.5 * h + 0.5 * disc)
                    parts.append(_rounded_box(fa, b - (b0 + 1.0), 0.5 * h, 6.5, 3.0))
            if not parts:
                continue
            sdf = parts[0]
            for part in parts[1:]:
                sdf = np.minimum(sdf, part)
            self._bone(paint, sl, sdf, si)
            if 10.5 < ax < 24.0 and not vb.sacral:  # the facet joint line
                fa = a - (0.5 * h + 0.5 * disc)
                joint = (np.abs(fa + 0.25 * (b - b0)) < 0.7) & (sdf <= 0) & (np.abs(fa) < 0.5 * h)
                paint(sl, joint, t["disc"] * 0.7, LIGAMENT)


def _ellipse(
    label: str, cu: float, cv: float, r_across: float, r_along: float, phi: float, ps: float
) -> dict[str, Any]:
    """A ``vbq.rois/1`` ellipse in pixel coordinates from a millimetre description.

    The first axis runs along the spine's posterior normal n = (cos phi, -sin phi), which makes
    the angle -phi with +x (spec: ``angle_deg`` turns the first axis from +x towards +y).
    Values are rounded to 0.01 px / 0.1 degree so the JSON is readable and exact.
    """
    return {
        "label": label,
        "shape": "ellipse",
        "center": [round(cu / ps, 2), round(cv / ps, 2)],
        "radii": [round(r_across / ps, 2), round(r_along / ps, 2)],
        "angle_deg": round(-math.degrees(phi), 1),
    }


def _ellipse_mask(roi: dict[str, Any], shape: tuple[int, ...]) -> BoolArray:
    """Pixels whose centre lies inside or on the ellipse (spec section 2 rule)."""
    cx, cy = roi["center"]
    rx, ry = roi["radii"]
    th = math.radians(roi["angle_deg"])
    rows, cols = np.indices(shape[:2], dtype=np.float64)
    dx, dy = cols - cx, rows - cy
    p = dx * math.cos(th) + dy * math.sin(th)
    q = -dx * math.sin(th) + dy * math.cos(th)
    result: BoolArray = (p / rx) ** 2 + (q / ry) ** 2 <= 1.0
    return result


# --------------------------------------------------------------------------------------------
# DICOM and truth
# --------------------------------------------------------------------------------------------

_IOP: Final = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
_NORMAL: Final = (-1.0, 0.0, 0.0)  # row direction x column direction


def _ipp(p: _Params, k: int) -> tuple[float, float, float]:
    """Top-left pixel centre of slice k; slices advance by the spacing along the normal."""
    x = round(p.midline_x_mm + p.slice_lateral_mm[k], 3)
    return (x, p.ipp_y0, p.ipp_z0)


def _dataset(p: _Params, k: int, pixels: npt.NDArray[np.uint16]) -> Dataset:
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


def _truth_document(
    p: _Params, datasets: Sequence[Dataset], rois: list[dict[str, Any]], roi_sd: dict[str, float]
) -> dict[str, Any]:
    mid = datasets[p.mid_index]
    series_uid = str(mid.SeriesInstanceUID)
    roi_doc = {
        "schema": ROI_SCHEMA,
        "series_instance_uid": series_uid,
        "rois": [
            {
                "label": r["label"],
                **({"level": r["level"]} if "level" in r else {}),
                "sop_instance_uid": str(mid.SOPInstanceUID),
                **{k: v for k, v in r.items() if k not in ("label", "level")},
            }
            for r in rois
        ],
    }
    return {
        "schema": SCHEMA,
        "case": p.name,
        "seed": p.seed,
        "index": p.index,
        "patient_id": str(mid.PatientID),
        "study_instance_uid": str(mid.StudyInstanceUID),
        "series_instance_uid": series_uid,
        "field_strength_t": p.field_t,
        "tr_ms": p.tr_ms,
        "te_ms": p.te_ms,
        "n_slices": len(datasets),
        "midsagittal_sop_instance_uid": str(mid.SOPInstanceUID),
        "midsagittal_instance_number": p.mid_index + 1,
        "pixel_spacing_mm": p.spacing,
        "rescale": {"slope": p.slope, "intercept": p.intercept},
        "noise_sd": p.noise_sd,
        "texture_sd_rel": p.texture_rel,
        "roi_sd": {r["label"]: roi_sd[r["label"]] for r in rois},
        "truth": {
            "levels": {name: p.levels[name] for name in LUMBAR},
            "other_levels": {"T12": p.levels["T12"], "L5": p.levels["L5"]},
            "csf": {"si": p.csf, "level": CSF_LEVEL},
            "vbq": round(p.vbq, 6),
        },
        "rois": roi_doc,
    }
