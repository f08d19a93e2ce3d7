"""Reads on the reader side. A reader's queries only ever return their own readings."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from readers.models import Reading
from readers.sessions import SessionState, case_order, reader_sessions
from studies import selectors as study_selectors
from studies.models import Case, Study
from vbqweb.jobs import job_is_waiting


@dataclass(frozen=True)
class WorklistSession:
    state: SessionState
    rows: list[tuple[Case, Reading | None]]  # in this reader's order; empty while closed
    next_case: Case | None  # the first case not yet submitted
    is_current: bool

    @property
    def to_read(self) -> int:
        """Cases of the session not yet submitted (drafts included)."""
        return self.state.n_cases - self.state.n_submitted


def reader_worklist(*, reader: AbstractBaseUser, study: Study) -> list[WorklistSession]:
    """The reader's sessions with their own readings in their own case order.

    Only the current (latest open) session lists its cases with links: earlier sessions show
    their progress only, because a reader must not see their earlier ROIs while reading again.
    """
    own: dict[tuple[int, int], Reading] = {
        (r.case_id, r.session): r for r in Reading.objects.filter(reader=reader, case__study=study)
    }
    states = reader_sessions(reader=reader, study=study)
    current = max(s.session for s in states if s.is_open)
    blocks = []
    for state in states:
        rows: list[tuple[Case, Reading | None]] = []
        if state.session == current:
            order = case_order(reader=reader, study=study, session=state.session)
            rows = [(case, own.get((case.pk, state.session))) for case in order]
        next_case = next((c for c, r in rows if r is None or not r.is_locked), None)
        blocks.append(WorklistSession(state, rows, next_case, state.session == current))
    return blocks


def study_readings(*, study: Study) -> list[Reading]:
    """Every reading of a study, for its managers (callers check the role through access)."""
    return list(
        Reading.objects.filter(case__study=study)
        .select_related("reader", "case")
        .prefetch_related("results")
        .order_by("case__label", "reader__username", "session")
    )


def reading_revisions(*, reading: Reading) -> list[dict[str, object]]:
    """Every saved version of a reading's ROI set with the score computed from it, newest
    first (the manager's view of a reading; callers check access)."""
    scores = {r.roi_version: r for r in reading.results.all()}
    return [
        {"revision": revision, "result": scores.get(revision.roi_version)}
        for revision in reading.revisions.order_by("-roi_version")
    ]


def study_overview(*, study: Study) -> dict[str, object]:
    """The manager's study page: every case against every reader and session, each reader's
    progress, and the reading counts (callers check the role through access)."""
    readings = study_readings(study=study)
    readers = list(study_selectors.study_readers(study=study))
    by_key = {(r.case_id, r.reader_id, r.session): r for r in readings}
    sessions = range(1, study.sessions + 1)
    rows = [
        {
            "case": case,
            "cells": [
                by_key.get((case.pk, a.user_id, session)) for a in readers for session in sessions
            ],
        }
        for case in study_selectors.study_cases(study=study)
    ]
    return {
        "progress": [(a.user, reader_sessions(reader=a.user, study=study)) for a in readers],
        "rows": rows,
        "readers": readers,
        "managers": study_selectors.study_managers(study=study),
        "sessions": sessions,
        "n_readings": len(readings),
        "n_submitted": sum(r.is_locked for r in readings),
    }


def score_job_key(*, reading_pk: int, roi_version: int) -> str:
    """The outbox key of the scoring of one reading at one ROI version: saves of the same
    version coalesce, and each new version has a job of its own."""
    return f"score:reading:{reading_pk}:v{roi_version}"


def reading_score_waiting(*, reading: Reading) -> bool:
    """True while the scoring of the reading's current version is recorded but no worker has
    picked it up (the page says "waiting for the worker", not "computing")."""
    key = score_job_key(reading_pk=reading.pk, roi_version=reading.roi_version)
    return job_is_waiting(key)


@dataclass(frozen=True)
class CasePosition:
    """Where a reading stands in its reader's session: "case 4 of 10", and what is left."""

    number: int  # 1-based, in the reader's order of the session
    total: int
    to_read: int  # cases of the session not yet submitted (this one included if a draft)


def reading_position(*, reading: Reading) -> CasePosition:
    """The reading's place in its reader's case order of its session (callers check access)."""
    study = reading.case.study
    order = case_order(reader=reading.reader, study=study, session=reading.session)
    ids = [case.pk for case in order]
    submitted = set(
        Reading.objects.filter(reader=reading.reader, case__study=study, session=reading.session)
        .filter(status=Reading.Status.SUBMITTED)
        .values_list("case_id", flat=True)
    )
    number = ids.index(reading.case_id) + 1 if reading.case_id in ids else 0
    return CasePosition(number, len(ids), sum(pk not in submitted for pk in ids))


def next_case_to_read(*, reading: Reading) -> Case | None:
    """The next case of the reading's session that its reader has not submitted, after this one
    in the reader's order and wrapping round (a case skipped earlier comes back last); None
    once the session is complete. This reading's own case comes last, if still a draft."""
    study = reading.case.study
    order = case_order(reader=reading.reader, study=study, session=reading.session)
    submitted = set(
        Reading.objects.filter(
            reader=reading.reader,
            case__study=study,
            session=reading.session,
            status=Reading.Status.SUBMITTED,
        ).values_list("case_id", flat=True)
    )
    at = next((i for i, case in enumerate(order) if case.pk == reading.case_id), -1)
    after = order[at + 1 :] + order[: at + 1]
    return next((case for case in after if case.pk not in submitted), None)


def reader_studies_to_read(*, reader: AbstractBaseUser, studies: list[Study]) -> list[dict]:
    """Per study the reader reads: the current session, how many of its cases are left and the
    next one (the home page's "N to read · Next case")."""
    rows = []
    for study in studies:
        current = next(b for b in reader_worklist(reader=reader, study=study) if b.is_current)
        rows.append(
            {
                "study": study,
                "session": current.state.session,
                "to_read": current.to_read,
                "n_cases": current.state.n_cases,
                "next_case": current.next_case,
            }
        )
    return rows


def study_reading_time(*, study: Study) -> dict[int, dict[int, dict[str, float]]]:
    """Reading time per reader and session (issue 13 item 6), for the manager's study page:
    reader pk → session → ``{"total", "per_case", "cases"}`` in seconds over the readings that
    have any active time (the viewer's count: visible tab, input within the last minute).
    ``per_case`` is the median, which one case left open over lunch does not pull up."""
    times: dict[tuple[int, int], list[float]] = {}
    rows = Reading.objects.filter(case__study=study, active_seconds__gt=0).values_list(
        "reader_id", "session", "active_seconds"
    )
    for reader_id, session, seconds in rows:
        times.setdefault((reader_id, session), []).append(seconds)
    summary: dict[int, dict[int, dict[str, float]]] = {}
    for (reader_id, session), values in times.items():
        summary.setdefault(reader_id, {})[session] = {
            "total": sum(values),
            "per_case": statistics.median(values),
            "cases": len(values),
        }
    return summary
