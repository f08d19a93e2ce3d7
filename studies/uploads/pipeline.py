"""The one code path every way in uses: untrusted sources in, de-identified bytes out.

Spec section 3: "the same code path serves uploads on the site". :func:`deidentified_sources`
lists each source with :mod:`studies.ingest.sources`, reads it with
:mod:`studies.ingest.untrusted` (bounded, never trusting a header), de-identifies it with
:mod:`studies.ingest.deid_engine` and serialises it (:mod:`studies.ingest.deid_writer`). Three
callers consume it:

* the Celery task ``studies.tasks.ingest_upload`` ->
  :func:`~studies.uploads.ingest.upload_ingest`, for uploads from the site (the bytes wait in
  the upload's temporary folder, deleted when the task ends);
* :func:`~studies.uploads.ingest.case_set_ingest_paths`, synchronously, for the demo command
  and tests;
* ``manage.py deidentify``, which writes the same bytes to a folder instead of the database.

Nothing here touches the database: what to keep of each outcome is
:mod:`studies.uploads.store`'s business.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studies.ingest.deid_engine import DeidConfig, DeidResult, deidentify_dataset
from studies.ingest.deid_writer import deidentified_bytes
from studies.ingest.sources import DEFAULT_LIMITS, IngestError, IngestLimits, iter_sources
from studies.ingest.untrusted import quiet_pydicom, read_untrusted


@dataclass(frozen=True)
class SourceOutcome:
    """One source after reading and de-identification: a result with its bytes, or a reason.

    ``position`` is 1-based over all ``paths``; ``path_index`` says which path it came from and
    ``member_index`` its place inside that path (a zip's member or a folder's file; None for a
    plain file). ``name`` is for an operator's eyes only (the command prints it): it may carry
    identifiers and is never stored.
    """

    position: int
    path_index: int
    member_index: int | None
    name: str
    deid: DeidResult | None = None
    data: bytes | None = field(default=None, repr=False)
    reason: str | None = None


def _expands(path: Path) -> bool:
    """A folder or a zip yields members; a plain file yields itself."""
    if path.is_dir():
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
    except OSError:
        return False


def _sources_of(path: Path, limits: IngestLimits, *, alone: bool) -> Iterator[Any]:
    """``iter_sources`` of one path. An empty plain file among others is a rejected source (that
    file's problem); ``alone``, it is an empty upload, refused (:class:`IngestError`)."""
    if not alone and path.is_file() and not _expands(path) and path.stat().st_size == 0:
        yield _EmptySource(path.name)
        return
    yield from iter_sources(path, limits)


@dataclass(frozen=True)
class _EmptySource:
    name: str
    size: int = 0
    reason: str | None = "the file is empty"

    def read(self, cap: int) -> bytes:
        return b""


def count_sources(paths: Sequence[Path], limits: IngestLimits = DEFAULT_LIMITS) -> int:
    """How many sources the paths hold, listing only (a zip's central directory is checked for
    bombs here, before anything is extracted or stored). Raises :class:`IngestError`."""
    total = 0
    for path in paths:
        total += sum(1 for _ in _sources_of(path, limits, alone=len(paths) == 1))
        if total > limits.max_files:
            raise IngestError(f"the upload holds more than {limits.max_files} files")
    return total


def deidentified_sources(
    paths: Sequence[Path], *, config: DeidConfig, limits: IngestLimits = DEFAULT_LIMITS
) -> Iterator[SourceOutcome]:
    """Read, check, de-identify and serialise every source of ``paths``, one at a time.

    Each path is a DICOM file, a zip (one level: a zip inside is rejected) or a folder. At most
    one file's bytes are held at a time. :class:`IngestError` (the whole upload refused)
    propagates; anything wrong with one file becomes that file's ``reason``.
    """
    position = 0
    total_bytes = 0
    for path_index, path in enumerate(paths):
        expands = _expands(path)
        for member_index, source in enumerate(_sources_of(path, limits, alone=len(paths) == 1)):
            position += 1
            where = {
                "position": position,
                "path_index": path_index,
                "member_index": member_index if expands else None,
                "name": source.name,
            }
            result = read_untrusted(source, limits)  # type: ignore[arg-type]
            if result.dataset is None:
                yield SourceOutcome(**where, reason=result.reason or "unreadable")
                continue
            try:
                with quiet_pydicom():
                    deid = deidentify_dataset(result.dataset, config=config)
                    data = deidentified_bytes(deid.dataset)
            except (MemoryError, RecursionError):
                yield SourceOutcome(**where, reason="the file cannot be de-identified safely")
                continue
            except Exception as error:  # a hostile file must not stop the upload
                yield SourceOutcome(
                    **where, reason=f"the file cannot be de-identified ({type(error).__name__})"
                )
                continue
            total_bytes += len(data)
            if total_bytes > limits.max_total_bytes:
                raise IngestError("the upload holds more data than the limit: refused")
            yield SourceOutcome(**where, deid=deid, data=data)
