"""The upload's transfer: browser -> server, in resumable chunks, into its temporary folder.

**Transfer.** The browser sends the files of a case set as *chunks*: one raw request body of at
most ``VBQ_UPLOAD_CHUNK_BYTES`` carrying consecutive *pieces* of at most
``VBQ_UPLOAD_CHUNK_PIECES`` files, described by the ``X-Upload-Pieces`` header
(``index:offset:length:size,...``). Many small DICOM files travel together, a large zip is cut
into several chunks, and Django's own limits are left as they are: a chunk is never parsed as a
form (``DATA_UPLOAD_MAX_NUMBER_FILES`` does not apply) and it is streamed to disk in 1 MB blocks
(never held in memory). File *i* becomes ``VBQ_UPLOAD_ROOT/<upload>/files/<i:06d>-<size>.part``
and, once complete, ``<i:06d>.bin``: server-chosen names, never the browser's.

**Resume.** A piece must start where the server's copy ends (a retried piece that starts earlier
truncates and rewrites: idempotent); :func:`upload_transfer_state` tells the browser which files
are complete and how far each partial one got, so after a disconnect it continues, and a file
that changed size is refused (409) so the browser restarts cleanly.

**Finish.** :func:`upload_finish` queues the ingest and hands it to the outbox
(:mod:`studies.uploads.outbox`); :func:`upload_cancel` stops an upload at any stage.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from studies.models import Study, Upload, UploadStatus
from studies.uploads.config import ingest_limits
from studies.uploads.outbox import upload_queue_ingest
from studies.uploads.staging import upload_directory, upload_directory_remove

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


def _files_dir(upload: Upload) -> Path:
    return upload_directory(upload) / "files"


@contextlib.contextmanager
def _locked(upload: Upload) -> Iterator[Path | None]:
    """An exclusive lock on the upload's folder: chunks, finish and cancel never interleave.

    Yields the folder, or None when it is gone (cancelled, ingested): never re-created here.
    """
    directory = upload_directory(upload)
    try:
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        yield None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        os.close(fd)


def _gone(upload: Upload) -> UploadConflict:
    upload.refresh_from_db()
    return UploadConflict(
        f"This upload is {upload.get_status_display().lower()}: its files are no longer here.",
        {"status": upload.status},
    )


@contextlib.contextmanager
def _receiving(upload: Upload, refusal: str) -> Iterator[None]:
    """:func:`_locked`, for a request that needs the upload still receiving its files.

    Raises :class:`UploadConflict` when the folder is gone or the upload is past receiving;
    ``refusal`` is then the message, with ``{status}`` for the upload's current status.
    """
    with _locked(upload) as locked:
        if locked is None:
            raise _gone(upload)
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
    """Announce an upload of ``files`` files and ``total_bytes`` bytes; make its folder.

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
    root = Path(settings.VBQ_UPLOAD_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if total_bytes + DISK_MARGIN_BYTES > free:
        raise ValidationError(
            f"Not enough disk space on the server for this upload ({_size(total_bytes)} "
            f"needed, {_size(free)} free)."
        )
    name = " ".join(name.split())[:200] or f"Upload of {timezone.now():%Y-%m-%d %H:%M}"
    upload = Upload.objects.create(
        study=study,
        created_by=created_by,
        name=name,
        files_total_expected=files,
        bytes_total_expected=total_bytes,
    )
    _files_dir(upload).mkdir(parents=True, exist_ok=True)
    return upload


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


def _part_of(directory: Path, index: int) -> Path | None:
    found = sorted(directory.glob(f"{index:06d}-*.part"))
    return found[0] if found else None


def upload_receive_chunk(
    *, upload: Upload, pieces: list[Piece], stream: BinaryIO
) -> dict[str, Any]:
    """Append each piece to its file; return the upload's transfer counters.

    Raises :class:`UploadConflict` when the upload no longer receives, when a piece does not
    start where the server's copy ends (``state`` says where it does), or when a file's size
    differs from the one received before; :class:`ValidationError` for a malformed chunk.
    """
    with _receiving(upload, "This upload is {status}: it takes no more files."):
        directory = _files_dir(upload)
        grown = 0
        completed = 0
        try:
            for piece in pieces:
                if piece.index >= upload.files_total_expected:
                    raise ValidationError(
                        f"File {piece.index} was not announced "
                        f"({upload.files_total_expected} files)."
                    )
                delta, done = _receive_piece(directory, piece, stream)
                grown += delta
                completed += done
        finally:
            if grown or completed:
                Upload.objects.filter(pk=upload.pk).update(
                    bytes_received=F("bytes_received") + grown,
                    files_received=F("files_received") + completed,
                )
        upload.refresh_from_db()
        if upload.bytes_received > upload.bytes_total_expected:
            raise ValidationError("More bytes were sent than the upload announced.")
        return {
            "files_received": upload.files_received,
            "bytes_received": upload.bytes_received,
        }


def _skip(stream: BinaryIO, n: int) -> None:
    while n > 0:
        block = stream.read(min(_BLOCK, n))
        if not block:
            return
        n -= len(block)


def _receive_piece(directory: Path, piece: Piece, stream: BinaryIO) -> tuple[int, int]:
    """Write one piece; returns (bytes the file grew by, 1 if the file is now complete)."""
    complete = directory / f"{piece.index:06d}.bin"
    if complete.exists():
        if complete.stat().st_size != piece.size:
            raise UploadConflict(
                f"File {piece.index} differs from the one received before: restart the upload.",
                {"index": piece.index},
            )
        _skip(stream, piece.length)  # a retry of a piece that arrived: nothing to do
        return 0, 0
    part = _part_of(directory, piece.index)
    if part is not None and not part.name.endswith(f"-{piece.size}.part"):
        raise UploadConflict(
            f"File {piece.index} differs from the one received before: restart the upload.",
            {"index": piece.index},
        )
    part = part or directory / f"{piece.index:06d}-{piece.size}.part"
    have = part.stat().st_size if part.exists() else 0
    if piece.offset > have:
        raise UploadConflict(
            f"File {piece.index}: the server has {have} bytes, the piece starts at {piece.offset}.",
            {"index": piece.index, "have": have},
        )
    fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o600)
    written = 0
    try:
        os.ftruncate(fd, piece.offset)  # a retried piece rewrites what it covers
        os.lseek(fd, piece.offset, os.SEEK_SET)
        remaining = piece.length
        while remaining > 0:
            block = stream.read(min(_BLOCK, remaining))
            if not block:
                break  # the browser went away: keep what arrived, it resumes from there
            os.write(fd, block)
            written += len(block)
            remaining -= len(block)
    finally:
        os.close(fd)
    end = piece.offset + written
    delta = end - have
    if end == piece.size:
        os.replace(part, complete)
        return delta, 1
    return delta, 0


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
    directory = _files_dir(upload)
    complete: list[int] = []
    partial: dict[str, int] = {}
    if directory.is_dir():
        with os.scandir(directory) as entries:
            for entry in entries:
                stem, _, suffix = entry.name.partition(".")
                if suffix == "bin":
                    complete.append(int(stem))
                elif suffix == "part":
                    partial[str(int(stem.split("-")[0]))] = entry.stat().st_size
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
    """Stop an upload: its temporary files go at once, or (while the worker processes it) when
    the task notices, which also removes what it had stored."""
    with _locked(upload) as directory:
        now = timezone.now()
        stopped = Upload.objects.filter(
            pk=upload.pk, status__in=[UploadStatus.RECEIVING, UploadStatus.QUEUED]
        ).update(status=UploadStatus.CANCELLED, finished_at=now, message="Cancelled.")
        if stopped and directory is not None:
            upload_directory_remove(upload)
        else:
            Upload.objects.filter(pk=upload.pk, status=UploadStatus.PROCESSING).update(
                status=UploadStatus.CANCELLED,
                finished_at=now,
                message="Cancelled while processing; nothing from it was kept.",
            )
    upload.refresh_from_db()
    return upload
