"""The uploads' periodic upkeep: the clean-ups that nothing else triggers.

:func:`uploads_tidy` runs every minute (Celery beat, the ``tidy_uploads`` task) and with the
outbox's dispatcher (``manage.py dispatch``). It fails ingests left without progress for longer
than their time limit (:func:`~studies.uploads.ingest.uploads_fail_stale`: a safety net, since
the outbox sends a dead ingest again within a minute), records the job of a queued upload that
has none (queued before the outbox existed), cancels transfers abandoned for a day and deletes
temporary folders left behind (:mod:`studies.uploads.staging`). Sending queued uploads is the
outbox's (:mod:`studies.uploads.outbox`). It sits above the transfer, the outbox and the ingest
because it drives all three.
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from studies.models import Upload, UploadStatus
from studies.uploads.ingest import uploads_fail_stale
from studies.uploads.outbox import ingest_job_key, upload_queue_ingest
from studies.uploads.staging import REMOVING
from studies.uploads.transfer import upload_cancel
from vbqweb.models import Job

ABANDONED_AFTER = timedelta(hours=24)


def uploads_expire_abandoned(*, now: Any = None) -> int:
    """Uploads whose transfer stopped a day ago: cancelled, their bytes deleted."""
    now = now or timezone.now()
    expired = 0
    for upload in Upload.objects.filter(
        status=UploadStatus.RECEIVING, updated_at__lt=now - ABANDONED_AFTER
    ):
        upload = upload_cancel(upload=upload)
        if upload.status == UploadStatus.CANCELLED:
            Upload.objects.filter(pk=upload.pk).update(
                message="Cancelled: no file arrived for a day."
            )
            expired += 1
    return expired


def upload_folders_sweep() -> int:
    """Delete temporary folders whose upload has ended (or no longer exists): belt and braces
    for a worker killed before its ``finally``."""
    root = Path(settings.VBQ_UPLOAD_ROOT)
    if not root.is_dir():
        return 0
    active = set(
        Upload.objects.filter(
            status__in=[UploadStatus.RECEIVING, UploadStatus.QUEUED, UploadStatus.PROCESSING]
        ).values_list("pk", flat=True)
    )
    removed = 0
    settled = time.time() - 3600  # never a folder being made for an upload created just now
    for entry in root.iterdir():
        abandoned = entry.name.isdigit() and int(entry.name) not in active
        half_removed = entry.name.startswith(".") and REMOVING in entry.name
        if entry.is_dir() and (abandoned or half_removed) and entry.stat().st_mtime < settled:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def uploads_queue_without_job() -> int:
    """Queued uploads with no ingest job in the outbox (queued before it existed): recorded,
    so that the dispatcher sends them. Returns how many."""
    queued = {
        ingest_job_key(pk): pk
        for pk in Upload.objects.filter(status=UploadStatus.QUEUED).values_list("pk", flat=True)
    }
    known = set(Job.objects.filter(key__in=queued).values_list("key", flat=True))
    for key in sorted(set(queued) - known):
        upload_queue_ingest(upload=Upload.objects.get(pk=queued[key]))
    return len(set(queued) - known)


def uploads_tidy() -> dict[str, int]:
    """Queue jobless uploads, fail dead ingests, expire abandoned transfers, sweep leftover
    folders. Returns what it did, for the log."""
    now = timezone.now()
    return {
        "queued": uploads_queue_without_job(),
        "failed": uploads_fail_stale(now=now),
        "expired": uploads_expire_abandoned(now=now),
        "swept": upload_folders_sweep(),
    }
