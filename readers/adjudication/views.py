"""Adjudication pages (the adjudicator's worklist, a case with every reading drawn, the
decision) and the managers' review viewer of a reading among the other readings of its case.

Thin: fetch through ``access``, read through ``selectors``, write through ``services``. The
adjudicator's pages carry no reader name or id (payload: "Reader A/B/C", colours, scores and
ROI sets); the manager's review page names the readers, as the manager's study page does.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from readers.adjudication import services
from readers.adjudication.access import case_of_study, reading_for_review, study_for_adjudication
from readers.adjudication.selectors import (
    CaseReadings,
    adjudication_case,
    adjudication_cases,
    case_readings_for_review,
    review_readings,
)
from studies.models import Case, Study
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record


def _viewer_payload(
    request: HttpRequest, case: Case, readings: list[dict[str, Any]]
) -> dict[str, object] | None:
    """What the review bundle (``static/src/review``) starts from; None without a series."""
    series = case.reading_series
    if series is None:
        return None
    return {
        "case": {"label": case.label},
        "readings": readings,
        "dicomweb": {
            "root": request.build_absolute_uri(reverse("dicomweb:studies")).removesuffix(
                "/studies"
            ),
            "study_instance_uid": case.study_instance_uid,
            "series_instance_uid": series.series_instance_uid,
        },
        "urls": {
            "worker": static("dist/decodeImageFrameWorker.js"),
            "wasm": request.build_absolute_uri(settings.STATIC_URL + "dist/wasm/"),
        },
    }


@require_GET
def worklist(request: HttpRequest, pk: int) -> HttpResponse:
    """The cases the study's readers disagree on, and the decisions taken."""
    study, decides = study_for_adjudication(request.user, pk)
    items = adjudication_cases(study)
    return render(
        request,
        "adjudication/worklist.html",
        {
            "study": study,
            "decides": decides,
            "items": items,
            "n_open": sum(1 for i in items if i.consensus is None),
        },
    )


def _item(
    request: HttpRequest, pk: int, case_pk: int, session: int
) -> tuple[Study, bool, CaseReadings]:
    study, decides = study_for_adjudication(request.user, pk)
    case = case_of_study(study, case_pk, session)
    item = adjudication_case(study, case, session)
    if item is None:  # not (or no longer) on the worklist: as if absent
        raise Http404("No such case")
    return study, decides, item


@require_GET
def case(request: HttpRequest, pk: int, case_pk: int, session: int) -> HttpResponse:
    """One case: every reading's ROIs on the image, one colour each, and the decision."""
    study, decides, item = _item(request, pk, case_pk, session)
    payload = _viewer_payload(request, item.case, review_readings(item))
    record(
        Action.READING_VIEWED,
        request=request,
        obj=item.case,
        detail={"adjudication": True, "session": session},
    )
    return render(
        request,
        "adjudication/case.html",
        {
            "study": study,
            "decides": decides,
            "item": item,
            "rows": [(item.labels[r.pk], item.vbq[r.pk]) for r in item.readings],
            "viewer": payload,
        },
    )


@require_POST
def accept(request: HttpRequest, pk: int, case_pk: int, session: int) -> HttpResponse:
    study, decides, item = _item(request, pk, case_pk, session)
    if not decides:
        raise PermissionDenied("Only the study's adjudicator decides.")
    label = request.POST.get("label", "")
    try:
        services.consensus_accept(adjudicator=request.user, item=item, label=label)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("adjudication:case", pk=study.pk, case_pk=case_pk, session=session)
    messages.success(request, f"{item.case.label}: consensus recorded ({label}'s reading).")
    return redirect("adjudication:worklist", pk=study.pk)


@require_POST
def measure(request: HttpRequest, pk: int, case_pk: int, session: int) -> HttpResponse:
    _, decides, item = _item(request, pk, case_pk, session)
    if not decides:
        raise PermissionDenied("Only the study's adjudicator decides.")
    reading = services.consensus_measure(adjudicator=request.user, item=item)
    return redirect("readers:detail", public_id=reading.public_id)


@require_GET
def review(request: HttpRequest, pk: int, reading_public_id: UUID) -> HttpResponse:
    """The manager's review viewer: a reading read-only with its ROIs drawn, among the other
    readers' readings of the same case and session (colours per reader), to step through."""
    study, reading = reading_for_review(request.user, pk, reading_public_id)
    item = case_readings_for_review(reading)
    record(Action.READING_VIEWED, request=request, obj=reading, detail={"review": True})
    rows = review_readings(item, focus=reading.pk, names=True)
    for row, r in zip(rows, item.readings, strict=True):
        row["url"] = reverse(
            "adjudication:review", kwargs={"pk": study.pk, "reading_public_id": r.public_id}
        )
        row["status"] = r.get_status_display()
    at = next(i for i, row in enumerate(rows) if row["focus"])
    return render(
        request,
        "review/reading.html",
        {
            "study": study,
            "reading": reading,
            "item": item,
            "rows": rows,
            "previous": rows[at - 1] if at > 0 else None,
            "next": rows[at + 1] if at + 1 < len(rows) else None,
            "viewer": _viewer_payload(request, reading.case, rows),
        },
    )
