"""Reads on the study side, always scoped through ``studies.access``."""

from __future__ import annotations

from django.db.models import Count, Max, Prefetch, Q, QuerySet

from studies.models import (
    Assignment,
    Case,
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
