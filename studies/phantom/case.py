"""One phantom case in memory (:func:`make_case`) and the truth document it claims.

Why apart from the writer: tests, benches and the demo data want a case's datasets and truth
without touching the disk; :mod:`studies.phantom.writer` only lays cases out in folders.

A case is its draws (:mod:`studies.phantom.params`), one rendered slice per lateral offset
(:mod:`studies.phantom.render`; the suggested ROIs are placed and checked on the midsagittal
slice), their DICOM datasets (:mod:`studies.phantom.acquisition`) and its truth, which is
exactly what ``truth.json`` holds (schema :data:`SCHEMA`): the facts of the acquisition, the true
signal of every lumbar level, the CSF signal and VBQ, the noise-free sd over each suggested ROI,
and the suggested ROIs as a ``vbq.rois/1`` set on the midsagittal instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from studies.phantom.acquisition import derive_wrong_series, t1_dataset, wrong_series_kinds
from studies.phantom.params import Params, draw_params
from studies.phantom.render import SpineRenderer
from studies.vocabulary import DEFAULT_CSF_LEVEL, LEVELS, ROI_SCHEMA

SCHEMA: Final = "vbq.phantom/1"


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
        """File names used by :func:`~studies.phantom.writer.write_phantom`, ``IM0001.dcm`` ...
        in instance order."""
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
    params = draw_params(seed, index, n_slices=n_slices, rescaled=rescaled)
    anatomy = SpineRenderer(params)
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
    datasets = [t1_dataset(params, k, pix) for k, pix in enumerate(images)]
    truth = _truth_document(params, datasets, rois, roi_sd)
    return PhantomCase(
        name=params.name, datasets=datasets, truth=truth, midsagittal_index=params.mid_index
    )


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
    any series. Raises ``ValueError`` for a kind not in
    :data:`~studies.phantom.acquisition.WRONG_SERIES_KINDS` (and for the arguments
    :func:`make_case` refuses).
    """
    wrong_series_kinds([kind])
    return derive_wrong_series(seed, index, make_case(seed, index).datasets, kind)


def _truth_document(
    p: Params, datasets: Sequence[Dataset], rois: list[dict[str, Any]], roi_sd: dict[str, float]
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
            "levels": {name: p.levels[name] for name in LEVELS},
            "other_levels": {"T12": p.levels["T12"], "L5": p.levels["L5"]},
            "csf": {"si": p.csf, "level": DEFAULT_CSF_LEVEL},
            "vbq": round(p.vbq, 6),
        },
        "rois": roi_doc,
    }
