"""Safe reading of untrusted uploads: enumerate, bound, parse and judge DICOM from outside.

Everything a study manager uploads (a file, a folder, a zip) is hostile until proven otherwise.
This module turns it into parsed datasets or short human reasons, without ever

* writing anything to a disk path derived from a name inside the upload (zip members are streamed
  into memory, with a byte cap; names are only *displayed*);
* following a symbolic link (in a folder or a zip) or opening a nested archive;
* trusting a size from a header: zip sizes are counted while streaming, a deflated data set is
  inflated with a cap before pydicom sees it, and the pixel size a DICOM header claims
  (``Rows x Columns x frames x samples x bits``) is checked *before* anything is decoded, so a
  forged 65535 x 65535 header allocates nothing;
* parsing with ``force=True`` unless the file provably is a DICOM file without its preamble, and
  then only when SOP Class, SOP Instance UID and Transfer Syntax are all present.

Policies (decisions of this module; the lead may copy them to ``docs/``):

* **Nested zips are rejected** with a reason, never opened: one level of archive is what a
  manager needs, and recursion multiplies every bomb limit.
* **Zip bombs**: the entry count and central-directory size are read from the end-of-central-
  directory record *before* ``zipfile`` parses the directory; the declared total size and each
  member's compression ratio are checked before extraction; each member is streamed with a cap of
  ``min(declared size, max_file_bytes)`` and a running archive total, and a member whose data
  does not match its header is rejected.
* **Only MR images are read**: MR, Enhanced MR and Legacy Converted Enhanced MR Image Storage, and
  Secondary Capture whose modality is MR (the de-identification quarantines those: a screen
  capture may show burned-in text). VBQ is defined on MR; everything else (CT, US, PDF, SR,
  presentation states, unknown SOP classes) is rejected with its name.
* macOS/Windows litter (``__MACOSX/``, ``._*``, ``.DS_Store``, ``Thumbs.db``) is skipped silently.

:func:`classify_series` judges whether a series can be read for VBQ (sagittal, T1-weighted by TR
and TE, spin echo, no contrast, enough slices) and says why, rule by rule.

Pure module: pydicom, numpy (through pydicom's decoders) and the standard library; no Django;
``mypy --strict`` clean.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import stat
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import iter_pixels
from pydicom.uid import UID

__all__ = [
    "DEFAULT_LIMITS",
    "Eligibility",
    "IngestError",
    "IngestLimits",
    "ReadResult",
    "Source",
    "SourceError",
    "classify_series",
    "iter_sources",
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
_SC_CLASSES: Final = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4",
    }
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
_LITTER_NAMES: Final = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_CHUNK: Final = 1 << 20


class IngestError(Exception):
    """The whole upload is refused (too many files, a zip bomb's totals, not a zip, empty).

    Raised by :func:`iter_sources` before extraction where possible, or while streaming once the
    archive's running total passes the limit; the caller must then discard everything it
    produced from this upload ("nothing partial").
    """


class SourceError(Exception):
    """One source cannot be read (a member larger than its header says, a corrupt member)."""


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what an upload may make us read, decode or allocate.

    The defaults fit MR case sets (thousands of files of at most a few MB each) with a wide
    margin, and keep the peak memory of one worker to about one file plus one decoded frame.
    """

    max_files: int = 50_000
    max_file_bytes: int = 1 << 30  # one file / zip member, after decompression
    max_total_bytes: int = 32 << 30  # one upload, after decompression
    max_ratio: float = 100.0  # zip member compression ratio, for members of ratio_min_bytes+
    ratio_min_bytes: int = 1 << 20
    max_central_directory_bytes: int = 64 << 20
    max_pixel_bytes: int = 1 << 30  # Rows x Columns x frames x samples x bits / 8
    max_sequence_depth: int = 16


DEFAULT_LIMITS: Final = IngestLimits()


@dataclass(frozen=True)
class Source:
    """One file of an upload: a display ``name`` and a way to read its bytes with a cap.

    ``name`` is the path relative to the upload (or the zip member name) for the report only:
    it may carry identifiers, so it is never stored or used as a storage path. ``size`` is the
    declared size (never trusted). ``reason`` is set when the source was rejected while listing
    (symlink, unsafe member path, encrypted, nested zip, bomb ratio); then it cannot be read.
    Read a source before advancing :func:`iter_sources` to the next one.
    """

    name: str
    size: int
    reason: str | None = None
    opener: Callable[[int], bytes] | None = field(default=None, repr=False, compare=False)

    def read(self, cap: int) -> bytes:
        """The content, at most ``cap`` bytes; :class:`SourceError` when it is larger or bad."""
        if self.opener is None:
            raise SourceError(self.reason or "this source cannot be read")
        return self.opener(cap)


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


# --- listing ---------------------------------------------------------------------------------


def _is_litter(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    base = parts[-1]
    return "__MACOSX" in parts[:-1] or base in _LITTER_NAMES or base.startswith("._")


def _printable(name: str) -> str:
    """A name fit for a one-line report: control characters replaced."""
    return "".join(ch if ch.isprintable() else "?" for ch in name)


def iter_sources(
    path: str | os.PathLike[str], limits: IngestLimits = DEFAULT_LIMITS
) -> Iterator[Source]:
    """Enumerate the files of an upload: a single file, a folder (recursively) or a zip.

    A folder is listed first (without following symbolic links; at most ``max_files`` regular
    files) and then yielded in sorted order; a zip's central directory is checked for bombs
    before anything is extracted. Rejected entries are yielded with a ``reason`` so that the
    report can name them. Raises :class:`IngestError` for a refused upload (missing, empty, too
    many files, bomb totals, unreadable zip).
    """
    root = Path(path)
    try:
        info = os.stat(root)  # the upload itself is named by the operator: followed
    except OSError:
        raise IngestError(f"{_printable(str(root))}: no such file or folder") from None
    if stat.S_ISDIR(info.st_mode):
        yield from _iter_folder(root, limits)
    elif stat.S_ISREG(info.st_mode):
        with open(root, "rb") as handle:
            magic = handle.read(4)
        if magic in _ZIP_MAGIC:
            yield from _iter_zip(root, limits)
        else:
            if info.st_size == 0:
                raise IngestError(f"{_printable(root.name)}: the file is empty")
            yield Source(root.name, info.st_size, None, _file_reader(root))
    else:
        raise IngestError(f"{_printable(str(root))}: not a regular file or folder")


def _file_reader(path: Path) -> Callable[[int], bytes]:
    def read(cap: int) -> bytes:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except OSError as error:
            raise SourceError(f"cannot open the file ({error.strerror})") from None
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SourceError("not a regular file")
            data = handle.read(cap + 1)
        if len(data) > cap:
            raise SourceError(f"the file is larger than the limit of {_size(cap)}")
        return data

    return read


def _iter_folder(root: Path, limits: IngestLimits) -> Iterator[Source]:
    entries: list[Source] = []
    regular = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        dirnames.sort()
        for name in list(dirnames):
            if (base / name).is_symlink():
                rel = (base / name).relative_to(root).as_posix()
                entries.append(
                    Source(_printable(rel), 0, "symbolic link to a folder: not followed")
                )
                dirnames.remove(name)
        for name in sorted(filenames):
            full = base / name
            rel = full.relative_to(root).as_posix()
            if _is_litter(rel):
                continue
            try:
                info = os.lstat(full)
            except OSError:
                entries.append(Source(_printable(rel), 0, "the file vanished while listing"))
                continue
            if stat.S_ISLNK(info.st_mode):
                entries.append(Source(_printable(rel), 0, "symbolic link: not followed"))
            elif not stat.S_ISREG(info.st_mode):
                entries.append(Source(_printable(rel), 0, "not a regular file"))
            else:
                regular += 1
                if regular > limits.max_files:
                    raise IngestError(f"the folder holds more than {limits.max_files} files")
                entries.append(Source(_printable(rel), info.st_size, None, _file_reader(full)))
    if not entries:
        raise IngestError("the folder is empty")
    entries.sort(key=lambda s: s.name)
    yield from entries


def _zip_directory_size(path: Path) -> tuple[int, int]:
    """(entry count, central directory bytes) from the end records, before zipfile reads them."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        tail_size = min(size, 22 + 0xFFFF)
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            raise IngestError("not a readable zip archive (no end of central directory)")
        _sig, _d, _dcd, _n_disk, n_total, cd_size, _cd_off, _clen = struct.unpack(
            "<4sHHHHIIH", tail[at : at + 22]
        )
        if n_total == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: follow the locator
            loc = at - 20
            if loc < 0 or tail[loc : loc + 4] != b"PK\x06\x07":
                raise IngestError("not a readable zip archive (bad zip64 locator)")
            (eocd64_offset,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
            if eocd64_offset + 56 > size:
                raise IngestError("not a readable zip archive (bad zip64 record)")
            handle.seek(eocd64_offset)
            record = handle.read(56)
            if record[:4] != b"PK\x06\x06":
                raise IngestError("not a readable zip archive (bad zip64 record)")
            n_total, cd_size = struct.unpack("<QQ", record[32:48])
    return n_total, cd_size


def _member_reason(info: zipfile.ZipInfo, limits: IngestLimits) -> str | None:
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        return "unsafe path inside the zip (absolute or '..'): not extracted"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link inside the zip: not followed"
    if info.flag_bits & 0x1:
        return "encrypted zip member: cannot be read"
    if name.lower().endswith(".zip"):
        return "a zip inside the zip: nested archives are not opened"
    if info.file_size > limits.max_file_bytes:
        return (
            f"declared size {_size(info.file_size)} is larger than the limit of "
            f"{_size(limits.max_file_bytes)}"
        )
    if info.file_size >= limits.ratio_min_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            return (
                f"compression ratio {ratio:.0f}:1 is above the limit of {limits.max_ratio:g}:1 "
                "(zip bomb?): not extracted"
            )
    return None


@dataclass
class _Budget:
    """Bytes streamed from one archive so far, against its total limit."""

    limit: int
    spent: int = 0

    def spend(self, n: int) -> None:
        self.spent += n
        if self.spent > self.limit:
            raise IngestError(
                f"the zip unpacks to more than the limit of {_size(self.limit)}: refused"
            )


def _member_reader(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget
) -> Callable[[int], bytes]:
    def read(cap: int) -> bytes:
        limit = min(info.file_size, cap)
        chunks: list[bytes] = []
        count = 0
        try:
            with archive.open(info) as handle:
                while True:
                    chunk = handle.read(min(_CHUNK, limit + 1 - count))
                    if not chunk:
                        break
                    count += len(chunk)
                    budget.spend(len(chunk))
                    if count > limit:
                        raise SourceError(
                            "the member holds more data than its header declares (or than the "
                            f"limit of {_size(cap)}): not extracted"
                        )
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
            text = str(error).lower()
            if "crc" in text:
                raise SourceError(
                    "the member's data does not match its header (CRC or size): not extracted"
                ) from None
            raise SourceError("corrupt zip member: cannot be read") from None
        except (NotImplementedError, RuntimeError):
            raise SourceError("zip member uses an unsupported compression or encryption") from None
        except ValueError:
            raise SourceError(
                "the zip was closed before this member was read (read sources in order)"
            ) from None
        if count != info.file_size:
            raise SourceError("the member's size does not match its header: not extracted")
        return b"".join(chunks)

    return read


def _iter_zip(path: Path, limits: IngestLimits) -> Iterator[Source]:
    entries, directory = _zip_directory_size(path)
    if entries == 0:
        raise IngestError("the zip archive is empty")
    if entries > limits.max_files:
        raise IngestError(
            f"the zip holds {entries} entries, more than the limit of {limits.max_files}"
        )
    if directory > limits.max_central_directory_bytes:
        raise IngestError("the zip's central directory is implausibly large: refused")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, struct.error):
        raise IngestError("not a readable zip archive") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_total_bytes:
            raise IngestError(
                f"the zip declares {_size(declared)} of content, more than the limit of "
                f"{_size(limits.max_total_bytes)}: refused before extraction"
            )
        budget = _Budget(limits.max_total_bytes)
        produced = 0
        for info in infos:
            if _is_litter(info.filename):
                continue
            name = _printable(info.filename)
            produced += 1
            reason = _member_reason(info, limits)
            if reason is not None:
                yield Source(name, info.file_size, reason)
            else:
                yield Source(name, info.file_size, None, _member_reader(archive, info, budget))
        if produced == 0:
            raise IngestError("the zip archive holds no files")


# --- reading ---------------------------------------------------------------------------------


def _size(n: int) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


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


def _plain(value: Any) -> str:
    return "" if value is None else str(value).strip().rstrip("\x00")


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
    if sop_class in _MR_CLASSES or sop_class in _SC_CLASSES:
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
    if sop_class in _SC_CLASSES:
        if modality == "MR":
            return None  # a captured MR image: read, then quarantined by the de-identification
        return f"{name} of modality {modality or 'none'}: VBQ is measured on MR images only"
    return f"{name} is not an MR image: VBQ is measured on MR images only"


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _peek(ds: Dataset, keyword: str) -> Any:
    """An attribute's value without storing the decoded element back into ``ds``.

    Elements only *checked* here then stay raw, and the de-identification writes raw elements
    it keeps byte for byte (and fast) instead of re-encoding them.
    """
    elem = ds.get_item(keyword)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        elem = convert_raw_data_element(elem, ds=ds)
    return elem.value


def _int_attribute(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    value = _peek(ds, keyword)
    if value is None or value == "":
        return default
    return _as_int(value)


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


# --- series eligibility ------------------------------------------------------------------------


@dataclass
class Eligibility:
    """Whether a series can be read for VBQ, and why: every failed and every passed rule.

    ``reasons`` lists the failed rules (empty when eligible), ``passed`` the rules met, ``notes``
    what does not decide eligibility but matters to the manager (3D acquisition, no field
    strength). The acquisition facts are what the study records per case: VBQ differs markedly
    between 1.5 T and 3 T and between vendors.
    """

    eligible: bool
    reasons: list[str]
    passed: list[str]
    notes: list[str]
    orientation: str
    tr_ms: float | None
    te_ms: float | None
    field_strength_t: float | None
    manufacturer: str | None
    model: str | None
    modality: str | None
    n_slices: int
    scanning_sequence: str | None
    acquisition_type: str | None
    contrast: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage and the manager's page."""
        return asdict(self)


_CONTRAST_WORDS: Final = frozenset(
    {
        "POST",
        "GAD",
        "GADO",
        "GADOLINIUM",
        "GD",
        "CE",
        "KM",
        "MDC",
        "CONTRAST",
        "POSTCONTRAST",
        "POSTGAD",
        "ENHANCED",
        "CM",
    }
)
_NEGATIONS: Final = frozenset({"NON", "NO", "WITHOUT", "WO", "PRE", "NATIVE", "NATIV", "PLAIN"})
_NO_AGENT: Final = frozenset(
    {"", "NONE", "NO", "N", "NIL", "NULL", "0", "-", "N/A", "NA", "WITHOUT", "NO CONTRAST"}
)


def _first_item(ds: Dataset, *path: str) -> Dataset | None:
    current: Dataset | None = ds
    for keyword in path:
        if current is None:
            return None
        value = current.get(keyword)
        if not value:
            return None
        current = value[0]
    return current


def _frame_value(ds: Dataset, macro: str, keyword: str) -> Any:
    """A value from the top level, the shared functional groups, or the first frame's groups."""
    if keyword in ds and ds.get(keyword) not in (None, ""):
        return ds.get(keyword)
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        item = _first_item(ds, group, macro)
        if item is not None and item.get(keyword) not in (None, ""):
            return item.get(keyword)
    return None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _multi(value: Any) -> str:
    """A possibly multi-valued string attribute as ``A\\B``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    try:
        return "\\".join(str(v).strip() for v in value)
    except TypeError:
        return str(value).strip()


def _tr_ms(ds: Dataset) -> float | None:
    return _float(_frame_value(ds, "MRTimingAndRelatedParametersSequence", "RepetitionTime"))


def _te_ms(ds: Dataset) -> float | None:
    echo = _float(ds.get("EchoTime"))
    if echo is not None:
        return echo
    return _float(_frame_value(ds, "MREchoSequence", "EffectiveEchoTime"))


def _fmt(value: float) -> str:
    return f"{round(value, 2):g}"


def _most_common(values: list[str]) -> str | None:
    values = [v for v in values if v]
    return Counter(values).most_common(1)[0][0] if values else None


def _normal(iop: Any) -> tuple[float, float, float] | None:
    try:
        r = [float(v) for v in iop[:3]]
        c = [float(v) for v in iop[3:6]]
    except (TypeError, ValueError, IndexError):
        return None
    if len(r) != 3 or len(c) != 3:
        return None
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    length = math.sqrt(sum(v * v for v in n))
    if not math.isfinite(length) or length < 1e-6:
        return None
    return (n[0] / length, n[1] / length, n[2] / length)


def _positions(ds: Dataset) -> list[tuple[float, float, float]]:
    found: list[tuple[float, float, float]] = []
    ipp = ds.get("ImagePositionPatient")
    frames = ds.get("PerFrameFunctionalGroupsSequence")
    if ipp is None and frames:
        for frame in frames:
            item = _first_item(frame, "PlanePositionSequence")
            if item is not None and item.get("ImagePositionPatient") is not None:
                ipp_frame = item.ImagePositionPatient
                try:
                    found.append((float(ipp_frame[0]), float(ipp_frame[1]), float(ipp_frame[2])))
                except (TypeError, ValueError, IndexError):
                    continue
        return found
    if ipp is not None:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            found.append((float(ipp[0]), float(ipp[1]), float(ipp[2])))
    return found


def _contrast_word(text: str) -> str | None:
    """The word in a description that says contrast was given, unless it is negated."""
    upper = text.upper()
    for marker in ("+C", "C+", "+GD", "+KM"):
        if marker in upper.replace(" ", ""):
            return marker
    tokens = [t for t in "".join(ch if ch.isalnum() else " " for ch in upper).split() if t]
    for i, token in enumerate(tokens):
        word = token
        if word in _CONTRAST_WORDS or word.startswith("GADO"):
            before = tokens[max(0, i - 2) : i]
            if any(b in _NEGATIONS for b in before):
                continue
            return word.lower()
    return None


def classify_series(
    headers: Sequence[Dataset],
    *,
    tr_range_ms: tuple[float, float] = (300.0, 1000.0),
    te_range_ms: tuple[float, float] = (5.0, 30.0),
    min_slices: int = 5,
    max_obliquity_deg: float = 30.0,
    require_spin_echo: bool = True,
) -> Eligibility:
    """Judge one series (its instances' headers, original or de-identified) for VBQ.

    Rules: MR modality; sagittal slices (slice normal within ``max_obliquity_deg`` of the
    patient's left-right axis); T1 weighting by TR and TE within the study's ranges; a spin-echo
    sequence when ``require_spin_echo`` (a 3D gradient echo such as an MP-RAGE/SPGR is T1-weighted
    by its inversion pulse, but its marrow signal is not the one VBQ was calibrated on); no
    contrast agent (Contrast/Bolus Agent, the enhanced contrast sequences, or words such as
    "+C", "post", "gad" in Series Description or Protocol Name; the de-identification keeps the
    agent as a flag and these descriptions when clean); at least ``min_slices`` slices. Works on
    classic (one frame per file) and enhanced multi-frame headers.
    """
    lo_tr, hi_tr = tr_range_ms
    lo_te, hi_te = te_range_ms
    reasons: list[str] = []
    passed: list[str] = []
    notes: list[str] = []

    modality = _most_common([_plain(h.get("Modality")).upper() for h in headers])
    tr = _median([v for h in headers if (v := _tr_ms(h)) is not None])
    te = _median([v for h in headers if (v := _te_ms(h)) is not None])
    field_t = _median(
        [v for h in headers if (v := _float(h.get("MagneticFieldStrength"))) is not None]
    )
    manufacturer = _most_common([_plain(h.get("Manufacturer")) for h in headers])
    model = _most_common([_plain(h.get("ManufacturerModelName")) for h in headers])
    scanning = _most_common([_multi(h.get("ScanningSequence")).upper() for h in headers])
    echo_pulse = _most_common([_plain(h.get("EchoPulseSequence")).upper() for h in headers])
    acquisition = _most_common([_plain(h.get("MRAcquisitionType")).upper() for h in headers])

    # Orientation: the most common normal among the instances (or frames).
    normals = []
    for h in headers:
        iop = _frame_value(h, "PlaneOrientationSequence", "ImageOrientationPatient")
        n = _normal(iop) if iop is not None else None
        if n is not None:
            normals.append(tuple(round(v, 3) for v in n))
    orientation = "unknown"
    normal = Counter(normals).most_common(1)[0][0] if normals else None
    if normal is not None:
        axis = max(range(3), key=lambda i: abs(normal[i]))
        angle = math.degrees(math.acos(min(1.0, abs(normal[axis]))))
        orientation = (
            ("sagittal", "coronal", "axial")[axis] if angle <= max_obliquity_deg else "oblique"
        )
        off_x = math.degrees(math.acos(min(1.0, abs(normal[0]))))
        if orientation == "sagittal":
            passed.append(f"sagittal slices (normal {off_x:.0f}° from left-right)")
        else:
            reasons.append(f"{orientation} slices: VBQ needs a sagittal series")
    else:
        reasons.append("no image orientation recorded: cannot tell a sagittal series")

    # Slices: distinct positions along the normal, else instances/frames.
    positions = [p for h in headers for p in _positions(h)]
    if normal is not None and positions:
        n_slices = len(
            {round(sum(a * b for a, b in zip(p, normal, strict=True)), 2) for p in positions}
        )
    else:
        n_slices = sum(_int_attribute(h, "NumberOfFrames", 1) or 1 for h in headers)

    if modality == "MR":
        passed.append("modality MR")
    else:
        reasons.append(f"modality {modality or 'not recorded'}: VBQ is measured on MR images")

    for label, value, lo, hi, unit_range in (
        ("TR", tr, lo_tr, hi_tr, "T1 spin-echo range"),
        ("TE", te, lo_te, hi_te, "T1 spin-echo range"),
    ):
        span = f"{_fmt(lo)}–{_fmt(hi)} ms"
        if value is None:
            reasons.append(f"{label} not recorded: T1 weighting cannot be judged")
        elif value < lo:
            how = "far below" if value < lo / 2 else "below"
            reasons.append(f"{label} {_fmt(value)} ms is {how} the {unit_range} {span}")
        elif value > hi:
            how = "far above" if value > hi * 2 else "above"
            reasons.append(f"{label} {_fmt(value)} ms is {how} the {unit_range} {span}")
        else:
            passed.append(f"{label} {_fmt(value)} ms is within the {unit_range} {span}")

    gradient_only = False
    if echo_pulse:
        gradient_only = echo_pulse == "GRADIENT"
        kind = {
            "SPIN": "spin echo",
            "GRADIENT": "gradient echo",
            "BOTH": "hybrid spin/gradient echo",
        }
        sequence_label = kind.get(echo_pulse, echo_pulse.lower())
    elif scanning:
        codes = set(scanning.upper().split("\\"))
        gradient_only = "SE" not in codes and bool(codes & {"GR", "EP"})
        sequence_label = (
            "spin echo" if "SE" in codes else "gradient echo" if gradient_only else scanning
        )
    else:
        sequence_label = ""
    dimension = f"{acquisition} " if acquisition in ("2D", "3D") else ""
    source = f"Echo Pulse Sequence {echo_pulse}" if echo_pulse else f"Scanning Sequence {scanning}"
    if not sequence_label:
        notes.append("sequence type not recorded (Scanning Sequence)")
    elif gradient_only and require_spin_echo:
        reasons.append(
            f"{dimension}{sequence_label} ({source}): VBQ is defined on T1 spin-echo images"
        )
    else:
        passed.append(f"{dimension}{sequence_label}")
    if acquisition == "3D" and not gradient_only:
        notes.append("3D acquisition: a 2D spin echo is preferred")

    contrast: bool | None = False
    why: str | None = None
    for h in headers:
        agent = _plain(h.get("ContrastBolusAgent")).upper()
        if agent not in _NO_AGENT:
            why = "contrast agent recorded (Contrast/Bolus Agent)"
        elif h.get("ContrastBolusAgentSequence"):
            why = "contrast agent recorded (Contrast/Bolus Agent Sequence)"
        else:
            for frame_group in (
                "SharedFunctionalGroupsSequence",
                "PerFrameFunctionalGroupsSequence",
            ):
                usage = _first_item(h, frame_group, "ContrastBolusUsageSequence")
                if (
                    usage is not None
                    and _plain(usage.get("ContrastBolusAgentAdministered")).upper() == "YES"
                ):
                    why = "contrast agent administered (Contrast/Bolus Usage)"
            for keyword, label in (
                ("SeriesDescription", "series description"),
                ("ProtocolName", "protocol name"),
            ):
                word = _contrast_word(_plain(h.get(keyword)))
                if word is not None:
                    why = f"{label} mentions contrast ({word!r})"
        if why is not None:
            break
    if why is not None:
        contrast = True
        reasons.append(why + ": VBQ needs a non-contrast series")
    else:
        passed.append("no contrast agent recorded")

    if n_slices >= min_slices:
        passed.append(f"{n_slices} slices (at least {min_slices})")
    else:
        reasons.append(f"{n_slices} slice(s): at least {min_slices} needed")

    if field_t is None:
        notes.append("field strength not recorded")

    return Eligibility(
        eligible=not reasons,
        reasons=reasons,
        passed=passed,
        notes=notes,
        orientation=orientation,
        tr_ms=tr,
        te_ms=te,
        field_strength_t=field_t,
        manufacturer=manufacturer,
        model=model,
        modality=modality,
        n_slices=n_slices,
        scanning_sequence=scanning or echo_pulse,
        acquisition_type=acquisition,
        contrast=contrast,
    )
