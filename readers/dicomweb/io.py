"""What the DICOMweb endpoints send: DICOM JSON, frames and multipart bodies (PS3.18, PS3.19 F).

Pure (pydicom and the standard library, no Django), so that the format decisions are tested
without a server:

- **Metadata** is the DICOM JSON model of the header (``Dataset.to_json_dict``), with the pixel
  data replaced by a ``BulkDataURI`` that points at the instance's frames, and the transfer
  syntax of the stored file in ``AvailableTransferSyntaxUID`` (0008,3002). Binary values other
  than the pixels are small in a de-identified MR header and are sent inline.
- **Frames** are sent in one of two representations. ``transfer-syntax=*`` (what Cornerstone's
  ``wadors`` loader asks for) returns the stored bytes as they are: a compressed frame stays
  compressed and is decoded in the browser, a native frame is a slice of Pixel Data. Any other
  request gets Explicit VR Little Endian, which the standard makes the default: the frame is
  decoded by pydicom, exactly as ``readers.measurement.dicomio`` decodes it for the
  measurement, so the browser's preview statistics are computed from the very values the
  server measures.
- **Multipart** bodies are ``multipart/related`` with one part per frame (or instance) and a
  random boundary, framed with CRLF as RFC 2046 asks; Cornerstone's ``extractMultipart`` reads
  exactly this layout.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import UID, ExplicitVRLittleEndian

EXPLICIT_LE: Final = str(ExplicitVRLittleEndian)
ORIGINAL: Final = "*"


class FrameError(ValueError):
    """A frame that does not exist or cannot be produced; the message says which and why."""


class NotAcceptable(ValueError):
    """No representation the client accepts can be produced."""


def read_header(source: BinaryIO) -> Dataset:
    """The header of a stored instance (pixel data not read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(source, stop_before_pixels=True)


def read_full(source: BinaryIO) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(source)


def transfer_syntax_of(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "TransferSyntaxUID", "") or EXPLICIT_LE)


def instance_json(ds: Dataset, *, pixel_data_uri: str) -> dict[str, Any]:
    """The DICOM JSON object of one instance's header (read without pixels)."""
    header = Dataset(ds)  # a shallow copy without the file meta, as DICOM JSON has none
    for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
        if tag in header:
            del header[tag]
    result: dict[str, Any] = header.to_json_dict(
        bulk_data_threshold=1 << 30, suppress_invalid_tags=True
    )
    syntax = transfer_syntax_of(ds)
    result["00083002"] = {"vr": "UI", "Value": [syntax]}
    encapsulated = UID(syntax).is_encapsulated if UID(syntax).is_transfer_syntax else False
    bits = int(ds.get("BitsAllocated", 16) or 16)
    result["7FE00010"] = {
        "vr": "OB" if encapsulated or bits <= 8 else "OW",
        "BulkDataURI": pixel_data_uri,
    }
    return dict(sorted(result.items()))


def number_of_frames(ds: Dataset) -> int:
    value = ds.get("NumberOfFrames")
    try:
        return max(1, int(value)) if value not in (None, "") else 1
    except (TypeError, ValueError):
        return 1


def parse_frame_list(text: str) -> list[int]:
    """``"1"`` or ``"1,3,5"`` → ``[1, 3, 5]`` (1-based, as in the URL); raises FrameError."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise FrameError(f"frame list {text!r} is not a comma-separated list of numbers") from None
    if not numbers or any(n < 1 for n in numbers):
        raise FrameError("frame numbers start at 1")
    return numbers


def frames(ds: Dataset, numbers: Sequence[int], *, syntax: str) -> tuple[list[bytes], str]:
    """The bytes of frames ``numbers`` (1-based) and the transfer syntax they are in.

    ``syntax`` is ``"*"`` (the stored representation) or Explicit VR Little Endian (decoded
    stored values, little-endian, in the dtype pydicom gives them).
    """
    total = number_of_frames(ds)
    if missing := [n for n in numbers if n > total]:
        raise FrameError(f"frame {missing[0]} does not exist: the instance has {total}")
    if "PixelData" not in ds:
        raise FrameError("the instance has no pixel data")
    stored = UID(transfer_syntax_of(ds))
    if syntax == ORIGINAL and stored.is_encapsulated:
        data = ds.PixelData
        return [bytes(get_frame(data, n - 1, number_of_frames=total)) for n in numbers], str(stored)
    if syntax == ORIGINAL and stored.is_little_endian and not stored.is_encapsulated:
        size = _native_frame_size(ds)
        data = ds.PixelData
        if len(data) < size * total:
            raise FrameError(f"pixel data holds {len(data)} bytes, {size * total} expected")
        return [bytes(data[(n - 1) * size : n * size]) for n in numbers], EXPLICIT_LE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            array = ds.pixel_array
        except Exception as error:  # decoders raise many types
            raise FrameError(f"cannot decode the pixel data ({stored.name}): {error}") from None
    if total == 1:
        array = array[np.newaxis, ...]
    little = array.dtype.newbyteorder("<")
    return [np.ascontiguousarray(array[n - 1], dtype=little).tobytes() for n in numbers], (
        EXPLICIT_LE
    )


def _native_frame_size(ds: Dataset) -> int:
    bits = int(ds.get("BitsAllocated", 16) or 16)
    if bits % 8:
        raise FrameError(f"BitsAllocated {bits} is not a whole number of bytes")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    return int(ds.Rows) * int(ds.Columns) * samples * bits // 8


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype`` and its parameters (lower-case keys)."""

    media_type: str
    params: dict[str, str]


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, in order; ``*/*`` when the header is missing.

    Quality values are ignored: DICOMweb clients list what they take, not preferences.
    Parameters are split on ``;`` outside quotes, so ``type="application/dicom"`` works.
    """
    if not header or not header.strip():
        return [MediaRange("*/*", {})]
    ranges = []
    for item in _split(header, ","):
        parts = _split(item, ";")
        if not parts or not parts[0].strip():
            continue
        params = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(parts[0].strip().lower(), params))
    return ranges or [MediaRange("*/*", {})]


def _split(text: str, sep: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == sep and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    out.append("".join(current))
    return out


@dataclass(frozen=True)
class FrameRepresentation:
    multipart: bool
    syntax: str  # "*" or EXPLICIT_LE


def frame_representation(
    accept: Iterable[MediaRange], *, stored_syntax: str, n_frames: int
) -> FrameRepresentation:
    """Choose how to send frames for an Accept header (PS3.18 8.7.3, 8.7.4).

    ``multipart/related; type="application/octet-stream"`` is the standard's form (the default
    for ``*/*``); a bare ``application/octet-stream`` is accepted for one frame. The
    ``transfer-syntax`` parameter picks the stored bytes (``*``, or the stored syntax when it is
    compressed) or decoded Explicit VR Little Endian (also the default); anything else raises
    NotAcceptable.
    """
    for media in accept:
        if media.media_type in ("*/*", "multipart/*"):
            return FrameRepresentation(True, EXPLICIT_LE)
        if media.media_type == "multipart/related":
            inner = media.params.get("type", "application/octet-stream").lower()
            if inner not in ("application/octet-stream", "*/*", "application/*"):
                continue
            multipart = True
        elif media.media_type in ("application/octet-stream", "application/*"):
            if n_frames != 1:
                continue
            multipart = False
        else:
            continue
        wanted = media.params.get("transfer-syntax", EXPLICIT_LE)
        # Explicit VR Little Endian is always decoded, even from a native file: it is what the
        # preview asks for, and it must be exactly the values the measurement decodes.
        if wanted == EXPLICIT_LE:
            return FrameRepresentation(multipart, EXPLICIT_LE)
        if wanted in (ORIGINAL, stored_syntax):
            return FrameRepresentation(multipart, ORIGINAL)
    raise NotAcceptable(
        'frames are sent as multipart/related; type="application/octet-stream" '
        f"(transfer-syntax=* or {EXPLICIT_LE})"
    )


IMPLICIT_LE: Final = "1.2.840.10008.1.2"
DEFLATED_LE: Final = "1.2.840.10008.1.2.1.99"
TRANSCODABLE: Final = frozenset(
    {
        EXPLICIT_LE,
        IMPLICIT_LE,
        DEFLATED_LE,
        "1.2.840.10008.1.2.5",  # RLE Lossless (pydicom's own encoder)
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless (pyjpegls)
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only (pylibjpeg-openjpeg)
    }
)
"""What an instance can be sent in besides its stored syntax: lossless only (a reader measures
these pixels; a lossy copy would not be the image that was measured)."""


def instance_representation(
    accept: Iterable[MediaRange], *, stored_syntax: str
) -> tuple[bool, str]:
    """``(multipart?, transfer syntax)`` for an instance request (PS3.18 8.7.3.5.2).

    ``multipart/related; type="application/dicom"`` is the standard's form; a bare
    ``application/dicom`` (or ``*/*``) is a single-part body, which plain HTTP clients and
    benchmarks use. The ``transfer-syntax`` parameter defaults to Explicit VR Little Endian, as
    the standard says; ``*`` is the stored syntax; a lossless syntax pydicom can write
    (``TRANSCODABLE``) is produced; anything else skips to the next media range, and when none
    is left the request is NotAcceptable (406).
    """
    for media in accept:
        if media.media_type == "multipart/related":
            if media.params.get("type", "application/dicom").lower() != "application/dicom":
                continue
            multipart = True
        elif media.media_type in ("application/dicom", "*/*", "application/*"):
            multipart = False
        else:
            continue
        named = media.media_type in ("multipart/related", "application/dicom")
        wanted = media.params.get("transfer-syntax", EXPLICIT_LE if named else ORIGINAL)
        if wanted in (ORIGINAL, stored_syntax):
            return multipart, ORIGINAL
        if wanted in TRANSCODABLE:
            return multipart, wanted
    raise NotAcceptable(
        "instances are sent as application/dicom or multipart/related; "
        f'type="application/dicom", in their stored transfer syntax or in {sorted(TRANSCODABLE)}'
    )


def transcode(data: bytes, syntax: str) -> bytes:
    """The instance ``data`` (a DICOM file) rewritten in transfer syntax ``syntax``, lossless;
    NotAcceptable when its pixels cannot be decoded or encoded that way."""
    from io import BytesIO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BytesIO(data))
        stored = UID(transfer_syntax_of(ds))
        if str(stored) == syntax:
            return data
        target = UID(syntax)
        try:
            if "PixelData" in ds and stored.is_compressed:
                ds.decompress()
            if "PixelData" in ds and target.is_compressed and target != DEFLATED_LE:
                ds.compress(target)
            else:
                ds.file_meta.TransferSyntaxUID = target
        except Exception as error:  # encoders and decoders raise many types
            raise NotAcceptable(f"cannot send this instance as {target.name}: {error}") from None
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def new_boundary() -> str:
    return f"vbq-{secrets.token_hex(16)}"


def multipart_body(parts: Iterable[tuple[str, bytes]], boundary: str) -> bytes:
    """A ``multipart/related`` body: each part is ``(content type, bytes)``."""
    chunks: list[bytes] = []
    for content_type, data in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("ascii"), data]
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def multipart_content_type(part_type: str, boundary: str) -> str:
    return f'multipart/related; type="{part_type}"; boundary={boundary}'
