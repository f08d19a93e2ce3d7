"""The upload's transactional outbox: a finished upload is handed to the worker, never lost.

:func:`~studies.uploads.transfer.upload_finish` commits ``status = queued`` first; only then is
the task sent (:func:`upload_dispatch`), on a connection of its own with 2-second socket
timeouts and no retries, so a broker that is down or hung costs a request about two seconds,
never a hang, and the upload simply stays queued. The periodic dispatcher
(:func:`~studies.uploads.housekeeping.uploads_dispatch_due`: Celery beat every minute,
``manage.py dispatch_uploads``) and the status poll of an open upload page send queued uploads
again; the task claims its upload with a conditional UPDATE (queued -> processing), so it runs
once however many copies were sent.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from studies.models import Upload, UploadStatus
from vbqweb.tasks import INGEST_UPLOAD, send_now

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2.0
RETRY_FAILED_DISPATCH_AFTER = timedelta(seconds=15)
RESEND_AFTER = timedelta(minutes=2)
"""A queued upload whose task the broker accepted this long ago without a worker claiming it is
sent again (the broker may have lost it); the claim makes extra copies harmless."""


def _send(upload_id: int) -> None:
    """Publish the ingest task on a connection of its own that gives up within seconds."""
    send_now(INGEST_UPLOAD, timeout=BROKER_TIMEOUT_SECONDS, upload_id=upload_id)


def _due(now: Any) -> Q:
    return (
        Q(status=UploadStatus.QUEUED)
        & (
            Q(dispatch_attempted_at__isnull=True)
            | Q(dispatch_attempted_at__lt=now - RETRY_FAILED_DISPATCH_AFTER)
        )
        & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - RESEND_AFTER))
    )


def upload_dispatch(*, upload_id: int, due_only: bool = True) -> bool:
    """Send the ingest task of a queued upload; True when the broker accepted it.

    ``due_only`` sends only when the last attempt is old enough (see :func:`_due`): the status
    poll and the periodic dispatcher may call this as often as they like. Never raises for a
    broker problem: the upload stays queued with ``dispatch_error`` set.
    """
    now = timezone.now()
    claim = Upload.objects.filter(pk=upload_id, status=UploadStatus.QUEUED)
    if due_only:
        claim = claim.filter(_due(now))
    if not claim.update(dispatch_attempted_at=now, dispatch_attempts=F("dispatch_attempts") + 1):
        return False
    try:
        _send(upload_id)
    except (OperationalError, OSError, TimeoutError) as error:
        logger.warning("upload %s: could not send the ingest task: %s", upload_id, error)
        Upload.objects.filter(pk=upload_id).update(
            dispatch_error=f"The task queue could not be reached ({type(error).__name__})."[:200]
        )
        return False
    Upload.objects.filter(pk=upload_id).update(enqueued_at=timezone.now(), dispatch_error="")
    return True
