"""Every reading a view touches comes through here, scoped to the user.

Blinding is the point of a reader study: a reading is visible to the reader who made it and to
the study's managers (read-only), and to nobody else: other readers get a 404, exactly as if it
did not exist. A reading is writable only by its reader, and only while it is a draft (or when
the study allows edits after submission).
"""

from __future__ import annotations

from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from readers.models import Reading
from readers.sessions import reader_current_session
from studies.access import AnyUser, role_in_study, studies_read_by, studies_visible_to
from studies.models import Case, Instance, Role, Series, Study


def readings_of_reader(user: AnyUser) -> QuerySet[Reading]:
    """The user's own readings, in studies they are still assigned to as a reader, and an
    adjudicator's own measurements (``Consensus.measured_reading``) in studies they still
    adjudicate."""
    if not user.is_authenticated:
        return Reading.objects.none()
    adjudicated = Study.objects.filter(assignments__user=user, assignments__role=Role.ADJUDICATOR)
    return Reading.objects.filter(reader=user).filter(
        Q(case__study__in=studies_read_by(user))
        | Q(case__study__in=adjudicated, adjudication_consensus__isnull=False)
    )


def _reading_by_public_id(public_id: UUID | str) -> Reading | None:
    """The reading a URL names, by its random public id (never by its sequential pk): an id that
    is not a uuid finds nothing, exactly like one that names no reading."""
    try:
        public_id = public_id if isinstance(public_id, UUID) else UUID(str(public_id))
    except ValueError:
        return None
    return (
        Reading.objects.select_related("case__study", "reader").filter(public_id=public_id).first()
    )


def reading_for_user(user: AnyUser, public_id: UUID | str) -> tuple[Reading, bool]:
    """The reading and whether the user may change it; 404 when not visible to the user."""
    reading = _reading_by_public_id(public_id)
    if reading is None:
        raise Http404("No such reading")
    if readings_of_reader(user).filter(pk=reading.pk).exists():
        is_reader = studies_read_by(user).filter(pk=reading.case.study_id).exists()
        current = reader_current_session(reader=user, study=reading.case.study)
        if is_reader and reading.session < current:
            raise PermissionDenied(
                f"Your session {reading.session} readings stay hidden while you read session "
                f"{current}, so that the second reading is independent of the first."
            )
        editable = not reading.is_locked or reading.case.study.allow_edit_after_submit
        return reading, editable
    if role_in_study(user, reading.case.study) == Role.MANAGER:
        return reading, False
    raise Http404("No such reading")


def reading_for_writer(user: AnyUser, public_id: UUID | str) -> Reading:
    """The reading, for its own reader while it can still change; 403 when only visible."""
    reading, writable = reading_for_user(user, public_id)
    if not writable:
        raise PermissionDenied("This reading cannot be changed.")
    return reading


def reading_for_manager(user: AnyUser, public_id: UUID | str, *, study: Study) -> Reading:
    """A reading of ``study``, for one of its managers (checked by the caller); 404 otherwise."""
    reading = _reading_by_public_id(public_id)
    if reading is None or reading.case.study_id != study.pk:
        raise Http404("No such reading")
    if role_in_study(user, study) != Role.MANAGER:
        raise Http404("No such reading")
    return reading


# --- Images (DICOMweb) -------------------------------------------------------------------------
#
# Pixels are not ROIs: every reader of a study sees every case's images, and so do its managers
# (read-only) and site admins. What nobody sees: another study's cases, a series that is not the
# case's selected reading series, and an instance held in quarantine (ingest, issue 4). Anything
# outside that scope is a 404, exactly as if the UID did not exist, so that guessing UIDs tells a
# reader nothing.


def instances_for_user(user: AnyUser) -> QuerySet[Instance]:
    """The instances whose pixels ``user`` may retrieve (see the comment above)."""
    return Instance.objects.readable().filter(
        series__selected=True, series__case__study__in=studies_visible_to(user)
    )


def series_for_user(user: AnyUser) -> QuerySet[Series]:
    """The reading series with at least one instance ``user`` may retrieve (DICOMweb search)."""
    return Series.objects.filter(pk__in=instances_for_user(user).values("series_id"))


def image_case_for_user(user: AnyUser, study_uid: str) -> Case:
    """A case by its (de-identified) Study Instance UID, if ``user`` may see its images;
    else 404, exactly as for a UID that does not exist."""
    case = (
        Case.objects.filter(study_instance_uid=study_uid, series__in=series_for_user(user))
        .distinct()
        .first()
    )
    if case is None:
        raise Http404("No such study")
    return case


def image_series_for_user(user: AnyUser, study_uid: str, series_uid: str) -> Series:
    """The case's reading series by its DICOM UIDs, if ``user`` may see its images; else 404."""
    series = (
        Series.objects.select_related("case")
        .filter(
            series_instance_uid=series_uid,
            case__study_instance_uid=study_uid,
            selected=True,
            case__study__in=studies_visible_to(user),
        )
        .order_by()
        .first()
    )
    if series is None:
        raise Http404("No such series")
    return series


def image_instance_for_user(
    user: AnyUser, study_uid: str, series_uid: str, sop_uid: str
) -> Instance:
    """One instance by its three DICOM UIDs, if ``user`` may see it; else 404.

    This runs for every frame a viewer fetches, so it is one lean query: no ordering joins, no
    related rows, only the columns a response needs.
    """
    instance = (
        instances_for_user(user)
        .filter(
            sop_instance_uid=sop_uid,
            series__series_instance_uid=series_uid,
            series__case__study_instance_uid=study_uid,
        )
        .only("pk", "sop_instance_uid", "file", "sha256", "size", "series_id")
        .order_by()
        .first()
    )
    if instance is None:
        raise Http404("No such instance")
    return instance
