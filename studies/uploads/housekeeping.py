"""The uploads' periodic upkeep: the clean-ups that nothing else triggers.

:func:`uploads_tidy` runs every minute (Celery beat, the ``tidy_uploads`` task) and with the
outbox's dispatcher (``manage.py dispatch``). It fails ingests left without progress for longer
than their time limit (:func:`~studies.uploads.ingest.uploads_fail_stale`: a safety net, since
the outbox sends a dead ingest again within a minute), records the job of a queued upload that
has none (queued before the outbox existed), cancels transfers abandoned for a day and deletes
staged files left behind (:mod:`studies.uploads.staging`, on disk or in the object store).
Sending queued uploads is the outbox's (:mod:`studies.uploads.outbox`). It sits above the
transfer, the outbox and the ingest because it drives all three.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from django.utils import timezone

from studies.models import Upload, UploadStatus
from studies.uploads.ingest import uploads_fail_stale
from studies.uploads.outbox import ingest_job_key, upload_queue_ingest
from studies.uploads.staging import staging_entries, staging_remove_name
from studies.uploads.transfer import upload_cancel
from vbqweb.models import Job

logger = logging.getLogger(__name__)

ABANDONED_AFTER = timedelta(hours=24)
_ENTRY = re.compile(r"^(\d+)$|^\.(\d+)\.removing-")
"""A staging entry: ``<upload id>``, or a local folder half deleted by an earlier version."""


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
    """Delete staged files whose upload has ended (or no longer exists): belt and braces for a
    worker killed before its ``finally`` and for a deletion the object store refused.

    The entries are listed before the active uploads are read: a piece is only ever written for
    an upload already committed as receiving, so an entry listed here whose upload is not
    active afterwards is really left over. A store that cannot be reached ends the sweep (the
    next one, a minute later, tries again).
    """
    try:
        entries = staging_entries()
    except Exception:
        logger.warning("the staging storage cannot be listed now", exc_info=True)
        return 0
    active = {
        str(pk)
        for pk in Upload.objects.filter(
            status__in=[UploadStatus.RECEIVING, UploadStatus.QUEUED, UploadStatus.PROCESSING]
        ).values_list("pk", flat=True)
    }
    removed = 0
    for name in entries:
        match = _ENTRY.match(name)
        if match is None or match.group(1) in active:
            continue
        try:
            staging_remove_name(name)
        except Exception:
            logger.warning("staged files %s not deleted now", name, exc_info=True)
            return removed
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
    staged files. Returns what it did, for the log."""
    now = timezone.now()
    return {
        "queued": uploads_queue_without_job(),
        "failed": uploads_fail_stale(now=now),
        "expired": uploads_expire_abandoned(now=now),
        "swept": upload_folders_sweep(),
    }
