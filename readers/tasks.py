"""Celery tasks of the reader side: thin wrappers over services, keyword-only primary keys."""

from __future__ import annotations

from readers.analysis.services import analysis_compute
from readers.services import reading_compute_vbq
from vbqweb.tasks import ANALYSE_STUDY, SCORE_READING, vbq_task


@vbq_task(SCORE_READING)
def compute_reading_vbq(*, reading_pk: int, roi_version: int) -> None:
    """Score one reading at one ROI version from the stored pixels (idempotent)."""
    reading_compute_vbq(reading_pk=reading_pk, roi_version=roi_version)


@vbq_task(ANALYSE_STUDY)
def compute_study_analysis(*, study_pk: int) -> None:
    """Recompute a study's agreement analysis from its submitted readings (idempotent)."""
    analysis_compute(study_pk=study_pk)
