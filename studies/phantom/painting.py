"""The tissues of a case painted into an image and a label map (:class:`SpinePainter`).

Why apart: this is the look of the phantom, the part most often tuned, and none of it decides
the truth (:mod:`studies.phantom.render` pins each median to it afterwards).

* **Looks like a spine.** T11/T12-sacrum along a lordotic curve with a sacral kink; rounded
  vertebral bodies with a dark cortex and endplates and a posterior basivertebral cleft; discs that
  bulge a little; a thecal sac with the conus ending at L1-L2 and cauda equina roots lying dorsally
  (supine); posterior elements, ligamentum flavum, epidural fat, paraspinal muscle, subcutaneous
  fat, prevertebral vessels, bowel, air. Structures narrow or vanish on parasagittal slices the way
  they do in patients (body depth, sac width, pedicles and foramina laterally, psoas).
* **Heterogeneous like a patient.** Were marrow and CSF uniform, any two readers' ROIs would give
  the same medians and inter-reader ICCs near 1, which no real VBQ study sees (about 0.8-0.95).
  So within each body the marrow has a head-to-feet gradient (6-14 %, either sign) and a
  front-to-back one, brighter fatty zones under the endplates (up to +25 %, fading over
  5-7 mm), a smooth low-frequency field (sd 5-7 %, Gaussian sigma 7 mm) and a fine texture
  (sd ``texture_sd_rel``; the field and the texture are added by the renderer);
  the CSF gets brighter caudally (flow slows; +-12-20 % over 10-16 mm, centred near L3), carries
  two flow waves along the sac, a front-to-back gradient, partial-volume brightening at the dura
  and around the roots, filum and conus (fading over 1-2 mm), and off the midline from the
  lateral dura. A suggested ROI moved 3 px (marrow) or 5 px along the sac (CSF) thus changes its
  median by a few per cent, and three readers with realistic hand jitter agree with an ICC of
  about 0.9. ``roi_sd`` in ``truth.json`` gives the noise-free sd over each suggested ROI.
  The smooth fields are shared by neighbouring slices (blended by lateral offset), the texture
  is not; the heterogeneity draws come from a stream of their own, so the truth and geometry of a
  seed do not depend on them.

Every painted pixel also gets a tissue label (``AIR`` ... ``POST_MARROW``), so that the renderer
can texture marrow and soft tissue alone and prove the suggested ROIs sit in pure tissue.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import numpy as np

from studies.phantom.fields import (
    BoolArray,
    FloatArray,
    IntArray,
    NoiseFields,
    Window,
    rounded_box,
    smoothstep,
)
from studies.phantom.geometry import FILUM, ROOT_HALF_WIDTH, Sac, SpineGeometry, ellipse_mask
from studies.phantom.params import Params, Vertebra

Painter = Callable[[Window, BoolArray, "float | FloatArray", int], None]
FULL: Final[Window] = (slice(None), slice(None))

# Tissue labels of the label map (used to verify that the suggested ROIs sit in pure tissue).
AIR, FAT, MUSCLE, SKIN, BOWEL, VESSEL, DISC, CORTEX, MARROW = range(9)
BVV, CSF, CORD, ROOT, EPIFAT, LIGAMENT, POST_MARROW = range(9, 16)


class SpinePainter(SpineGeometry):
    """The case's tissues, painted slice by slice at a lateral offset into image and labels."""

    def __init__(self, p: Params) -> None:
        super().__init__(p)
        self.fields = NoiseFields(p.n, p.spacing)
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
        # CSF gain: the CSF modulation's median over the suggested CSF ROI on the midsagittal
        # slice becomes 1, on every slice alike (render then pins the exact median).
        x_mid = p.slice_lateral_mm[p.mid_index]
        csf_roi = self.suggested_rois(x_mid)[-1]
        sac = self._sac(abs(x_mid))
        modulation = self._csf_modulation(x_mid, sac, self._root_lines(sac))
        in_roi = ellipse_mask(csf_roi, (p.n, p.n))[self.win_canal] & sac.mask
        self.csf_gain = 1.0 / float(np.median(modulation[in_roi]))

    def _lateral_field(self, pair: tuple[FloatArray, FloatArray], x_lat: float) -> FloatArray:
        """A unit-sd field that varies smoothly with the lateral offset (correlation
        ``cos(dx / 8 mm)`` between slices ``dx`` apart)."""
        angle = x_lat / 8.0
        result: FloatArray = math.cos(angle) * pair[0] + math.sin(angle) * pair[1]
        return result

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
        sacral = smoothstep(self.row_s, s1 - 10.0, s2 + 10.0)
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

    def _csf_modulation(
        self, x_lat: float, sac: Sac, roots: list[tuple[FloatArray, BoolArray]]
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
            filum = np.abs(d - (sac.front + FILUM * sac.ap))
            to_nerve = np.where(s > p.conus_tip_s, np.minimum(to_nerve, filum), to_nerve)
        to_nerve = np.maximum(to_nerve - ROOT_HALF_WIDTH, 0.0)
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
            wt = np.clip(1.0 - np.abs(d - line) / ROOT_HALF_WIDTH, 0.0, 1.0)
            mask = sac_mask & (wt > 0) & runs
            paint(w, mask, csf + (t["root"] - csf) * wt, ROOT)
        filum_d = sac.front + FILUM * sac.ap
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
                outer = rounded_box(a + reach / 2, bb, hh + 1.5 + reach / 2, hd, r)
                inner = rounded_box(a + reach / 2, bb, hh + 1.5 + reach / 2 - 1.4, hd - 1.4, r)
                if vb.name == "S1":  # the S1 upper endplate is a real endplate
                    inner = np.maximum(inner, -(a + 0.5 * vb.height - 1.6))
                paint(sl, outer <= 0, t["cortex"], CORTEX)
                si = vb.marrow * (1.0 + vb.grad_si * a / (0.5 * vb.height))
                sacral_marrow.append((sl, inner <= 0, i, si))
                bodies.append((i, sl, inner < -3.0))
                continue
            outer = rounded_box(a, bb, hh, hd, r)
            inner = rounded_box(a, bb, hh - 1.8, hd - 1.2, r - 1.0)
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
        self, vb: Vertebra, a: FloatArray, b: FloatArray, hh: FloatArray, hd: float
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
                        rounded_box(
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
                        rounded_box(
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
                        rounded_box(a - 0.22 * h, b - (b0 + 3.6 - 0.28 * ax), length, 3.6, 1.5)
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
                        rounded_box(a + 0.22 * h, pb, 0.22 * h + 1.0, 0.5 * p.canal_ap + 3.0, 3.0)
                    )
                if 10.5 < ax < 24.0:  # articular processes at the disc level below
                    fa = a - (0.5 * h + 0.5 * disc)
                    parts.append(rounded_box(fa, b - (b0 + 1.0), 0.5 * h, 6.5, 3.0))
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
