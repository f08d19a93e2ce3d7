"""Celery tasks of the reader side: thin wrappers over services, keyword-only primary keys."""

from __future__ import annotations

from vbqweb.tasks import vbq_task


@vbq_task()
def compute_reading_vbq(*, reading_pk: int, roi_version: int) -> None:
    """Score one reading at one ROI version from the stored pixels (idempotent)."""
    from readers.services import reading_compute_vbq

    reading_compute_vbq(reading_pk=reading_pk, roi_version=roi_version)


@vbq_task()
def compute_study_analysis(*, study_pk: int) -> None:
    """Recompute a study's agreement analysis from its submitted readings (idempotent)."""
    from readers.analysis.services import analysis_compute

    analysis_compute(study_pk=study_pk)
