"""A finished upload's ingest, handed to the worker through the site's outbox, never lost.

:func:`~studies.uploads.transfer.upload_finish` commits ``status = queued`` and the ingest's job
(:func:`upload_queue_ingest`, :mod:`vbqweb.jobs`) in one transaction; the job is sent after
commit on a connection of its own that gives up within a second, so a broker that is down or
hung costs the request about that, never a hang, and the upload simply stays queued. The
outbox's dispatcher (Celery beat, every few seconds) sends it when the broker is back, sends it
again if it was not picked up, and sends it again if its run stopped beating (the worker died):
the run then takes the upload over (:func:`~studies.uploads.ingest.upload_ingest`). The task
claims its upload with a conditional UPDATE, so copies of a message are harmless.

The upload's status page reads where its job is (:func:`upload_outbox_state`).
"""

from __future__ import annotations

from typing import Any

from studies.models import Upload, UploadStatus
from vbqweb.jobs import job_for_key, job_request
from vbqweb.models import Job
from vbqweb.tasks import INGEST_UPLOAD


def ingest_job_key(upload_id: int) -> str:
    return f"ingest:upload:{upload_id}"


def upload_queue_ingest(*, upload: Upload) -> None:
    """Record the ingest of ``upload`` in the outbox (call it in the transaction that queues
    the upload); it is sent once that transaction commits."""
    job_request(INGEST_UPLOAD, key=ingest_job_key(upload.pk), upload_id=upload.pk)


def upload_outbox_state(*, upload: Upload) -> dict[str, Any]:
    """Where the ingest's job is, for the status page: sent to the worker yet, the last broker
    error while it waits, how many sends were attempted."""
    job = None
    if upload.status != UploadStatus.RECEIVING:
        job = job_for_key(ingest_job_key(upload.pk))
    if job is None:
        return {"sent_to_worker": False, "dispatch_error": "", "dispatch_attempts": 0}
    waiting = job.state == Job.State.WAITING
    return {
        "sent_to_worker": job.state != Job.State.WAITING and job.attempts > 0,
        "dispatch_error": job.error if waiting else "",
        "dispatch_attempts": job.attempts,
    }
