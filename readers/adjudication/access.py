"""Every object an adjudication or review view touches, scoped to the user.

An adjudicator of a study reaches its adjudication pages and nothing else of it; its managers
(and site admins) may look at them; its readers get 403 (they know the study exists), everyone
else 404. A case that does not need adjudication is a 404 for the adjudicator, as if absent.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from readers.access import reading_for_manager
from readers.models import Reading
from studies.access import AnyUser, study_for_manager, study_for_user
from studies.models import Case, Role, Study


def study_for_adjudication(user: AnyUser, pk: int) -> tuple[Study, bool]:
    """The study and whether the user decides (its adjudicator) or only looks (its managers)."""
    study, role = study_for_user(user, pk)
    if role == Role.ADJUDICATOR:
        return study, True
    if role == Role.MANAGER:
        return study, False
    raise PermissionDenied("Only the study's adjudicator and managers can see this.")


def case_of_study(study: Study, case_pk: int, session: int) -> Case:
    """A case of ``study`` in one of its sessions; 404 otherwise."""
    case = Case.objects.filter(pk=case_pk, study=study).first()
    if case is None or not 1 <= session <= study.sessions:
        raise Http404("No such case")
    return case


def reading_for_review(user: AnyUser, pk: int, public_id: object) -> tuple[Study, Reading]:
    """A reading of study ``pk`` for the study's managers (the review viewer)."""
    study = study_for_manager(user, pk)
    return study, reading_for_manager(user, public_id, study=study)  # type: ignore[arg-type]
