"""Every study-side object a view touches comes through here, scoped to the user.

Not visible → 404 (the object's existence is not revealed); a study its readers can see but not
manage → 403 (they know the study exists: they read it). An object *of* a study that only its
managers may touch (an upload, a case's series page, a role in the study) is a 404 for everyone
else, its readers included, with the same message as an id that does not exist: a 403 there
would tell a reader which ids exist. The ``Assignment`` row (user × study × role) is the only
source of truth; site admins (superusers) see and manage everything.
"""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404

from studies.models import Assignment, Case, CaseSet, CaseSetAttach, Role, Study, Upload

AnyUser = AbstractBaseUser | AnonymousUser
M = TypeVar("M", bound=Model)


def is_site_admin(user: AnyUser) -> bool:
    return bool(user.is_authenticated and user.is_active and getattr(user, "is_superuser", False))


def studies_visible_to(user: AnyUser) -> QuerySet[Study]:
    """Studies the user manages or reads (all of them for a site admin)."""
    if is_site_admin(user):
        return Study.objects.all()
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(assignments__user=user).distinct()


def studies_managed_by(user: AnyUser) -> QuerySet[Study]:
    if is_site_admin(user):
        return Study.objects.all()
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(assignments__user=user, assignments__role=Role.MANAGER)


def studies_read_by(user: AnyUser) -> QuerySet[Study]:
    """Studies the user is assigned to as a reader (a site admin reads nothing by default)."""
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(assignments__user=user, assignments__role=Role.READER)


def role_in_study(user: AnyUser, study: Study) -> str | None:
    """``"manager"`` (also for site admins), ``"reader"`` or None."""
    if is_site_admin(user):
        return Role.MANAGER
    if not user.is_authenticated:
        return None
    assignment = Assignment.objects.filter(study=study, user=user).first()
    return assignment.role if assignment else None


def study_for_user(user: AnyUser, pk: int) -> tuple[Study, str]:
    """The study and the user's role in it; 404 when the user has none."""
    study = Study.objects.filter(pk=pk).first()
    role = role_in_study(user, study) if study else None
    if study is None or role is None:
        raise Http404("No such study")
    return study, role


def study_for_manager(user: AnyUser, pk: int) -> Study:
    """The study, for a user who manages it: 404 when not visible, 403 for its readers."""
    study, role = study_for_user(user, pk)
    if role != Role.MANAGER:
        raise PermissionDenied("Only the study's managers can do this.")
    return study


def case_for_reader(user: AnyUser, pk: int) -> Case:
    """A case of a study the user reads; 404 otherwise (managers use ``case_for_manager``)."""
    case = Case.objects.select_related("study").filter(pk=pk).first()
    if case is None or not studies_read_by(user).filter(pk=case.study_id).exists():
        raise Http404("No such case")
    return case


def _of_a_managed_study(queryset: QuerySet[M], user: AnyUser, pk: int, what: str) -> M:
    """An object that belongs to one study, for that study's managers; 404 for everyone else,
    the study's readers included, exactly as when there is no such object (same status, same
    message): whether an id exists is not the readers' to learn."""
    obj = queryset.select_related("study").filter(pk=pk).first()
    if obj is None or role_in_study(user, obj.study) != Role.MANAGER:
        raise Http404(f"No such {what}")
    return obj


def case_for_manager(user: AnyUser, pk: int) -> Case:
    return _of_a_managed_study(Case.objects.all(), user, pk, "case")


def upload_for_manager(user: AnyUser, public_id: UUID | str) -> Upload:
    """An upload by its random public id (URLs never carry its sequential pk), for a manager of
    its study; 404 for everyone else, its readers included (the ingest report names files by
    position only, but it is still the managers'), and for an id that is not a uuid."""
    try:
        public_id = public_id if isinstance(public_id, UUID) else UUID(str(public_id))
    except ValueError:
        raise Http404("No such upload") from None
    upload = Upload.objects.select_related("study").filter(public_id=public_id).first()
    if upload is None or role_in_study(user, upload.study) != Role.MANAGER:
        raise Http404("No such upload")
    return upload


def case_set_attach_for_manager(user: AnyUser, public_id: UUID | str) -> CaseSetAttach:
    """An attach of a case set (its progress), for a manager of the receiving study; 404 for
    everyone else, as :func:`upload_for_manager` (URLs carry its random public id)."""
    try:
        public_id = public_id if isinstance(public_id, UUID) else UUID(str(public_id))
    except ValueError:
        raise Http404("No such attach") from None
    attach = CaseSetAttach.objects.select_related("study").filter(public_id=public_id).first()
    if attach is None or role_in_study(user, attach.study) != Role.MANAGER:
        raise Http404("No such attach")
    return attach


def assignment_for_manager(user: AnyUser, pk: int) -> Assignment:
    """A role of a user in a study, for the study's managers (adding and removing people)."""
    return _of_a_managed_study(Assignment.objects.select_related("user"), user, pk, "assignment")


def case_set_for_manager(user: AnyUser, pk: int) -> CaseSet:
    """A case set, for a manager of its study (attaching it to another study they manage);
    404 for everyone else, exactly as for an id that does not exist: a manager of only the
    other study must not learn that the set, or its study, exists."""
    return _of_a_managed_study(CaseSet.objects.all(), user, pk, "case set")
