"""Where everything of a case lies, in image millimetres (:class:`SpineGeometry`), and the ROIs.

Why apart from the painting: where things are (the curve of the spine, each pixel's coordinates
along it, the frame of each vertebra, the bony canal and the thecal sac, the ellipses a reader is
offered) is worked out once per case and shared by every slice; what signal they carry is
:mod:`studies.phantom.painting`'s business.

Image coordinates follow spec section 2: ``(x, y) = (column, row)`` with the centre of the first
pixel at (0, 0); physically ``u = x * spacing`` runs anterior to posterior and ``v = y * spacing``
head to feet (IOP ``[0, 1, 0, 0, 0, -1]``). Along the spine, ``s`` (``arc``) is the arc length of
the curve through the centres of the vertebral bodies (0 at L3, positive feet-ward) and ``nrm``
the signed depth from it, positive posterior.

The suggested ROIs are ``vbq.rois/1`` ellipses (without UIDs): L1-L4 in the anterior-central
part of each body, the CSF at mid-L3 between the anterior dura and the dorsal cauda equina;
:mod:`studies.phantom.render` proves they stay in their tissue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from studies.phantom.fields import BoolArray, FloatArray, Window, bbox, smoothstep
from studies.phantom.params import Params, Vertebra
from studies.vocabulary import CSF, DEFAULT_CSF_LEVEL, LEVELS

ROOT_HALF_WIDTH: Final = 0.55  # mm
FILUM: Final = 0.82  # position of the filum terminale, as a fraction of the sac's depth


@dataclass(frozen=True)
class Sac:
    """The thecal sac in the canal window: curve coordinates and its walls (all mm)."""

    s: FloatArray
    d: FloatArray
    front: FloatArray  # anterior wall, ignoring disc bulges
    back: FloatArray
    dura_front: FloatArray  # anterior wall, indented by the discs
    ap: FloatArray
    mask: BoolArray
    cord_r: FloatArray  # cord / conus radius in this slice (0 below the conus)


class SpineGeometry:
    """The case's anatomy in image millimetres: where it lies, the same for every slice."""

    def __init__(self, p: Params) -> None:
        self.p = p
        n, ps = p.n, p.spacing
        idx = np.arange(n, dtype=np.float64) * ps
        self.gu, self.gv = np.meshgrid(idx, idx)  # gu[row, col] = col * ps, gv = row * ps
        self._build_curve()
        self._project()
        # Windows holding the canal and the prevertebral space: painting is confined to them.
        sac_end = p.sac_end_s + 5.0
        self.win_canal = bbox((self.nrm > 0.0) & (self.nrm < 50.0) & (self.arc < sac_end))
        s1 = next(vb.s for vb in p.vertebrae if vb.name == "S1")
        self.win_front = bbox((self.nrm > -110.0) & (self.nrm < 25.0) & (self.arc < s1 + 20.0))

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
        kink = (phi_s1 - phi_l5) * smoothstep(s, s_l5 + 6.0, s_s1 + 4.0)
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

    def _marrow_roi_mm(self, vb: Vertebra) -> tuple[float, float, float, float, float]:
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
        l3 = next(vb for vb in p.vertebrae if vb.name == DEFAULT_CSF_LEVEL)
        ap = p.sac_ap * math.sqrt(max(0.0, 1.0 - (x_lat / p.sac_half_width) ** 2))
        front = l3.depth / 2 + p.epidural_ant + (p.sac_ap - ap) / 2
        # The most anterior root reaches frac * ap minus its wave amplitude and half-width.
        nearest = min(FILUM * ap, *(r[0] * ap - r[3] for r in p.roots))
        root_front = front + nearest - ROOT_HALF_WIDTH
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
        for label in LEVELS:
            out.append(_ellipse(label, *self._marrow_roi_mm(by_name[label]), ps))
        csf = _ellipse(CSF, *self._csf_roi_mm(x_lat), ps)
        csf["level"] = DEFAULT_CSF_LEVEL
        out.append(csf)
        return out

    # -- the body, the canal and the sac in a slice --------------------------------------------

    def _body_scale(self, ax: float) -> float:
        """Fraction of the vertebral body's depth cut by a slice ``ax`` mm off the midline."""
        w = self.p.body_half_width
        return math.sqrt(max(0.0, 1.0 - (ax / w) ** 2)) if ax < 0.97 * w else 0.0

    def _canal_shape(self) -> tuple[FloatArray, FloatArray]:
        """Bony canal depth and half-width in the canal window (narrower in the sacrum)."""
        p = self.p
        s1 = p.vertebrae[7].s
        narrowing = smoothstep(self.arc[self.win_canal], s1 - 10.0, s1 + 30.0)
        return p.canal_ap - 7.0 * narrowing, 12.5 - 3.0 * narrowing

    def _sac(self, ax: float) -> Sac:
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
        taper = 1.0 - smoothstep(s, p.sac_end_s - 25.0, p.sac_end_s)
        ap0 = p.sac_ap * (1.0 - 0.25 * smoothstep(s, p.vertebrae[6].s, p.vertebrae[7].s))
        ap = ap0 * taper * lateral
        front = half + p.epidural_ant + (ap0 - ap) / 2
        back = front + ap
        mask = (d > front + bulge) & (d < back) & (s < p.sac_end_s) & (ap > 0.5)
        cord_r = 3.8 * np.clip((p.conus_tip_s - s) / 18.0, 0.0, 1.0) ** 0.6
        cord_r = cord_r * math.sqrt(max(0.0, 1.0 - (ax / 5.0) ** 2))
        return Sac(s, d, front, back, front + bulge, ap, mask, cord_r)

    def _root_lines(self, sac: Sac) -> list[tuple[FloatArray, BoolArray]]:
        """Depth of each cauda equina root along the sac, and where it runs."""
        p, s = self.p, sac.s
        return [
            (
                sac.front + frac * sac.ap + amp * np.sin(s / 9.0 + phase),
                (s > p.conus_tip_s - 20.0) & (s < s_exit),
            )
            for frac, s_exit, phase, amp in p.roots
        ]


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


def ellipse_mask(roi: dict[str, Any], shape: tuple[int, ...]) -> BoolArray:
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
