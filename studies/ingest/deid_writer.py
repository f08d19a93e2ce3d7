"""Serialisation of a de-identified dataset as a DICOM Part 10 file: byte-exact, and fast.

Attributes the profile keeps as they are stay pydicom raw elements -- never decoded, never
re-encoded -- and :func:`write_deidentified` copies their bytes (same output as ``dcmwrite``,
checked by a test): that is what keeps de-identification within reach of a bare read/write loop
(``bench/ingest.py``). A module of its own because it is the one place that knows how pydicom
lays out elements (headers, lengths, encapsulated pixel data), apart from the profile's decisions
(:mod:`studies.ingest.deid_engine`), whose file meta and zeroed preamble it writes as they are.

Pure module: pydicom and the standard library only (no Django), ``mypy --strict`` clean.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO, Final

from pydicom import dcmwrite
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from studies.ingest.values import _peek, _text

__all__ = ["deidentified_bytes", "write_deidentified"]

_UNDEFINED: Final = 0xFFFFFFFF
_IMPLICIT_HEADER: Final = struct.Struct("<HHI")
_SHORT_HEADER: Final = struct.Struct("<HH2sH")
_LONG_HEADER: Final = struct.Struct("<HH2sHI")


def _write_elements(fp: DicomBytesIO, ds: Dataset) -> None:
    """``pydicom.filewriter.write_dataset`` with a fast path for untouched raw elements.

    Most attributes of a de-identified file are kept exactly as read and are still pydicom
    ``RawDataElement`` s holding their encoded value bytes: for those (defined length, same
    little-endian encoding as the output) the header is packed here and the bytes are copied,
    which is what ``write_data_element`` does for them too, minus its per-element overhead. All
    other elements (changed, decoded, sequences, encapsulated pixel data) go through pydicom.
    """
    implicit, little = fp.is_implicit_VR, fp.is_little_endian
    if not little or tuple(ds.original_encoding) != (implicit, little):
        write_dataset(fp, ds)
        return
    encodings = _peek(ds, "SpecificCharacterSet") or "iso8859"
    write = fp.write
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are not written (PS3.5 7.2)
        elem = ds.get_item(tag)
        value = elem.value
        if (
            isinstance(elem, RawDataElement)
            and isinstance(value, bytes)
            and elem.length != _UNDEFINED
        ):
            size = len(value)
            if implicit:
                write(_IMPLICIT_HEADER.pack(tag.group, tag.element, size))
                write(value)
                continue
            vr = elem.VR
            if vr and len(vr) == 2:
                if vr in EXPLICIT_VR_LENGTH_32:
                    write(_LONG_HEADER.pack(tag.group, tag.element, vr.encode(), 0, size))
                    write(value)
                    continue
                if size <= 0xFFFF:
                    write(_SHORT_HEADER.pack(tag.group, tag.element, vr.encode(), size))
                    write(value)
                    continue
        write_data_element(fp, elem, encodings)


def write_deidentified(ds: Dataset, target: str | Path | BinaryIO) -> None:
    """Write a de-identified dataset as a DICOM Part 10 file with an all-zero preamble.

    The same bytes ``dcmwrite(..., enforce_file_format=True)`` produces (a unit test compares
    them), composed from pydicom's public ``write_file_meta_info`` and ``write_data_element``:
    the file meta we just built is not deep-copied and re-validated for every file, and
    untouched raw elements are copied as bytes (see ``_write_elements``). Deflated or unusual
    transfer syntaxes go through ``dcmwrite`` itself.
    """
    ds.preamble = b"\x00" * 128
    meta = ds.file_meta
    syntax = UID(_text(meta.get("TransferSyntaxUID")))
    if syntax.is_deflated or syntax.is_private or not syntax.is_transfer_syntax:
        dcmwrite(target, ds, enforce_file_format=True)
        return
    pixels = ds.get_item(0x7FE00010)
    if pixels is not None:
        # PS3.5 A.4: encapsulated pixel data has undefined length, native pixel data a length.
        raw_undefined = isinstance(pixels, RawDataElement) and pixels.length == _UNDEFINED
        if not isinstance(pixels, RawDataElement) or raw_undefined != syntax.is_compressed:
            ds["PixelData"].is_undefined_length = syntax.is_compressed
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = syntax.is_implicit_VR
    buffer.is_little_endian = syntax.is_little_endian
    buffer.write(ds.preamble + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    _write_elements(buffer, ds)
    data = buffer.getvalue()
    if isinstance(target, (str, Path)):
        with open(target, "xb") as handle:
            handle.write(data)
    else:
        target.write(data)


def deidentified_bytes(ds: Dataset) -> bytes:
    """The Part 10 bytes of a de-identified dataset (for a storage API that takes content)."""
    buffer = io.BytesIO()
    write_deidentified(ds, buffer)
    return buffer.getvalue()
