"""The files of an upload, listed and bounded: a single file, a folder or a zip, none trusted.

Everything a study manager uploads (a file, a folder, a zip) is hostile until proven otherwise.
This module lists it as :class:`Source` s, each reading its bytes with a cap, without ever

* writing anything to a disk path derived from a name inside the upload (zip members are streamed
  into memory, with a byte cap; names are only *displayed*);
* following a symbolic link (in a folder or a zip) or opening a nested archive;
* trusting a size from a zip header: sizes are counted while streaming, against the member's cap
  and the archive's running total.

Listing comes first because it is where a whole upload is refused (:class:`IngestError`: too
many files, a zip bomb's totals) before a single byte is parsed; :mod:`studies.ingest.untrusted`
then reads each source. :class:`IngestLimits` bounds both.

Policies (decisions of this module; the lead may copy them to ``docs/``):

* **Nested zips are rejected** with a reason, never opened: one level of archive is what a
  manager needs, and recursion multiplies every bomb limit.
* **Zip bombs**: the entry count and central-directory size are read from the end-of-central-
  directory record *before* ``zipfile`` parses the directory; the declared total size and each
  member's compression ratio are checked before extraction; each member is streamed with a cap of
  ``min(declared size, max_file_bytes)`` and a running archive total, and a member whose data
  does not match its header is rejected.
* macOS/Windows litter (``__MACOSX/``, ``._*``, ``.DS_Store``, ``Thumbs.db``) is skipped silently.

Pure module: the standard library only; no Django; ``mypy --strict`` clean.
"""

from __future__ import annotations

import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = [
    "DEFAULT_LIMITS",
    "IngestError",
    "IngestLimits",
    "Source",
    "SourceError",
    "iter_sources",
]

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


def _size(n: int) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"
