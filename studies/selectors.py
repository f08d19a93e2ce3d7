"""Reads on the study side, always scoped through ``studies.access``."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max, Prefetch, Q, QuerySet

from studies.access import AnyUser, is_site_admin, studies_managed_by
from studies.models import (
    Assignment,
    AttachStatus,
    Case,
    CaseSetAttach,
    Role,
    Series,
    Study,
    Upload,
    UploadItem,
    UploadStatus,
)


def study_cases(*, study: Study) -> QuerySet[Case]:
    return study.cases.annotate(n_series=Count("series", distinct=True)).order_by("label")


def study_sessions_problem(*, study: Study, sessions: int) -> str | None:
    """Why ``study`` cannot have ``sessions`` sessions, or None when it can.

    A study cannot have fewer sessions than the highest one any reader has a reading in:
    those readings would fall outside its design, and out of the agreement analysis, without
    anyone deciding so. The form and the service both ask here, so they say the same thing.
    """
    highest = Case.objects.filter(study=study).aggregate(m=Max("readings__session"))["m"] or 0
    if sessions < highest:
        return (
            f"Readers have readings in session {highest}: the study needs at least "
            f"{highest} sessions."
        )
    return None


def study_readers(*, study: Study) -> QuerySet[Assignment]:
    return study.assignments.filter(role=Role.READER).select_related("user")


def study_adjudicators(*, study: Study) -> QuerySet[Assignment]:
    return study.assignments.filter(role=Role.ADJUDICATOR).select_related("user")


def study_managers(*, study: Study) -> QuerySet[Assignment]:
    return study.assignments.filter(role=Role.MANAGER).select_related("user")


def study_uploads(*, study: Study) -> QuerySet[Upload]:
    return study.uploads.select_related("created_by").order_by("-created_at", "-pk")


def upload_items(*, upload: Upload) -> QuerySet[UploadItem]:
    return upload.items.select_related("case").order_by("position")


def upload_cases(*, upload: Upload) -> QuerySet[Case]:
    """The cases an upload stored instances in (new ones and ones it added to)."""
    case_ids = upload.items.exclude(case=None).values("case_id")
    return (
        Case.objects.filter(pk__in=case_ids)
        .prefetch_related(Prefetch("series", queryset=Series.objects.order_by("-selected", "pk")))
        .order_by("label")
    )


def study_cases_with_series(*, study: Study) -> QuerySet[Case]:
    """Every case with its series (the selected one first), for the eligibility overview."""
    return (
        study.cases.prefetch_related(
            Prefetch("series", queryset=Series.objects.order_by("-selected", "pk"))
        )
        .annotate(n_series=Count("series", distinct=True))
        .order_by("label")
    )


def case_series(*, case: Case) -> QuerySet[Series]:
    return (
        case.series.select_related("eligibility_overridden_by")
        .annotate(n_quarantined=Count("instances", filter=Q(instances__quarantined=True)))
        .order_by("-selected", "pk")
    )


def upload_status_payload(*, upload: Upload) -> dict[str, object]:
    """What the upload page's script polls: progress of the transfer and of the processing.

    Where its ingest's job is (``sent_to_worker``, ``dispatch_error``) is added by the view from
    :func:`studies.uploads.outbox.upload_outbox_state`."""
    return {
        "id": str(upload.public_id),  # the browser never sees the sequential pk (issue 12)
        "name": upload.name,
        "status": upload.status,
        "status_label": upload.get_status_display(),
        "finished": upload.is_finished,
        "message": upload.message,
        "files_total_expected": upload.files_total_expected,
        "bytes_total_expected": upload.bytes_total_expected,
        "files_received": upload.files_received,
        "bytes_received": upload.bytes_received,
        "sources_total": upload.sources_total,
        "files_processed": upload.files_processed,
        "files_rejected": upload.files_rejected,
        "files_duplicate": upload.files_duplicate,
        "files_quarantined": upload.files_quarantined,
        "instances_stored": upload.instances_stored,
        "cases_created": upload.cases_created,
        "waiting_for_worker": upload.status == UploadStatus.QUEUED,
    }


def series_image_size(*, series: Series) -> tuple[int, int] | None:
    """``(rows, columns)`` of the series' readable images (the largest of each, should they
    differ), or None without one: the frame a posted ROI set's geometry must stay near."""
    size = series.instances.readable().aggregate(rows=Max("rows"), columns=Max("columns"))
    if size["rows"] is None or size["columns"] is None:
        return None
    return int(size["rows"]), int(size["columns"])


# --- The manager's workflow (issue 13 item 10) ---------------------------------------------


def assignment_candidates(*, study: Study, user: AnyUser) -> QuerySet[AbstractBaseUser]:
    """The active users a manager may pick to add to ``study``: those not in it yet whom they
    already know from another study they manage (a site admin: every active user).

    Why not every account: the list would show a manager the site's whole user base, readers
    of studies they have nothing to do with included. People they manage elsewhere they already
    see on that study's people page, so listing them reveals nothing new. Anyone else is added
    by username or invited (``docs/managers.md``).
    """
    users = get_user_model().objects.filter(is_active=True).exclude(study_assignments__study=study)
    if not is_site_admin(user):
        managed = studies_managed_by(user)
        users = users.filter(study_assignments__study__in=managed)
    return users.distinct().order_by("username")


@dataclass(frozen=True)
class ChecklistStep:
    """One step of a new study's checklist; ``url`` is a URL name taking the study's pk."""

    key: str
    title: str
    done: bool
    detail: str
    url: str
    action: str


@dataclass(frozen=True)
class StudyChecklist:
    steps: tuple[ChecklistStep, ...]
    started: bool  # a reader has opened a reading: the study is under way

    @property
    def ready(self) -> bool:
        return all(step.done for step in self.steps)

    @property
    def shown(self) -> bool:
        """The checklist stays on the study page until it is done and a reader has begun."""
        return not (self.ready and self.started)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def study_checklist(*, study: Study) -> StudyChecklist:
    """Where a study stands between its creation and its first reading, computed, not stored:
    settings → readers → cases → open for reading.

    A study has no "open" switch: session 1 is open to its readers from the start
    (``readers.sessions``), so the study is open for reading as soon as it has a reader and a
    case with a series to read on. Cases reused from another study (``studies.casesets``)
    count as uploaded ones: they are the study's own cases. Six small counting queries, for the
    manager's study page.
    """
    n_thresholds = study.thresholds.count()
    n_readers = study.assignments.filter(role=Role.READER).count()
    copies = CaseSetAttach.objects.filter(study=study, case_set__isnull=False).values("case_set")
    cases = study.cases.aggregate(
        total=Count("pk", distinct=True),
        readable=Count("pk", filter=Q(series__selected=True), distinct=True),
        attached=Count("pk", filter=Q(case_set__in=copies), distinct=True),
    )
    n_cases, n_readable, n_attached = cases["total"], cases["readable"], cases["attached"]
    busy = study.uploads.filter(status__in=[UploadStatus.QUEUED, UploadStatus.PROCESSING]).count()
    copying = CaseSetAttach.objects.filter(
        study=study, status__in=[AttachStatus.QUEUED, AttachStatus.COPYING]
    ).count()
    started = study.cases.filter(readings__isnull=False).exists()

    settings_detail = f"{_plural(study.sessions, 'session')}, " + (
        f"{_plural(n_thresholds, 'threshold')}"
        if n_thresholds
        else "no thresholds (no categorical agreement)"
    )
    readers_detail = _plural(n_readers, "reader")
    if n_readers == 1:
        readers_detail += "; agreement between readers needs two"
    cases_detail = f"{_plural(n_cases, 'case')} uploaded"
    if n_attached:
        cases_detail = f"{_plural(n_cases, 'case')} ({n_attached} reused from another study)"
    if n_cases > n_readable:
        cases_detail += f", {n_cases - n_readable} without a series to read"
    if busy:
        cases_detail += f"; {_plural(busy, 'upload')} being processed"
    if copying:
        cases_detail += f"; {_plural(copying, 'case set')} being copied from another study"
    is_open = n_readers > 0 and n_readable > 0
    if is_open:
        open_detail = "Readers see it on their home page" + (
            " and have begun." if started else "; none has begun yet."
        )
    else:
        open_detail = "Opens by itself once it has a reader and a case to read."
    steps = (
        ChecklistStep(
            "settings", "Settings", True, settings_detail, "studies:edit", "Settings & thresholds"
        ),
        ChecklistStep(
            "readers", "Readers", n_readers > 0, readers_detail, "studies:people", "Add readers"
        ),
        ChecklistStep(
            "cases", "Cases", n_readable > 0, cases_detail, "studies:uploads", "Upload cases"
        ),
        ChecklistStep(
            "open", "Open for reading", is_open, open_detail, "studies:cases", "Cases & series"
        ),
    )
    return StudyChecklist(steps=steps, started=started)
