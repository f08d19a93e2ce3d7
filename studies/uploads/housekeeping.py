"""The uploads' periodic upkeep: the outbox's dispatcher and the clean-ups that run with it.

:func:`uploads_dispatch_due` runs every minute (Celery beat, the ``dispatch_uploads`` task)
and on demand (``manage.py dispatch_uploads``). It recovers ingests whose task died
(:func:`~studies.uploads.ingest.uploads_requeue_stale`), sends queued uploads whose task is due
(:mod:`studies.uploads.outbox`), cancels transfers abandoned for a day and deletes temporary
folders left behind (:mod:`studies.uploads.staging`). It sits above the transfer, the outbox
and the ingest because it drives all three.
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
from studies.uploads.ingest import uploads_requeue_stale
from studies.uploads.outbox import _due, upload_dispatch
from studies.uploads.staging import REMOVING
from studies.uploads.transfer import upload_cancel

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


def uploads_dispatch_due() -> dict[str, int]:
    """The outbox's periodic dispatcher: send due queued uploads, recover dead tasks, expire
    abandoned transfers, sweep leftover folders. Returns what it did, for the log."""
    requeued, failed = uploads_requeue_stale()
    now = timezone.now()
    sent = 0
    for upload_id in Upload.objects.filter(_due(now)).values_list("pk", flat=True):
        sent += upload_dispatch(upload_id=upload_id)
    return {
        "sent": sent,
        "requeued": requeued,
        "failed": failed,
        "expired": uploads_expire_abandoned(now=now),
        "swept": upload_folders_sweep(),
    }
