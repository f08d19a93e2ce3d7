"""One association (C-STORE) or one STOW-RS request: one upload, through the one ingest.

A :class:`Reception` takes instances one at a time. Each is judged first
(:func:`studies.receiver.verdict.judge`, the ingest's own checks): a refused one is answered
with its reason and nothing of it is kept; a taken one is staged as one complete file of the
upload, exactly where a browser's file would wait (:mod:`studies.uploads.staging`: local disk or
the S3 bucket), with a server-chosen name. When the association ends (or the request's body is
read), :meth:`Reception.close` queues the ingest through the site's outbox in the same
transaction that marks the upload queued (:func:`studies.uploads.outbox.upload_queue_ingest`),
as the browser's *finish* does, so the worker de-identifies, stores and reports it like any
upload and the manager reads the report on the uploads page.

An association whose every instance was refused still leaves an upload, *failed*, with one
report row per refusal: the manager sees that a PACS tried, and why nothing came in. (With some
instances taken, the refusals are counted in the upload's name and the audit event: the report's
rows are the ingest's, one per staged file.)

The upload's row is created with the first instance taken, so an association that only checks
the connection (C-ECHO) leaves nothing behind. A manager who cancels the upload while a PACS is
still sending makes the next instances refused ("cancelled on the site") and the staged ones go.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from studies.models import ItemStatus, Study, Upload, UploadItem, UploadStatus
from studies.receiver.verdict import OUT_OF_RESOURCES, Refusal, judge
from studies.uploads.config import ingest_limits
from studies.uploads.outbox import upload_queue_ingest
from studies.uploads.staging import piece_name, staging_remove, staging_storage
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record
from vbqweb.storage import storage_unavailable

logger = logging.getLogger(__name__)

CANCELLED = Refusal(OUT_OF_RESOURCES, "the upload was cancelled on the site")


def study_for_ae_title(title: str) -> Study | None:
    """The study whose called AE title this is (exact, as DICOM compares titles), else None."""
    title = title.strip()
    if not title:
        return None
    return Study.objects.filter(ae_title=title).first()


class Reception:
    """One batch of received instances for ``study``; see the module's docstring.

    ``via`` says how they came ("DICOM", "STOW-RS") and ``source`` from where (the calling AE
    title and address, the user's name): both only in the upload's name and the audit trail.
    ``close_connection``: the receiver's threads close their database connection at the end.
    """

    def __init__(
        self,
        study: Study,
        *,
        via: str,
        source: str,
        created_by: AbstractBaseUser | None = None,
        close_connection: bool = False,
    ) -> None:
        self.study = study
        self.via = via
        self.source = source
        self.created_by = created_by
        self.close_connection = close_connection
        self.limits = ingest_limits()
        self.upload: Upload | None = None
        self.taken = 0
        self.refused: list[str] = []
        self.closed = False

    # -- per instance

    def add(self, data: bytes, *, sop_class: str = "") -> Refusal | None:
        """Judge and stage one instance (Part 10 bytes): None when taken, else the refusal."""
        if self.close_connection:  # a long association outlives a broken or old connection
            close_old_connections()
        refusal = judge(data, sop_class=sop_class, limits=self.limits)
        if refusal is None:
            refusal = self._stage(data)
        if refusal is not None:
            self.refused.append(refusal.reason)
        return refusal

    def _stage(self, data: bytes) -> Refusal | None:
        if self.taken >= self.limits.max_files:
            return Refusal(OUT_OF_RESOURCES, f"more than {self.limits.max_files} instances at once")
        upload = self.upload or self._create()
        name = piece_name(upload, index=self.taken, size=len(data), offset=0, length=len(data))
        try:
            saved = staging_storage().save(name, ContentFile(data, name=name))
        except Exception as error:
            if not storage_unavailable(error):
                raise
            logger.warning("upload %s: the file store cannot be reached (%s)", upload.pk, error)
            return Refusal(
                OUT_OF_RESOURCES, "the file store cannot be reached: send it again later"
            )
        if saved != name:  # the staging storages overwrite: a new name would be lost
            raise RuntimeError(f"the staging storage stored {name!r} as {saved!r}")
        grown = Upload.objects.filter(pk=upload.pk, status=UploadStatus.RECEIVING).update(
            files_total_expected=F("files_total_expected") + 1,
            files_received=F("files_received") + 1,
            bytes_total_expected=F("bytes_total_expected") + len(data),
            bytes_received=F("bytes_received") + len(data),
        )
        if not grown:
            staging_remove(upload)
            return CANCELLED
        self.taken += 1
        return None

    def _create(self) -> Upload:
        when = timezone.localtime().strftime("%Y-%m-%d %H:%M")
        self.upload = Upload.objects.create(
            study=self.study,
            created_by=self.created_by,
            name=f"{self.via} from {self.source}, {when}"[:200],
        )
        record(
            Action.UPLOAD_STARTED,
            actor=self.created_by,
            obj=self.upload,
            detail={"via": self.via, "source": self.source[:100]},
        )
        return self.upload

    def refuse(self, reason: str) -> None:
        """Count an instance refused before it could be judged (e.g. a part that is not DICOM)."""
        self.refused.append(reason)

    # -- the end

    def abandon(self, message: str) -> None:
        """Keep nothing of this batch (a malformed request): the upload, if any, is cancelled
        with ``message`` and its staged files go."""
        self.closed = True
        if self.upload is not None:
            Upload.objects.filter(pk=self.upload.pk, status=UploadStatus.RECEIVING).update(
                status=UploadStatus.CANCELLED, message=message, finished_at=timezone.now()
            )
            staging_remove(self.upload)

    def close(self) -> Upload | None:
        """Queue what was taken as one upload (or record a failed one when everything was
        refused); returns it, or None when nothing was sent at all. Called once."""
        if self.closed:
            return self.upload
        self.closed = True
        try:
            if self.upload is not None:
                self._queue(self.upload)
            elif self.refused:
                self._record_refusals()
            return self.upload
        finally:
            if self.close_connection:
                connection.close()

    def _queue(self, upload: Upload) -> None:
        refused = len(self.refused)
        if refused:
            note = f" ({refused} refused at receipt)"
            Upload.objects.filter(pk=upload.pk).update(name=(upload.name[: 200 - len(note)] + note))
        with transaction.atomic():
            queued = Upload.objects.filter(pk=upload.pk, status=UploadStatus.RECEIVING).update(
                status=UploadStatus.QUEUED
            )
            if queued:
                upload_queue_ingest(upload=upload)
        if not queued:  # cancelled meanwhile: what was staged goes
            staging_remove(upload)
            return
        record(
            Action.UPLOAD_QUEUED,
            actor=self.created_by,
            obj=upload,
            detail={"via": self.via, "instances": self.taken, "refused": self._reasons()},
        )
        upload.refresh_from_db()

    def _reasons(self) -> dict[str, int]:
        return dict(Counter(reason[:200] for reason in self.refused).most_common(10))

    def _record_refusals(self) -> None:
        """Everything refused: a failed upload whose report lists each refusal."""
        now = timezone.now()
        count = len(self.refused)
        upload = self._create()
        with transaction.atomic():  # the failed status and its report rows are seen together
            self._fail_with_items(upload, now, count)
        record(Action.UPLOAD_FAILED, actor=self.created_by, obj=upload, detail=self._reasons())
        upload.refresh_from_db()

    def _fail_with_items(self, upload: Upload, now: datetime, count: int) -> None:
        Upload.objects.filter(pk=upload.pk).update(
            status=UploadStatus.FAILED,
            files_total_expected=count,
            sources_total=count,
            files_processed=count,
            files_rejected=count,
            message=(
                f"Nothing was stored: the {count} instance{'' if count == 1 else 's'} "
                f"{'was' if count == 1 else 'were'} refused at receipt (each one's reason is "
                "listed below)."
            ),
            started_at=now,
            finished_at=now,
        )
        UploadItem.objects.bulk_create(
            UploadItem(
                upload=upload,
                position=k + 1,
                file_index=k,
                status=ItemStatus.REJECTED,
                reason=reason[:500],
            )
            for k, reason in enumerate(self.refused)
        )


def open_reception(called: str, calling: str, peer: str) -> Reception | None:
    """The receiver's ``open_batch``: a reception for the study with this called AE title.

    Runs in the association's thread: an unknown title closes the thread's database connection
    at once (a known one's is closed by :meth:`Reception.close`)."""
    study = None
    try:
        study = study_for_ae_title(called)
    finally:
        if study is None:
            connection.close()
    if study is None:
        return None
    return Reception(
        study, via="DICOM", source=f"{calling or '?'} at {peer}", close_connection=True
    )
