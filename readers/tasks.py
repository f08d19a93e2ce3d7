"""Celery tasks of the reader side: thin wrappers over services, keyword-only primary keys."""

from __future__ import annotations

from django.conf import settings

from readers.analysis.artifacts import files_build
from readers.analysis.services import analysis_compute
from readers.services import reading_compute_vbq
from vbqweb.tasks import ANALYSE_STUDY, BUILD_STUDY_FILES, SCORE_READING, vbq_task


@vbq_task(SCORE_READING)
def compute_reading_vbq(*, reading_pk: int, roi_version: int) -> None:
    """Score one reading at one ROI version from the stored pixels (idempotent)."""
    reading_compute_vbq(reading_pk=reading_pk, roi_version=roi_version)


@vbq_task(ANALYSE_STUDY)
def compute_study_analysis(*, study_pk: int) -> None:
    """Recompute a study's agreement analysis from its submitted readings (idempotent)."""
    analysis_compute(study_pk=study_pk)


@vbq_task(BUILD_STUDY_FILES, time_limit=settings.VBQ_INGEST_TIME_LIMIT)
def build_study_files(*, study_pk: int) -> None:
    """Build a study's agreement figures, report, PDF and SR zip for its analysis (idempotent).

    The ingest's time limit (an hour), not the default ten minutes: the SR zip costs ~0.3-1 s
    per reading (highdicom), so 2,000 readings take longer than ten minutes; the job's
    heartbeat, not this limit, tells a dead run from a long one."""
    files_build(study_pk=study_pk)
