"""Everything drawn at random for one phantom case (:class:`Params`), the truth among it.

Why one place: the phantom draws its answer before it paints anything, and one seed must give
the same case whatever else changes, so every draw of a case happens here, in a fixed order,
from ``numpy.random.SeedSequence([seed, index])``; rendering adds no randomness beyond per-slice
noise and texture shifts.

* **Truth first.** Per case a VBQ is drawn in [2.0, 4.0] (stratified in blocks of ten cases so that
  any ten consecutive cases 1-10, 11-20, ... hit every 0.2-wide band once), a CSF signal in
  [80, 160], and L1-L4 marrow signals spread a few per cent around ``VBQ x CSF`` whose median (the
  mean of the middle two) is exactly ``VBQ x CSF``. All truth is in modality units (after Rescale
  Slope/Intercept).
* **Then the case around it.** The acquisition (matrix, spacing, slices and their lateral
  offsets, field strength, timing, rescale), the patient, the signal of every tissue relative to
  the CSF, and the anatomy (vertebrae along the curve, discs, lordosis, canal, sac, conus, roots,
  vessels, body envelope), in millimetres.
* **Heterogeneity apart.** The draws of the marrow and CSF heterogeneity (described in
  :mod:`studies.phantom.painting`) come from a stream of their own,
  ``SeedSequence([seed, index, 11])``, so the truth and geometry of a seed do not depend on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from studies.vocabulary import DEFAULT_CSF_LEVEL, LEVELS

VBQ_LOW: Final = 2.0
VBQ_HIGH: Final = 4.0
VBQ_BLOCK: Final = 10


@dataclass(frozen=True)
class Vertebra:
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
class Params:
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
    # heterogeneity, relative to the tissue's SI (the painting module's docstring gives ranges)
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
    vertebrae: tuple[Vertebra, ...]
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


def _stratified_vbq(seed: int, index: int, u: float) -> float:
    """VBQ for case ``index``: one 0.2-wide stratum of [2, 4] per case within each block of ten."""
    block, pos = divmod(index - 1, VBQ_BLOCK)
    perm = np.random.default_rng(np.random.SeedSequence([seed, 7, block])).permutation(VBQ_BLOCK)
    width = (VBQ_HIGH - VBQ_LOW) / VBQ_BLOCK
    return VBQ_LOW + width * (float(perm[pos]) + 0.02 + 0.96 * u)


def draw_params(seed: int, index: int, *, n_slices: int | None, rescaled: bool | None) -> Params:
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
        name: round(vbq_drawn * csf * float(f), 2) for name, f in zip(LEVELS, spread, strict=True)
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
    names = ["T11", "T12", *LEVELS, "L5", "S1", "S2", "S3", "S4"]
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
        Vertebra(
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
    return Params(
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
        csf_trend=(hu(0.12, 0.2), s_centre[DEFAULT_CSF_LEVEL] + hu(-6.0, 6.0), hu(10.0, 16.0)),
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
