"""One slice of a case, from painted tissue to stored pixel values (:class:`SpineRenderer`).

Why apart: this is where the image is made to honour the truth, the one promise every test of
the measurement path relies on; the painting before it only has to look right.

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
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from studies import vocabulary
from studies.phantom.fields import BoolArray, FloatArray, IntArray, Window, blur
from studies.phantom.geometry import ellipse_mask
from studies.phantom.painting import (
    CORD,
    CSF,
    DISC,
    EPIFAT,
    FAT,
    LIGAMENT,
    MARROW,
    MUSCLE,
    POST_MARROW,
    SKIN,
    SpinePainter,
)

_ROI_MARGIN_MM: Final = 2.0  # every suggested ROI, grown by this, must stay in its tissue

_SOFT_TISSUE: Final = np.isin(np.arange(16), [FAT, MUSCLE, SKIN, DISC, EPIFAT, CORD, LIGAMENT])
_MARROW: Final = np.isin(np.arange(16), [MARROW, POST_MARROW])


class SpineRenderer(SpinePainter):
    """The case's anatomy in image millimetres, rendered slice by slice at a lateral offset."""

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
        value = blur(img, 0.5)  # partial volume at edges; the texture is smooth already
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
        if vocabulary.CSF in roi_masks:  # the gain got it to within the blur's doing: now exactly
            csf = lab == CSF
            value[csf] += p.csf - float(np.median(value[roi_masks[vocabulary.CSF]]))
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
        inside = ellipse_mask(grown, lab.shape)
        if roi["label"] == vocabulary.CSF:
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
        return ellipse_mask(roi, lab.shape)
