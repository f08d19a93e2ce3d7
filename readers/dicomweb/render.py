"""Rendered images and thumbnails (PS3.18 8.3.5, 9.5.1.2): pure (pydicom, numpy, Pillow).

A rendered image is a frame turned into something a browser or a report shows: the stored
values through the Modality LUT (rescale slope and intercept), then the VOI LUT (a window), then
8 bits of grey (MONOCHROME1 inverted, colour sent as it is), cropped and scaled as the
``viewport`` asks, encoded as JPEG (the default), PNG or GIF.

Query parameters honoured (PS3.18 8.3.5.1): ``window=center,width,function`` (``linear``,
``linear_exact`` or ``sigmoid``, PS3.3 C.11.2.1.2); without it the first window of the header,
else the frame's minimum to maximum; ``viewport=vw,vh`` or ``vw,vh,sx,sy,sw,sh`` (the source
region, a negative width or height flips it; the result fits in ``vw`` x ``vh`` keeping the
aspect ratio); ``quality`` (1-100, JPEG). ``annotation`` is accepted and ignored (nothing is
burned in: the images are de-identified and stay so); anything else is the view's concern.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut

FORMATS: Final = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF"}
DEFAULT_MEDIA: Final = "image/jpeg"
THUMBNAIL_SIZE: Final = 128


class RenderError(ValueError):
    """A parameter the renderer cannot honour (a 400) or a frame it cannot decode."""


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "linear"


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    sx: float | None = None
    sy: float | None = None
    sw: float | None = None
    sh: float | None = None


def parse_window(text: str | None) -> Window | None:
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise RenderError("window is center,width[,function]")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise RenderError("window center and width are numbers") from None
    function = parts[2].lower() if len(parts) == 3 else "linear"
    if function not in ("linear", "linear_exact", "sigmoid"):
        raise RenderError("window function is linear, linear_exact or sigmoid")
    if width <= 0 or (function == "linear" and width < 1):
        raise RenderError("window width must be positive (>= 1 for linear)")
    return Window(center, width, function)


def parse_viewport(text: str | None) -> Viewport | None:
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 6):
        raise RenderError("viewport is vw,vh or vw,vh,sx,sy,sw,sh")
    try:
        width, height = int(parts[0]), int(parts[1])
        rest = [float(p) if p else None for p in parts[2:]]
    except ValueError:
        raise RenderError("viewport values are numbers") from None
    if not (0 < width <= 8192 and 0 < height <= 8192):
        raise RenderError("viewport width and height are 1 to 8192")
    if len(rest) == 4:
        return Viewport(width, height, rest[0], rest[1], rest[2], rest[3])
    return Viewport(width, height)


def parse_quality(text: str | None) -> int:
    if not text:
        return 90
    try:
        quality = int(text)
    except ValueError:
        raise RenderError("quality is a whole number from 1 to 100") from None
    if not 1 <= quality <= 100:
        raise RenderError("quality is a whole number from 1 to 100")
    return quality


def frame_array(ds: Dataset, number: int) -> np.ndarray:
    """Frame ``number`` (1-based) as modality values (float64), or RGB as stored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            array = ds.pixel_array
        except Exception as error:  # decoders raise many types
            raise RenderError(f"cannot decode the pixel data: {error}") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if frames > 1:
        if not 1 <= number <= frames:
            raise RenderError(f"frame {number} does not exist: the instance has {frames}")
        array = array[number - 1]
    elif number != 1:
        raise RenderError(f"frame {number} does not exist: the instance has 1")
    if samples == 1:
        return np.asarray(apply_modality_lut(array, ds), dtype=np.float64)
    return np.asarray(array)


def _header_window(ds: Dataset) -> Window | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    try:
        c = float(
            center[0] if hasattr(center, "__len__") and not isinstance(center, str) else center
        )
        w = float(width[0] if hasattr(width, "__len__") and not isinstance(width, str) else width)
    except (TypeError, ValueError, IndexError):
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").lower()
    if function not in ("linear", "linear_exact", "sigmoid"):
        function = "linear"
    return Window(c, w, function) if w > 0 else None


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Modality values -> 0..255 (PS3.3 C.11.2.1.2.1-3)."""
    c, w = window.center, window.width
    if window.function == "sigmoid":
        out = 255.0 / (1.0 + np.exp(-4.0 * (values - c) / w))
    elif window.function == "linear_exact":
        out = ((values - (c - w / 2)) / w) * 255.0
    else:
        out = ((values - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_8bit(ds: Dataset, values: np.ndarray, window: Window | None) -> np.ndarray:
    if values.ndim == 3:  # colour: scaled to 8 bits, no window
        if values.dtype != np.uint8:
            top = float(values.max()) or 1.0
            values = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return values
    chosen = window or _header_window(ds)
    if chosen is None:
        low, high = float(values.min()), float(values.max())
        chosen = Window((low + high) / 2, max(high - low, 1.0), "linear_exact")
    grey = apply_window(values, chosen)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        grey = 255 - grey
    return grey


def _viewport(image: Image.Image, viewport: Viewport | None) -> Image.Image:
    if viewport is None:
        return image
    if viewport.sw is not None or viewport.sx is not None:
        sx = viewport.sx or 0.0
        sy = viewport.sy or 0.0
        sw = viewport.sw if viewport.sw is not None else image.width - sx
        sh = viewport.sh if viewport.sh is not None else image.height - sy
        flip_x, flip_y = sw < 0, sh < 0
        left, right = sorted((sx, sx + sw))
        top, bottom = sorted((sy, sy + sh))
        box = (
            max(0, math.floor(left)),
            max(0, math.floor(top)),
            min(image.width, math.ceil(right)),
            min(image.height, math.ceil(bottom)),
        )
        if box[2] <= box[0] or box[3] <= box[1]:
            raise RenderError("the viewport's source region is outside the image")
        image = image.crop(box)
        if flip_x:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if flip_y:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    scale = min(viewport.width / image.width, viewport.height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def render(
    ds: Dataset,
    number: int,
    *,
    media_type: str = DEFAULT_MEDIA,
    window: Window | None = None,
    viewport: Viewport | None = None,
    quality: int = 90,
) -> bytes:
    """Frame ``number`` of ``ds`` rendered as ``media_type`` (a key of ``FORMATS``)."""
    if media_type not in FORMATS:
        raise RenderError(f"{media_type} is not a rendered media type offered here")
    grey = to_8bit(ds, frame_array(ds, number), window)
    image = _viewport(Image.fromarray(grey), viewport)
    buffer = io.BytesIO()
    if FORMATS[media_type] == "JPEG":
        image.save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, FORMATS[media_type])
    return buffer.getvalue()


def thumbnail_viewport(viewport: Viewport | None) -> Viewport:
    return viewport or Viewport(THUMBNAIL_SIZE, THUMBNAIL_SIZE)


def rendered_media_type(accept: list[tuple[str, dict[str, str]]]) -> tuple[str, bool] | None:
    """``(image media type, multipart?)`` for an Accept header's ranges, or None (a 406).

    ``*/*`` and ``image/*`` get JPEG; ``multipart/related; type=image/png`` a multipart body
    of PNGs (for series and studies)."""
    for media, params in accept:
        if media in ("*/*", "image/*"):
            return DEFAULT_MEDIA, False
        if media in FORMATS:
            return media, False
        if media == "multipart/related":
            inner = params.get("type", DEFAULT_MEDIA).lower()
            if inner in ("*/*", "image/*"):
                return DEFAULT_MEDIA, True
            if inner in FORMATS:
                return inner, True
    return None
