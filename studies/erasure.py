"""Erasure: what a deleted study leaves behind, and ``manage.py purge_study``.

A de-identified instance is a row *and* a file in the ``default`` storage (local folder or S3
bucket). Deleting the row (a study deleted, and with it its cases, series and instances; an
upload discarded) deletes the file too, through the storage API, once the transaction has
committed: a rolled-back deletion keeps its files, and a file is never deleted while a row
still names it (an instance stored again under the same name in the same transaction).

:func:`study_purge` is the complete erasure of a study: its readings, revisions and results
(``readers`` rows cascade from its cases), uploads and their staged bytes, files, thresholds,
roles and analysis, in one transaction, with a ``study.purged`` event in the audit trail (the
files built from its analysis, reports and SRs, go after the commit too: ``readers.signals``). The
trail itself keeps the study's events: they hold ids, usernames and counts, no patient data
(``docs/audit.md``).
"""

from __future__ import annotations

import logging
from collections import Counter
from functools import partial
from typing import Any

from django.core.files.storage import Storage
from django.db import router, transaction
from django.db.models.deletion import Collector
from django.db.models.signals import post_delete
from django.dispatch import receiver

from studies.models import Instance, Study
from studies.uploads.staging import staging_remove
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record

logger = logging.getLogger(__name__)


def _file_delete(storage: Storage, name: str) -> None:
    if Instance.objects.filter(file=name).exists():
        return  # stored again under the same name meanwhile: the file is that row's now
    try:
        storage.delete(name)
    except Exception:
        logger.warning("stored file %s of a deleted instance not deleted", name, exc_info=True)


@receiver(post_delete, sender=Instance, dispatch_uid="studies.erase_instance_file")
def instance_file_erase(*, instance: Instance, using: str, **kwargs: Any) -> None:
    """The instance's file goes after the deletion commits (immediately outside a transaction)."""
    if instance.file.name:
        transaction.on_commit(
            partial(_file_delete, instance.file.storage, instance.file.name), using=using
        )


def study_purge_preview(*, study: Study) -> dict[str, int]:
    """What :func:`study_purge` would delete: rows per model (``app.Model``)."""
    collector = Collector(using=router.db_for_write(Study))
    collector.collect([study])
    counts: Counter[str] = Counter()
    for model, objects in collector.data.items():
        counts[model._meta.label] += len(objects)
    for queryset in collector.fast_deletes:
        counts[queryset.model._meta.label] += queryset.count()
    return dict(sorted(counts.items()))


def study_purge(*, study: Study, by: str = "") -> dict[str, int]:
    """Delete the study and everything of it; return the rows deleted per model.

    Its instance files go after the commit (:func:`instance_file_erase`), its uploads' staged
    bytes right after it; ``by`` (who ran it) goes into the audit event.
    """
    pk, name = study.pk, study.name
    uploads = list(study.uploads.values_list("pk", flat=True))
    files = Instance.objects.filter(series__case__study=study).count()
    with transaction.atomic():
        _, deleted = study.delete()
        detail = {"name": name, "deleted": deleted, "files": files, "by": by}
        record(
            Action.STUDY_PURGED, object_type="studies.study", object_id=pk, study=pk, detail=detail
        )
    for upload in uploads:
        staging_remove(upload)
    return dict(deleted)
