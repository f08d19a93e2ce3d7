"""Reads on the reader side. A reader's queries only ever return their own readings."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from readers.models import Reading
from studies.models import Case, Study


@dataclass(frozen=True)
class WorklistRow:
    case: Case
    cells: list[tuple[int, Reading | None]]  # (session, the reader's own reading or None)


def reader_worklist(*, reader: AbstractBaseUser, study: Study) -> list[WorklistRow]:
    """The study's cases with the reader's own readings per session (never anyone else's)."""
    own: dict[int, dict[int, Reading]] = {}
    for reading in Reading.objects.filter(reader=reader, case__study=study).prefetch_related(
        "results"
    ):
        own.setdefault(reading.case_id, {})[reading.session] = reading
    sessions = range(1, study.sessions + 1)
    return [
        WorklistRow(case=case, cells=[(s, own.get(case.pk, {}).get(s)) for s in sessions])
        for case in study.cases.all()
    ]


def study_readings(*, study: Study) -> list[Reading]:
    """Every reading of a study, for its managers (callers check the role through access)."""
    return list(
        Reading.objects.filter(case__study=study)
        .select_related("reader", "case")
        .prefetch_related("results")
        .order_by("case__label", "reader__username", "session")
    )
