"""Reads on the study side, always scoped through ``studies.access``."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from studies.models import Assignment, Case, Role, Study


def study_cases(*, study: Study) -> QuerySet[Case]:
    return study.cases.annotate(n_series=Count("series", distinct=True)).order_by("label")


def study_readers(*, study: Study) -> QuerySet[Assignment]:
    return study.assignments.filter(role=Role.READER).select_related("user")


def study_managers(*, study: Study) -> QuerySet[Assignment]:
    return study.assignments.filter(role=Role.MANAGER).select_related("user")
