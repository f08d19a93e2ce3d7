"""Numeric helpers on the pixel grid: array types, soft steps, signed distances, blur, noise.

Why apart: none of this knows anything of a spine. The geometry, the painting and the rendering
all lean on it, and keeping it here keeps those modules about anatomy and signal. numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int16]
Window = tuple[slice, slice]


def smoothstep(x: FloatArray, lo: float, hi: float) -> FloatArray:
    """0 below lo, 1 above hi, a smooth cubic between: soft transitions between regions."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    result: FloatArray = t * t * (3.0 - 2.0 * t)
    return result


def rounded_box(a: FloatArray, b: FloatArray, ha: Any, hb: Any, r: float) -> FloatArray:
    """Signed distance (mm, negative inside) to a box of half-sizes ha x hb with corner radius r."""
    qa = np.abs(a) - (ha - r)
    qb = np.abs(b) - (hb - r)
    outside = np.hypot(np.maximum(qa, 0.0), np.maximum(qb, 0.0))
    inside = np.minimum(np.maximum(qa, qb), 0.0)
    result: FloatArray = outside + inside - r
    return result


def bbox(mask: BoolArray) -> Window:
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


def blur(image: FloatArray, sigma_px: float) -> FloatArray:
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


class NoiseFields:
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
