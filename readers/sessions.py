"""Reading sessions: when each opens for a reader, and the reader's case order in each.

Session 1 is open from the start. Session N+1 opens for a reader once they have submitted
every case of session N *and* the study's wash-out has passed since their last submission,
so that they do not remember their earlier measurements. Case order is random per reader and
per session but reproducible: it is drawn from the reader's stored ``order_seed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max, Q
from django.utils import timezone

from readers.models import Reading
from studies.models import Assignment, Case, Role, Study


@dataclass(frozen=True)
class SessionState:
    session: int
    n_cases: int
    n_submitted: int
    completed_at: datetime | None  # the last submission, once every case is submitted
    opens_at: datetime | None  # None: waits for the previous session to be completed
    is_open: bool

    @property
    def percent(self) -> int:
        return round(100 * self.n_submitted / self.n_cases) if self.n_cases else 0


def reader_sessions(*, reader: AbstractBaseUser, study: Study) -> list[SessionState]:
    """Every session of the study, as it stands for this reader now."""
    n_cases = study.cases.count()
    stats = {
        row["session"]: row
        for row in Reading.objects.filter(reader=reader, case__study=study)
        .values("session")
        .annotate(
            n_submitted=Count("pk", filter=Q(status=Reading.Status.SUBMITTED)),
            last=Max("submitted_at"),
        )
    }
    now = timezone.now()
    states: list[SessionState] = []
    for session in range(1, study.sessions + 1):
        row = stats.get(session, {})
        n_submitted = row.get("n_submitted", 0)
        completed = row.get("last") if n_cases and n_submitted >= n_cases else None
        if session == 1:
            opens_at, is_open = None, True
        else:
            previous = states[-1]
            opens_at = (
                previous.completed_at + timedelta(days=study.washout_days)
                if previous.completed_at
                else None
            )
            is_open = previous.is_open and opens_at is not None and now >= opens_at
        states.append(SessionState(session, n_cases, n_submitted, completed, opens_at, is_open))
    return states


def reader_current_session(*, reader: AbstractBaseUser, study: Study) -> int:
    """The latest open session: the one the reader is reading now."""
    return max(s.session for s in reader_sessions(reader=reader, study=study) if s.is_open)


def case_order(*, reader: AbstractBaseUser, study: Study, session: int) -> list[Case]:
    """The study's cases in this reader's order for this session (label order if not random)."""
    cases = list(study.cases.order_by("pk"))
    if not study.randomise_order:
        return sorted(cases, key=lambda case: case.label)
    assignment = Assignment.objects.filter(study=study, user=reader, role=Role.READER).first()
    seed = assignment.order_seed if assignment else 0
    random.Random(f"{seed}:{session}").shuffle(cases)
    return cases
