"""Safe reading of untrusted uploads: parse and judge the bytes of one DICOM file from outside.

Each :class:`~studies.ingest.sources.Source` of an upload is hostile until proven otherwise.
This module turns it into a parsed dataset or a short human reason, without ever

* trusting a size from a header: a deflated data set is inflated with a cap before pydicom sees
  it, and the pixel size a DICOM header claims (``Rows x Columns x frames x samples x bits``) is
  checked *before* anything is decoded, so a forged 65535 x 65535 header allocates nothing;
* parsing with ``force=True`` unless the file provably is a DICOM file without its preamble, and
  then only when SOP Class, SOP Instance UID and Transfer Syntax are all present;
* letting pydicom's warnings, which may quote identifying values, reach a log
  (:func:`quiet_pydicom`).

Policy (a decision of this module; the lead may copy it to ``docs/``):

* **Only MR images are read**: MR, Enhanced MR and Legacy Converted Enhanced MR Image Storage, and
  Secondary Capture whose modality is MR (the de-identification quarantines those: a screen
  capture may show burned-in text). VBQ is defined on MR; everything else (CT, US, PDF, SR,
  presentation states, unknown SOP classes) is rejected with its name.

Pure module: pydicom, numpy (through pydicom's decoders) and the standard library; no Django;
``mypy --strict`` clean.
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import iter_pixels
from pydicom.uid import UID

from studies.ingest.sources import (
    _CHUNK,
    _ZIP_MAGIC,
    DEFAULT_LIMITS,
    IngestLimits,
    Source,
    SourceError,
    _size,
)
from studies.ingest.values import _SC_SOP_CLASSES, _as_int, _int_attribute, _peek, _plain

__all__ = [
    "ReadResult",
    "quiet_pydicom",
    "read_untrusted",
    "read_untrusted_bytes",
]

MR_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.4.1"
LEGACY_ENHANCED_MR_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.4.4"
_MR_CLASSES: Final = frozenset(
    {MR_IMAGE_STORAGE, ENHANCED_MR_IMAGE_STORAGE, LEGACY_ENHANCED_MR_IMAGE_STORAGE}
)
_PIXEL_ATTRIBUTES: Final = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PhotometricInterpretation",
    "PixelRepresentation",
)


@dataclass(frozen=True)
class ReadResult:
    """A dataset that passed every check, or the reason why the file was rejected."""

    dataset: Dataset | None
    reason: str | None


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log records while it parses untrusted bytes.

    A hostile file can make pydicom warn once per element (flooding a worker's log), and some of
    its messages quote element values, which may be identifiers: neither belongs in a log.
    """
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


# --- reading ---------------------------------------------------------------------------------


def read_untrusted(source: Source, limits: IngestLimits = DEFAULT_LIMITS) -> ReadResult:
    """Read one source of an upload: a dataset that passed every check, or a reason.

    :class:`IngestError` (the archive's running total exceeded) propagates: it refuses the whole
    upload. Everything else wrong with this one file becomes a ``reason``.
    """
    if source.reason is not None:
        return ReadResult(None, source.reason)
    try:
        data = source.read(limits.max_file_bytes)
    except SourceError as error:
        return ReadResult(None, str(error))
    return read_untrusted_bytes(data, limits)


def _bounded_inflate(data: bytes, cap: int) -> bool:
    """True when a raw deflate stream inflates to at most ``cap`` bytes (checked in chunks)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    pending = data
    try:
        while pending:
            out = inflater.decompress(pending, _CHUNK)
            total += len(out)
            if total > cap:
                return False
            pending = inflater.unconsumed_tail
            if not out and not pending:
                break
        total += len(inflater.flush())
    except zlib.error:
        return True  # pydicom will report the corrupt stream itself
    return total <= cap


def _reject(reason: str) -> ReadResult:
    return ReadResult(None, reason)


def read_untrusted_bytes(data: bytes, limits: IngestLimits = DEFAULT_LIMITS) -> ReadResult:
    """Parse and check the bytes of one file; see :func:`read_untrusted`."""
    if not data:
        return _reject("the file is empty")
    if data[:4] in _ZIP_MAGIC:
        return _reject("a zip inside the upload: nested archives are not opened")
    force = False
    if len(data) >= 132 and data[128:132] == b"DICM":
        pass
    elif data[:4] in (b"\x02\x00\x00\x00", b"\x02\x00\x01\x00") and data[4:6] in (b"UL", b"OB"):
        force = True  # a Part 10 file whose preamble was stripped: file meta comes first
    elif data[:5] == b"%PDF-":
        return _reject("a PDF document, not a DICOM file")
    elif data[:2] in (b"\x08\x00", b"\x00\x08"):
        return _reject(
            "a DICOM data set without the Part 10 header (no 'DICM' marker, no file meta): "
            "its transfer syntax is unknown, so it is not read"
        )
    else:
        return _reject("not a DICOM file (no 'DICM' marker at byte 128)")

    with quiet_pydicom():
        try:
            return _parse_and_check(data, force, limits)
        except RecursionError:
            return _reject("sequences nested too deeply to be read safely")
        except MemoryError:
            return _reject("the file claims more memory than can be allocated")


def _parse_and_check(data: bytes, force: bool, limits: IngestLimits) -> ReadResult:
    stream = io.BytesIO(data)
    try:
        read_preamble(stream, force)
        meta = _read_file_meta_info(stream)
    except Exception:
        return _reject("the DICOM file meta information is corrupt")
    syntax = UID(_plain(meta.get("TransferSyntaxUID")))
    if not syntax:
        return _reject("no Transfer Syntax UID in the file meta information")
    if not syntax.is_transfer_syntax:
        return _reject(f"unknown transfer syntax {syntax}")
    if syntax.is_deflated and not _bounded_inflate(data[stream.tell() :], limits.max_file_bytes):
        return _reject(
            f"the deflated data set inflates beyond the limit of {_size(limits.max_file_bytes)}"
        )

    try:
        ds = dcmread(io.BytesIO(data), force=force)
    except RecursionError:
        raise
    except (EOFError, struct.error):
        return _reject("the file ends inside its data set (truncated)")
    except Exception as error:
        return _reject(f"corrupt DICOM data set ({type(error).__name__})")

    if _ends_inside_an_element(ds):
        return _reject("the file ends inside its data set (truncated)")
    problem = _convert_all(ds, limits.max_sequence_depth)
    if problem is not None:
        return _reject(problem)

    for keyword, label in (
        ("SOPClassUID", "SOP Class UID"),
        ("SOPInstanceUID", "SOP Instance UID"),
    ):
        value = _plain(_peek(ds, keyword))
        if not value or len(value) > 64 or not UID(value).is_valid:
            return _reject(f"no valid {label}")
    # Order: what the file is, what its header claims (before any pixel work), then whether
    # this site reads it, and last the pixel data itself (length check or decoding).
    problem = _image_class_problem(ds)
    if problem is None:
        problem, claimed, frames = _pixel_header_problem(ds, limits)
        if problem is None:
            problem = _mr_problem(ds) or _pixel_data_problem(ds, syntax, claimed, frames)
    return ReadResult(ds, None) if problem is None else _reject(problem)


def _ends_inside_an_element(ds: Dataset) -> bool:
    """pydicom reads a file cut inside an element's value without error, keeping the short
    value: the last element then holds fewer bytes than its header declares. (Pixel data is
    length-checked later with a more precise reason.)"""
    if not len(ds):
        return False
    tag = max(ds.keys())
    raw = ds.get_item(tag)
    if tag == 0x7FE00010 or not isinstance(raw, RawDataElement):
        return False
    value, length = raw.value, raw.length
    return isinstance(value, (bytes, bytearray)) and length != 0xFFFFFFFF and len(value) < length


def _convert_all(ds: Dataset, max_depth: int) -> str | None:
    """Parse every sequence now, bounding the nesting depth without recursion.

    Other elements stay raw (pydicom decodes lazily): the de-identification decodes what it
    inspects, and what it keeps unchanged is written back byte for byte.
    """
    stack: list[tuple[Dataset, int]] = [(ds, 1)]
    try:
        while stack:
            current, depth = stack.pop()
            if depth > max_depth:
                return f"sequences nested more than {max_depth} levels deep"
            for tag, raw in list(current.items()):
                vr = raw.VR
                if vr is None or vr == "UN":
                    try:
                        vr = dictionary_VR(tag)
                    except KeyError:
                        continue
                if vr == "SQ":
                    stack.extend((item, depth + 1) for item in current[tag].value)
    except RecursionError:
        raise
    except Exception as error:
        return f"a sequence cannot be decoded ({type(error).__name__})"
    return None


def _image_class_problem(ds: Dataset) -> str | None:
    """Unknown SOP classes and non-image objects (PDF, SR, STL, presentation states ...)."""
    sop_class = _plain(_peek(ds, "SOPClassUID"))
    if sop_class in _MR_CLASSES or sop_class in _SC_SOP_CLASSES:
        return None
    uid = UID(sop_class)
    if uid.type != "SOP Class":
        return f"unknown SOP class {sop_class}: not an image this site can read"
    if "Image Storage" not in uid.name:
        return f"{uid.name} ({sop_class}) is not an image"
    return None


def _mr_problem(ds: Dataset) -> str | None:
    """The site reads MR images only (and MR secondary captures, which get quarantined)."""
    sop_class = _plain(_peek(ds, "SOPClassUID"))
    modality = _plain(_peek(ds, "Modality")).upper()
    if sop_class in _MR_CLASSES:
        photometric = _plain(_peek(ds, "PhotometricInterpretation")).upper()
        if photometric not in ("MONOCHROME1", "MONOCHROME2"):
            return f"a {photometric} colour MR image: VBQ needs grayscale"
        return None
    name = UID(sop_class).name
    if sop_class in _SC_SOP_CLASSES:
        if modality == "MR":
            return None  # a captured MR image: read, then quarantined by the de-identification
        return f"{name} of modality {modality or 'none'}: VBQ is measured on MR images only"
    return f"{name} is not an MR image: VBQ is measured on MR images only"


def _pixel_header_problem(ds: Dataset, limits: IngestLimits) -> tuple[str | None, int, int]:
    """Pixel attributes present and sane, and the size they claim within the limit.

    Returns (problem, claimed bytes, frames). Nothing is decoded or allocated here: a forged
    46341 x 46341 header is refused from its numbers.
    """
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            return "floating-point pixel data is not supported", 0, 0
        return "no pixel data", 0, 0
    values = {k: _peek(ds, k) for k in _PIXEL_ATTRIBUTES}
    missing = [k for k, v in values.items() if v is None or v == ""]
    if missing:
        return "missing required pixel attribute(s): " + ", ".join(missing), 0, 0
    rows = _as_int(values["Rows"])
    columns = _as_int(values["Columns"])
    samples = _as_int(values["SamplesPerPixel"])
    bits = _as_int(values["BitsAllocated"])
    stored = _as_int(values["BitsStored"])
    frames = _int_attribute(ds, "NumberOfFrames", 1)
    if rows is None or columns is None or rows < 1 or columns < 1:
        return "invalid Rows or Columns", 0, 0
    if samples not in (1, 3):
        return f"invalid Samples per Pixel {samples}", 0, 0
    if bits not in (1, 8, 16, 32, 64) or stored is None or not 1 <= stored <= bits:
        return "invalid Bits Allocated or Bits Stored", 0, 0
    if frames is None or frames < 1:
        return "invalid Number of Frames", 0, 0
    claimed = (rows * columns * frames * samples * bits + 7) // 8
    if claimed > limits.max_pixel_bytes:
        return (
            f"the header claims {rows} x {columns} pixels x {frames} frame(s) "
            f"({_size(claimed)}), beyond the limit of {_size(limits.max_pixel_bytes)}",
            claimed,
            frames,
        )
    return None, claimed, frames


def _pixel_data_problem(ds: Dataset, syntax: UID, claimed: int, frames: int) -> str | None:
    """Native pixel data: its length matches the header. Encapsulated: every frame decodes."""
    if not syntax.is_encapsulated:
        value = _peek(ds, "PixelData")
        actual = len(value) if isinstance(value, (bytes, bytearray)) else -1
        if actual < claimed:
            return f"pixel data is truncated: {actual} bytes where the header implies {claimed}"
        if actual > claimed + 1:
            return f"pixel data is longer than its header implies ({actual} bytes, not {claimed})"
        return None
    label = f"{syntax.name} ({syntax})"
    decoder = get_decoder(syntax)
    if not decoder.is_available:
        return f"no installed decoder for {label}"
    decoded = 0
    try:
        for _frame in iter_pixels(ds, raw=True):
            decoded += 1
    except MemoryError:
        raise
    except Exception:
        return f"pixel data could not be decoded: no installed decoder reads this {label}"
    if decoded != frames:
        return f"pixel data holds {decoded} frame(s), not the {frames} its header claims"
    return None
