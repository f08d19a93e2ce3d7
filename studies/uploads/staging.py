"""An upload's staged bytes: where they wait between the transfer and the ingest.

They live in the ``staging`` storage (``STORAGES["staging"]``: ``VBQ_UPLOAD_ROOT`` on local disk
by default, the ``staging/`` prefix of the bucket with ``VBQ_STORAGE=s3``), so that the web
process that receives them and the worker that ingests them may run on different machines.

An object store cannot append to an object, so a file is kept as the *pieces* the browser sent
(:mod:`studies.uploads.transfer`), each an object of its own under a server-chosen name that
says everything about it: ``<upload>/<index:06d>-<size>-<offset:015d>-<length>.part``. One
listing of ``<upload>/`` tells which files are complete and how far each partial one got,
without opening anything. The ingest copies the complete files into a temporary folder of its
own (:func:`staged_files_fetch`) and the objects are deleted when it ends, when the upload is
cancelled, or by the periodic sweep (:mod:`studies.uploads.housekeeping`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.core.files.storage import Storage, storages

from studies.models import Upload
from vbqweb.storage import storage_delete_tree, storage_listdir

logger = logging.getLogger(__name__)

STAGING = "staging"
"""The storage alias (``STORAGES``)."""
_PIECE = re.compile(r"^(\d{6})-(\d{1,15})-(\d{15})-(\d{1,15})\.part$")
_BLOCK = 1 << 20


def staging_storage() -> Storage:
    return storages[STAGING]


def _pk(upload: Upload | int) -> int:
    return int(upload if isinstance(upload, int) else upload.pk)


def piece_name(upload: Upload | int, *, index: int, size: int, offset: int, length: int) -> str:
    """The object holding bytes ``[offset, offset + length)`` of file ``index`` of ``size``."""
    return f"{_pk(upload)}/{index:06d}-{size}-{offset:015d}-{length}.part"


@dataclass
class StagedFile:
    """One file of an upload as its pieces: ``pieces`` are (offset, length, object name)."""

    index: int
    size: int
    pieces: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def have(self) -> int:
        """How many bytes from the start are here without a gap: where the browser resumes."""
        end = 0
        for offset, length, _ in sorted(self.pieces):
            if offset > end:
                break
            end = max(end, offset + length)
        return min(end, self.size)

    @property
    def complete(self) -> bool:
        return self.have == self.size


def staged_files(upload: Upload | int) -> dict[int, StagedFile]:
    """What the upload holds, by file index (one listing; nothing is opened)."""
    pk = _pk(upload)
    files: dict[int, StagedFile] = {}
    conflicts: set[int] = set()
    for name in storage_listdir(staging_storage(), str(pk))[1]:
        match = _PIECE.match(name)
        if match is None:
            continue  # not ours (a stray file): never read
        index, size, offset, length = (int(g) for g in match.groups())
        staged = files.setdefault(index, StagedFile(index, size))
        if staged.size != size:
            conflicts.add(index)  # cannot happen through the transfer (it refuses with 409)
            continue
        staged.pieces.append((offset, length, f"{pk}/{name}"))
    for index in conflicts:
        logger.warning("upload %s: file %s has pieces of two sizes; one size kept", pk, index)
    return files


def staging_exists(upload: Upload | int) -> bool:
    """True while the upload has bytes waiting (a piece at least)."""
    return bool(staged_files(upload))


def staging_remove(upload: Upload | int) -> bool:
    """Delete the upload's staged bytes; False (logged) when the store cannot be reached now,
    in which case the periodic sweep deletes them later. Never raises for the store."""
    try:
        storage_delete_tree(staging_storage(), str(_pk(upload)))
    except Exception:
        logger.warning("upload %s: staged files not deleted yet", _pk(upload), exc_info=True)
        return False
    return True


def staging_remove_name(name: str) -> None:
    """Delete one top-level entry of the staging storage (the sweep's leftovers)."""
    storage_delete_tree(staging_storage(), name)


def staging_entries() -> list[str]:
    """The staging storage's top-level entries (one per upload with bytes waiting)."""
    directories, files = storage_listdir(staging_storage(), "")
    return sorted(set(directories) | set(files))


def copy_at_most(source: IO[bytes], target: IO[bytes], length: int) -> int:
    """Copy up to ``length`` bytes in blocks, stopping early at the end of ``source`` (a
    browser that went away, a piece shorter than its name says); returns the bytes copied."""
    remaining = length
    while remaining > 0:
        block = source.read(min(_BLOCK, remaining))
        if not block:
            break
        target.write(block)
        remaining -= len(block)
    return length - remaining


def staged_files_fetch(upload: Upload, into: Path) -> tuple[list[Path], list[int]]:
    """Copy the upload's complete files into ``into`` (the ingest's temporary folder).

    Returns their paths in the browser's order and each one's index in what it sent. Raises
    the store's error when it cannot be read (the ingest then waits for it, see
    :func:`vbqweb.storage.storage_unavailable`).
    """
    storage = staging_storage()
    paths: list[Path] = []
    indices: list[int] = []
    for index, staged in sorted(staged_files(upload).items()):
        if not staged.complete:
            continue
        path = into / f"{index:06d}.bin"
        with open(path, "wb") as out:
            for offset, length, name in sorted(staged.pieces):
                if offset >= staged.size:
                    continue
                out.seek(offset)
                with storage.open(name, "rb") as piece:
                    copy_at_most(piece, out, min(length, staged.size - offset))
            out.truncate(staged.size)
        paths.append(path)
        indices.append(index)
    return paths, indices
