"""Celery tasks of the study side. Thin: take keyword-only ids, call a service."""

from __future__ import annotations

from django.conf import settings

from studies.casesets import case_set_attach_run
from studies.models import Study
from studies.uploads.housekeeping import uploads_tidy
from studies.uploads.ingest import upload_ingest
from studies.uploads.series import study_rejudge_series
from vbqweb.tasks import ATTACH_CASE_SET, INGEST_UPLOAD, REJUDGE_SERIES, TIDY_UPLOADS, vbq_task


@vbq_task(INGEST_UPLOAD, time_limit=settings.VBQ_INGEST_TIME_LIMIT)
def ingest_upload(*, upload_id: int) -> str:
    """Ingest one upload; a second delivery finds it claimed and does nothing."""
    return upload_ingest(upload_id=upload_id)


@vbq_task(ATTACH_CASE_SET, time_limit=settings.VBQ_INGEST_TIME_LIMIT)
def attach_case_set(*, attach_id: int) -> str:
    """Copy a case set of another study into a study; a run sent again continues the copy."""
    return case_set_attach_run(attach_id=attach_id)


@vbq_task(TIDY_UPLOADS)
def tidy_uploads() -> dict[str, int]:
    """The uploads' upkeep (Celery beat, every minute)."""
    return uploads_tidy()


@vbq_task(REJUDGE_SERIES)
def rejudge_study_series(*, study_id: int) -> int:
    """Re-judge a study's series after its TR/TE ranges changed."""
    study = Study.objects.filter(pk=study_id).first()
    return study_rejudge_series(study=study) if study is not None else 0
