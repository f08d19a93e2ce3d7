"""Running an ingest: untrusted files in, de-identified cases, series and instances out.

The run itself, in the order it goes: claim the upload (queued -> processing, once however
often its task was sent), count its sources (bomb checks before anything is stored), feed the
shared pipeline (:func:`studies.uploads.pipeline.deidentified_sources`) into the store
(:mod:`studies.uploads.store`), judge the series (:mod:`studies.uploads.series`), summarise.
Two ways in run it here:

* the Celery task ``studies.tasks.ingest_upload`` -> :func:`upload_ingest`, for uploads from the
  site (the bytes wait in the staging storage, :mod:`studies.uploads.staging`, on this disk or in
  an object store; the worker copies them to a temporary folder of its own, and both copies are
  deleted when the task ends);
* :func:`case_set_ingest_paths`, synchronously, for the demo command and tests.

Failure policy ("nothing partial"): a rejected file stores nothing; a refused upload
(:class:`~studies.ingest.sources.IngestError`: a zip bomb's totals, too many entries), a cancel, a
time limit or an unexpected error removes every instance, series and case the upload had stored
(:func:`~studies.uploads.store.upload_discard_stored`).

A task that died (worker killed, machine lost) stops writing its progress, which is its job's
heartbeat (:func:`vbqweb.jobs.job_heartbeat`, in the store's progress writes); the outbox sends
the job again after the ingest's deadline, and the new run takes the upload over: it discards
what the dead run stored and starts again, once (:data:`MAX_ATTEMPTS`), then fails the upload.
:func:`uploads_fail_stale` is the safety net for an upload whose job was given up.

An object store that cannot be reached (:func:`vbqweb.storage.storage_unavailable`: refused,
timed out, 5xx) is nobody's fault and costs no attempt: the upload goes back to ``queued`` with a
message that says so, and its job is requested again ``VBQ_STORAGE_RETRY_AFTER`` seconds later
(a new request of a running job: the outbox re-sends it with its run count reset, so an outage,
however long, never gives the job up). What the interrupted run stored is discarded by the next.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F
from django.utils import timezone

from studies.ingest.sources import IngestError
from studies.models import Case, CaseSet, Instance, Study, Upload, UploadItem, UploadStatus
from studies.uploads.config import deid_config, ingest_limits
from studies.uploads.outbox import ingest_job_key
from studies.uploads.pipeline import count_sources, deidentified_sources
from studies.uploads.staging import staged_files_fetch, staging_remove
from studies.uploads.store import _Cancelled, _Store, upload_discard_stored
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record
from vbqweb.jobs import JobLost, current_job, job_heartbeat, job_request
from vbqweb.storage import storage_unavailable
from vbqweb.tasks import INGEST_UPLOAD

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
"""A task that died (worker killed, hard time limit) is re-run once, then the upload fails."""
WAITING_FOR_STORAGE = (
    "Waiting for the file store, which cannot be reached at the moment; nothing is lost: the "
    "ingest starts again by itself when it is back."
)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(upload: Upload, store: _Store) -> tuple[str, str]:
    """(status, message) once every source was processed."""
    counts = store.counts
    total = counts["processed"]
    if store.stored == 0 and counts["duplicate"] == 0:
        return UploadStatus.FAILED, (
            f"Nothing was stored: none of the {_n(total, 'file')} is a usable MR image "
            "(each file's reason is listed below)."
        )
    if store.stored == 0:
        return UploadStatus.DONE, (
            f"Nothing new: {_n(counts['duplicate'], 'file')} already stored "
            f"({counts['rejected']} rejected)."
        )
    cases = Case.objects.filter(pk__in=store.touched_cases)
    parts = [
        f"{_n(total, 'file')} read (zip members counted): {_n(store.stored, 'instance')} stored "
        f"in {_n(cases.count(), 'case')} ({store.new_cases} new)"
    ]
    for key, label in (
        ("duplicate", "already stored"),
        ("rejected", "rejected"),
        ("quarantined", "quarantined (possible burned-in text)"),
    ):
        if counts[key]:
            parts.append(f"{counts[key]} {label}")
    message = "; ".join(parts) + "."
    without = cases.exclude(series__selected=True).count()
    if without and without == cases.count():
        message += (
            " No case has an eligible series: open each case's series page to see why, choose "
            "a reading series by hand, or check the study's TR/TE ranges."
        )
    elif without:
        message += f" {_n(without, 'case')} without an eligible series (see its series page)."
    return UploadStatus.DONE, message


def _run(upload: Upload, paths: Sequence[Path], file_indices: list[int] | None) -> None:
    """The ingest proper; raises on a refused upload, a cancel or an error."""
    limits = ingest_limits()
    total = count_sources(paths, limits)  # bomb checks before anything is stored
    job_heartbeat()
    if upload.case_set_id is None:
        upload.case_set = CaseSet.objects.create(
            study=upload.study, name=upload.name, created_by=upload.created_by
        )
        Upload.objects.filter(pk=upload.pk).update(case_set=upload.case_set)
    Upload.objects.filter(pk=upload.pk).update(sources_total=total)
    store = _Store(upload, file_indices)
    for outcome in deidentified_sources(paths, config=deid_config(), limits=limits):
        store.add(outcome)
    store.flush()
    store.judge()
    status, message = _summary(upload, store)
    if not store.new_cases and upload.case_set_id is not None:
        CaseSet.objects.filter(pk=upload.case_set_id, cases__isnull=True).delete()
    Upload.objects.filter(pk=upload.pk, status=UploadStatus.PROCESSING).update(
        status=status, message=message, finished_at=timezone.now()
    )


def _fail(upload: Upload, message: str) -> None:
    upload_discard_stored(upload=upload)
    Upload.objects.filter(pk=upload.pk, status=UploadStatus.PROCESSING).update(
        status=UploadStatus.FAILED, message=message, finished_at=timezone.now()
    )


def _guarded_run(
    upload: Upload,
    paths: Sequence[Path],
    file_indices: list[int] | None,
    *,
    reraise: bool = False,
) -> None:
    """Run, and turn every way it can end early into a clean state with nothing partial.

    ``reraise`` (the synchronous callers) raises the refusal or the error after cleaning up.
    """
    try:
        _run(upload, paths, file_indices)
    except JobLost:
        raise  # presumed dead and replaced: the new run owns the upload, leave it alone
    except IngestError as error:
        _fail(upload, f"The upload was refused and nothing was stored: {error}.")
        if reraise:
            raise
    except _Cancelled:
        upload_discard_stored(upload=upload)
    except SoftTimeLimitExceeded:
        _fail(
            upload,
            "The ingest took longer than the limit of "
            f"{settings.VBQ_INGEST_TIME_LIMIT} s and was stopped; nothing was stored. "
            "Split the case set into smaller uploads.",
        )
    except Exception as error:
        if storage_unavailable(error) and not reraise:
            raise  # not the upload's fault: upload_ingest puts it back in the queue
        logger.exception("ingest of upload %s failed", upload.pk)
        _fail(upload, "The ingest failed with an internal error; nothing was stored.")
        if reraise:
            raise


def _claim(upload_id: int, *, takeover: bool) -> bool:
    """queued -> processing, exactly once however often the task was sent.

    ``takeover``: the job's earlier run died (the outbox sent it again), so an upload left
    ``processing`` is this run's to restart.
    """
    now = timezone.now()
    statuses = [UploadStatus.QUEUED, UploadStatus.PROCESSING] if takeover else [UploadStatus.QUEUED]
    return bool(
        Upload.objects.filter(pk=upload_id, status__in=statuses).update(
            status=UploadStatus.PROCESSING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            message="",
        )
    )


def upload_ingest(*, upload_id: int) -> str:
    """The Celery task's body: claim the upload, ingest its files, delete them at the end.

    Returns what happened (for the worker's log): ``"not claimed"`` when another delivery of
    the task got there first or the upload was cancelled. A run sent again after its earlier
    run died takes the upload over and starts from scratch; after :data:`MAX_ATTEMPTS` the
    upload fails. A run that learns it was replaced (:class:`~vbqweb.jobs.JobLost`) stops
    without touching the staged files, which the new run is reading. An unreachable object
    store sends the upload back to the queue (:func:`_wait_for_storage`).
    """
    job = current_job()
    if not _claim(upload_id, takeover=job is not None and job.runs > 1):
        cancelled = Upload.objects.filter(pk=upload_id, status=UploadStatus.CANCELLED).first()
        if cancelled is not None and _stored_anything(cancelled):
            # cancelled while a run waited for the store: what that run stored goes now
            upload_discard_stored(upload=cancelled)
        return "not claimed"
    upload = Upload.objects.select_related("study", "created_by").get(pk=upload_id)
    try:
        if upload.attempts > MAX_ATTEMPTS:
            _fail(
                upload,
                f"The ingest was interrupted {upload.attempts - 1} times (worker lost); "
                "nothing was stored.",
            )
            staging_remove(upload)
            return str(UploadStatus.FAILED)
        with tempfile.TemporaryDirectory(prefix=f"vbq-ingest-{upload.pk}-") as folder:
            if upload.attempts > 1 or _stored_anything(upload):
                # an earlier run died or was stopped by the store: start again from scratch
                upload_discard_stored(upload=upload)
                upload.refresh_from_db()
            paths, indices = staged_files_fetch(upload, Path(folder))
            if not paths:
                _fail(upload, "The uploaded files are gone (deleted before the ingest ran).")
            else:
                _guarded_run(upload, paths, indices)
    except JobLost:
        raise
    except Exception as error:
        if not storage_unavailable(error):
            staging_remove(upload)
            raise
        return _wait_for_storage(upload, error)
    except BaseException:
        staging_remove(upload)
        raise
    staging_remove(upload)
    upload.refresh_from_db()
    if upload.status in (UploadStatus.DONE, UploadStatus.FAILED):
        done = upload.status == UploadStatus.DONE
        counts = {
            "instances": upload.instances_stored,
            "cases": upload.cases_created,
            "rejected": upload.files_rejected,
            "quarantined": upload.files_quarantined,
        }
        record(Action.UPLOAD_FINISHED if done else Action.UPLOAD_FAILED, obj=upload, detail=counts)
    return str(upload.status)


def _stored_anything(upload: Upload) -> bool:
    return (
        Instance.objects.filter(upload=upload).exists()
        or UploadItem.objects.filter(upload=upload).exists()
    )


def _wait_for_storage(upload: Upload, error: BaseException) -> str:
    """Back to ``queued``, the attempt not counted, the job requested again a little later.

    Requesting the running job again makes the outbox wait it once this run ends, with its
    run count reset (:func:`vbqweb.jobs.job_request`), and send it after
    ``VBQ_STORAGE_RETRY_AFTER`` seconds: an outage is waited out, never counted as a lost worker.
    """
    logger.warning("ingest of upload %s: the file store cannot be reached (%s)", upload.pk, error)
    Upload.objects.filter(pk=upload.pk, status=UploadStatus.PROCESSING).update(
        status=UploadStatus.QUEUED,
        attempts=F("attempts") - 1,
        message=WAITING_FOR_STORAGE,
        started_at=None,
    )
    job_request(
        INGEST_UPLOAD,
        key=ingest_job_key(upload.pk),
        delay=settings.VBQ_STORAGE_RETRY_AFTER,
        upload_id=upload.pk,
    )
    return str(UploadStatus.QUEUED)


def case_set_ingest_paths(
    *,
    study: Study,
    paths: Iterable[Path],
    name: str,
    created_by: AbstractBaseUser | None = None,
) -> Upload:
    """Ingest files, folders or zips synchronously, through the site's ingest code path.

    For the demo command and tests: the caller's files are read, never moved or deleted. Each
    path's sources are reported with ``UploadItem.file_index`` = the path's index in ``paths``
    (so a caller can map its inputs to the cases created). Returns the finished upload
    (status ``done``, or ``failed`` with its ``message``); raises :class:`IngestError` when the
    whole set was refused.
    """
    path_list = [Path(p) for p in paths]
    size = sum(_size_of(p) for p in path_list)
    now = timezone.now()
    upload = Upload.objects.create(
        study=study,
        created_by=created_by,
        name=name,
        status=UploadStatus.PROCESSING,
        files_total_expected=len(path_list),
        files_received=len(path_list),
        bytes_total_expected=size,
        bytes_received=size,
        attempts=1,
        started_at=now,
        heartbeat_at=now,
    )
    _guarded_run(upload, path_list, None, reraise=True)
    upload.refresh_from_db()
    return upload


def _size_of(path: Path) -> int:
    """Bytes under a file or folder (symbolic links not followed), for the report's figures."""
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return 0


def uploads_fail_stale(*, now: Any = None) -> int:
    """Uploads still ``processing`` with no progress for longer than the ingest's hard time
    limit: failed, their files deleted. Returns how many.

    The safety net behind the outbox (which sends a dead ingest again within a minute): only an
    upload whose job was given up, or a synchronous ingest whose process died, is this old. A
    live ingest writes its progress at least every second, so it is never touched.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.VBQ_INGEST_TIME_LIMIT + 60)
    stale = Upload.objects.filter(status=UploadStatus.PROCESSING, heartbeat_at__lt=cutoff)
    failed = 0
    for upload in stale:
        _fail(upload, "The ingest stopped (worker lost or time limit); nothing was stored.")
        staging_remove(upload)
        failed += 1
    return failed
