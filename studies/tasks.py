"""Celery tasks of the study side. Thin: take keyword-only ids, call a service.

Services are imported inside the function bodies (against import cycles at worker start).
"""

from __future__ import annotations

from django.conf import settings

from vbqweb.tasks import vbq_task


@vbq_task(time_limit=settings.VBQ_INGEST_TIME_LIMIT)
def ingest_upload(*, upload_id: int) -> str:
    """Ingest one upload; a second delivery finds it claimed and does nothing."""
    from studies.uploads.ingest import upload_ingest

    return upload_ingest(upload_id=upload_id)


@vbq_task()
def dispatch_uploads() -> dict[str, int]:
    """The outbox's periodic dispatcher (Celery beat, every minute)."""
    from studies.uploads.transfer import uploads_dispatch_due

    return uploads_dispatch_due()


@vbq_task()
def rejudge_study_series(*, study_id: int) -> int:
    """Re-judge a study's series after its TR/TE ranges changed."""
    from studies.models import Study
    from studies.uploads.ingest import study_rejudge_series

    study = Study.objects.filter(pk=study_id).first()
    return study_rejudge_series(study=study) if study is not None else 0
