"""The upload's transfer: browser -> server, in resumable chunks, into the staging storage.

**Transfer.** The browser sends the files of a case set as *chunks*: one raw request body of at
most ``VBQ_UPLOAD_CHUNK_BYTES`` carrying consecutive *pieces* of at most
``VBQ_UPLOAD_CHUNK_PIECES`` files, described by the ``X-Upload-Pieces`` header
(``index:offset:length:size,...``). Many small DICOM files travel together, a large zip is cut
into several chunks, and Django's own limits are left as they are: a chunk is never parsed as a
form (``DATA_UPLOAD_MAX_NUMBER_FILES`` does not apply) and it is streamed to a temporary file in
1 MB blocks (never held in memory) *before* the upload is locked, so a slow client holds no
lock. Each piece becomes an object of the ``staging`` storage under a server-chosen name, never
the browser's (:mod:`studies.uploads.staging`): local disk or an S3 bucket, so the web process
and the worker need not share a disk.

**Lock.** Chunks, finish and cancel of one upload never interleave: each runs under a row lock
on the upload in the database (``SELECT ... FOR UPDATE``; SQLite's single writer serialises the
same transactions), which every web process sees, on any machine. A lock file would only hold
on one machine's disk.

**Resume.** A piece must start where the server's copy ends (a retried piece that starts earlier
replaces what it covers: idempotent); :func:`upload_transfer_state` tells the browser which files
are complete and how far each partial one got, so after a disconnect it continues, and a file
that changed size is refused (409) so the browser restarts cleanly.

**Finish.** :func:`upload_finish` queues the ingest and hands it to the outbox
(:mod:`studies.uploads.outbox`); :func:`upload_cancel` stops an upload at any stage.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import transaction
from django.utils import timezone

from studies.models import Study, Upload, UploadStatus
from studies.uploads.config import ingest_limits
from studies.uploads.outbox import upload_queue_ingest
from studies.uploads.staging import (
    StagedFile,
    copy_at_most,
    piece_name,
    staged_files,
    staging_remove,
    staging_storage,
)

DISK_MARGIN_BYTES = 256 * 1024 * 1024
_BLOCK = 1 << 20
_PIECE = re.compile(r"^(\d{1,9}):(\d{1,15}):(\d{1,15}):(\d{1,15})$")


class UploadConflict(Exception):
    """The request does not fit the upload's state (HTTP 409); ``state`` tells the browser."""

    def __init__(self, message: str, state: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.state = state or {}


@dataclass(frozen=True)
class Piece:
    """Bytes ``[offset, offset + length)`` of the browser's file ``index`` of ``size`` bytes."""

    index: int
    offset: int
    length: int
    size: int


@contextlib.contextmanager
def _locked(upload: Upload) -> Iterator[Upload | None]:
    """The upload's row, locked until the block ends: chunks, finish and cancel never interleave.

    A database lock, seen by every web process on every machine (the staged bytes may be in an
    object store that has no locks). Yields None when the upload no longer exists. An exception
    out of the block rolls back what it wrote to the database (never the staged bytes: the
    counters are recomputed from them by the next chunk).
    """
    with transaction.atomic():
        yield Upload.objects.select_for_update().filter(pk=upload.pk).first()


@contextlib.contextmanager
def _receiving(upload: Upload, refusal: str) -> Iterator[None]:
    """:func:`_locked`, for a request that needs the upload still receiving its files.

    Raises :class:`UploadConflict` when the upload is gone or past receiving; ``refusal`` is then
    the message, with ``{status}`` for the upload's current status.
    """
    with _locked(upload) as locked:
        if locked is None:
            raise UploadConflict("This upload no longer exists.", {"status": "gone"})
        upload.refresh_from_db()
        if upload.status != UploadStatus.RECEIVING:
            raise UploadConflict(
                refusal.format(status=upload.get_status_display().lower()),
                {"status": upload.status},
            )
        yield


def _size(n: int) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


def upload_create(
    *,
    study: Study,
    created_by: AbstractBaseUser | None,
    name: str,
    files: int,
    total_bytes: int,
) -> Upload:
    """Announce an upload of ``files`` files and ``total_bytes`` bytes (nothing staged yet).

    Refuses an empty upload, more files than the ingest reads, more bytes than it accepts, or
    more than the disk has room for, before a byte is sent.
    """
    limits = ingest_limits()
    if files < 1:
        raise ValidationError("The upload is empty: choose a zip, a folder or some files.")
    if files > limits.max_files:
        raise ValidationError(
            f"{files} files is more than the limit of {limits.max_files} per upload: "
            "split the case set."
        )
    if total_bytes < 0 or total_bytes > limits.max_total_bytes:
        raise ValidationError(
            f"{_size(total_bytes)} is more than the limit of {_size(limits.max_total_bytes)} "
            "per upload: split the case set."
        )
    _check_disk_space(total_bytes)
    name = " ".join(name.split())[:200] or f"Upload of {timezone.now():%Y-%m-%d %H:%M}"
    upload = Upload.objects.create(
        study=study,
        created_by=created_by,
        name=name,
        files_total_expected=files,
        bytes_total_expected=total_bytes,
    )
    return upload


def _check_disk_space(total_bytes: int) -> None:
    """Staged on this machine's disk: refuse what it has no room for. (An object store's room
    is its operator's business; the worker's temporary copy is checked by the ingest's limits.)
    """
    storage = staging_storage()
    if not isinstance(storage, FileSystemStorage):
        return
    root = Path(storage.location)
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if total_bytes + DISK_MARGIN_BYTES > free:
        raise ValidationError(
            f"Not enough disk space on the server for this upload ({_size(total_bytes)} "
            f"needed, {_size(free)} free)."
        )


def parse_pieces(header: str, *, content_length: int) -> list[Piece]:
    """The ``X-Upload-Pieces`` header, checked against the chunk limits and the body length."""
    pieces: list[Piece] = []
    for part in header.split(","):
        match = _PIECE.match(part.strip())
        if match is None:
            raise ValidationError("Bad X-Upload-Pieces header (index:offset:length:size,...).")
        pieces.append(Piece(*(int(g) for g in match.groups())))
    if not pieces or len(pieces) > settings.VBQ_UPLOAD_CHUNK_PIECES:
        raise ValidationError(
            f"A chunk carries 1 to {settings.VBQ_UPLOAD_CHUNK_PIECES} pieces of files."
        )
    if content_length > settings.VBQ_UPLOAD_CHUNK_BYTES:
        raise ValidationError(
            f"A chunk is at most {_size(settings.VBQ_UPLOAD_CHUNK_BYTES)}: send smaller chunks."
        )
    if sum(p.length for p in pieces) != content_length:
        raise ValidationError("The pieces' lengths do not add up to the request's length.")
    previous = -1
    for piece in pieces:
        if piece.index <= previous:
            raise ValidationError("Pieces must name files in increasing order.")
        previous = piece.index
        if piece.offset + piece.length > piece.size:
            raise ValidationError(f"Piece of file {piece.index} runs past the file's size.")
    return pieces


def upload_receive_chunk(
    *, upload: Upload, pieces: list[Piece], stream: BinaryIO
) -> dict[str, Any]:
    """Store each piece as an object of the staging storage; return the transfer counters.

    Raises :class:`UploadConflict` when the upload no longer receives, when a piece does not
    start where the server's copy ends (``state`` says where it does), or when a file's size
    differs from the one received before; :class:`ValidationError` for a malformed chunk. The
    pieces stored before a refusal stay (the browser resumes from them).
    """
    with _spooled(stream, sum(p.length for p in pieces)) as body:
        error: UploadConflict | ValidationError | None = None
        with _receiving(upload, "This upload is {status}: it takes no more files."):
            held = staged_files(upload)
            try:
                for piece in pieces:
                    if piece.index >= upload.files_total_expected:
                        raise ValidationError(
                            f"File {piece.index} was not announced "
                            f"({upload.files_total_expected} files)."
                        )
                    _receive_piece(upload, held, piece, body)
            except (UploadConflict, ValidationError) as refused:
                error = refused
            Upload.objects.filter(pk=upload.pk).update(
                files_received=sum(f.complete for f in held.values()),
                bytes_received=sum(f.have for f in held.values()),
            )
    if error is not None:
        raise error
    upload.refresh_from_db()
    if upload.bytes_received > upload.bytes_total_expected:
        raise ValidationError("More bytes were sent than the upload announced.")
    return {"files_received": upload.files_received, "bytes_received": upload.bytes_received}


@contextlib.contextmanager
def _spooled(stream: BinaryIO, length: int) -> Iterator[IO[bytes]]:
    """The request's body (at most ``length`` bytes), read to a temporary file before the lock:
    a slow client never holds it. Shorter when the browser went away: what arrived is kept."""
    with tempfile.SpooledTemporaryFile(max_size=_BLOCK) as body:
        copy_at_most(stream, body, length)
        body.seek(0)
        yield body  # type: ignore[misc]


def _receive_piece(
    upload: Upload, held: dict[int, StagedFile], piece: Piece, body: IO[bytes]
) -> None:
    """Store one piece (its bytes are next in ``body``) and note it in ``held``."""
    staged = held.get(piece.index)
    if staged is not None and staged.size != piece.size:
        raise UploadConflict(
            f"File {piece.index} differs from the one received before: restart the upload.",
            {"index": piece.index},
        )
    if staged is not None and staged.complete:
        body.seek(piece.length, 1)  # a retry of a piece that arrived: nothing to do
        return
    have = staged.have if staged is not None else 0
    if piece.offset > have:
        raise UploadConflict(
            f"File {piece.index}: the server has {have} bytes, the piece starts at {piece.offset}.",
            {"index": piece.index, "have": have},
        )
    with tempfile.SpooledTemporaryFile(max_size=_BLOCK) as data:
        # Shorter when the browser went away: keep what arrived, it resumes from there.
        received = copy_at_most(body, data, piece.length)
        if received == 0 and piece.size > 0:
            return
        if staged is not None:
            _cut_at(upload, staged, piece.offset)  # a retried piece replaces what it covers
        name = piece_name(
            upload, index=piece.index, size=piece.size, offset=piece.offset, length=received
        )
        data.seek(0)
        saved = staging_storage().save(name, File(data, name=name))
        if saved != name:  # the staging storages overwrite: a new name would be lost
            raise RuntimeError(f"the staging storage stored {name!r} as {saved!r}")
    held.setdefault(piece.index, StagedFile(piece.index, piece.size)).pieces.append(
        (piece.offset, received, name)
    )


def _cut_at(upload: Upload, staged: StagedFile, offset: int) -> None:
    """Drop the file's bytes from ``offset`` on: pieces past it go, one that spans it keeps its
    head (rewritten as a shorter piece)."""
    storage = staging_storage()
    kept: list[tuple[int, int, str]] = []
    for start, length, name in sorted(staged.pieces):
        if start >= offset:
            storage.delete(name)
            continue
        if start + length > offset:
            with storage.open(name, "rb") as handle:
                head = handle.read(offset - start)
            shorter = piece_name(
                upload, index=staged.index, size=staged.size, offset=start, length=len(head)
            )
            storage.save(shorter, ContentFile(head, name=shorter))
            storage.delete(name)
            kept.append((start, len(head), shorter))
            continue
        kept.append((start, length, name))
    staged.pieces = kept


def _ranges(indices: list[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for i in sorted(indices):
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges


def upload_transfer_state(*, upload: Upload) -> dict[str, Any]:
    """Which files the server holds: ``complete`` as [first, last] index ranges, ``partial``
    as {index: bytes}. What the browser needs to resume after a disconnect."""
    complete: list[int] = []
    partial: dict[str, int] = {}
    for index, staged in staged_files(upload).items():
        if staged.complete:
            complete.append(index)
        else:
            partial[str(index)] = staged.have
    return {"complete": _ranges(complete), "partial": partial}


def upload_finish(*, upload: Upload) -> Upload:
    """Every announced file arrived: queue the ingest (the outbox), then try to send it.

    The status change and the ingest's job commit together before anything is sent; a broker
    that is down leaves the upload queued for the outbox's dispatcher.
    """
    with _receiving(upload, "This upload is already {status}."):
        if upload.files_total_expected == 0:
            raise ValidationError("The upload is empty: no files were sent.")
        state = upload_transfer_state(upload=upload)
        have = sum(last - first + 1 for first, last in state["complete"])
        if have != upload.files_total_expected:
            raise UploadConflict(
                f"{have} of {upload.files_total_expected} files have arrived: send the rest first.",
                state,
            )
        with transaction.atomic():
            if Upload.objects.filter(pk=upload.pk, status=UploadStatus.RECEIVING).update(
                status=UploadStatus.QUEUED
            ):
                upload_queue_ingest(upload=upload)
    upload.refresh_from_db()
    return upload


def upload_cancel(*, upload: Upload) -> Upload:
    """Stop an upload: its staged files go at once, or (while the worker processes it) when
    the task notices, which also removes what it had stored."""
    with _locked(upload):
        now = timezone.now()
        stopped = Upload.objects.filter(
            pk=upload.pk, status__in=[UploadStatus.RECEIVING, UploadStatus.QUEUED]
        ).update(status=UploadStatus.CANCELLED, finished_at=now, message="Cancelled.")
        if not stopped:
            Upload.objects.filter(pk=upload.pk, status=UploadStatus.PROCESSING).update(
                status=UploadStatus.CANCELLED,
                finished_at=now,
                message="Cancelled while processing; nothing from it was kept.",
            )
    if stopped:  # committed: a late chunk now finds the upload cancelled and writes nothing
        staging_remove(upload)
    upload.refresh_from_db()
    return upload
