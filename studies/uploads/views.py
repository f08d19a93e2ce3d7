"""Case-set upload, ingest report and series eligibility pages, for a study's managers.

Thin function views: fetch through ``studies.access`` (a study's pages: 404 when the study is
not visible, 403 for its readers; an upload or a case: 404 for anyone but the study's managers,
as if it did not exist), validate, call one service of ``studies.uploads`` (the transfer, the
outbox, the series), answer. The JSON endpoints serve ``static/js/upload.js``; their errors are
``{"error": message, "state": {...}}`` with 400 (malformed) or 409 (does not fit the upload's
state; ``state`` says how to resume). The announcement's JSON is read by the site's one loader
(``vbqweb.jsonbody``: size, nesting, duplicate keys), so no body can make it a 500.
"""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studies import selectors
from studies.access import case_for_manager, study_for_manager, upload_for_manager
from studies.form_pages import form_page, posted
from studies.forms import EligibilityRangesForm, SeriesChoiceForm, UploadCreateForm
from studies.models import ItemStatus, Upload, UploadStatus
from studies.uploads.config import ingest_limits
from studies.uploads.outbox import upload_outbox_state
from studies.uploads.series import (
    case_choose_series,
    case_select_automatic,
    study_set_eligibility_ranges,
)
from studies.uploads.transfer import (
    UploadConflict,
    parse_pieces,
    upload_cancel,
    upload_create,
    upload_finish,
    upload_receive_chunk,
    upload_transfer_state,
)
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record
from vbqweb.jsonbody import JsonBodyError, request_json


def _error(message: str, status: int, state: dict[str, Any] | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "state": state or {}}, status=status)


def _messages_of(error: ValidationError) -> str:
    return " ".join(error.messages)


def _urls(upload: Upload) -> dict[str, str]:
    return {
        name: reverse(f"studies:upload_{name}", kwargs={"public_id": upload.public_id})
        for name in ("chunk", "status", "finish", "cancel", "report")
    }


def _payload(upload: Upload) -> dict[str, Any]:
    payload = selectors.upload_status_payload(upload=upload) | upload_outbox_state(upload=upload)
    payload["urls"] = _urls(upload)
    if upload.status == UploadStatus.RECEIVING:
        payload["transfer"] = upload_transfer_state(upload=upload)
    return payload


# --- the upload page and its JSON endpoints ----------------------------------------------------


@require_GET
def study_uploads(request: HttpRequest, pk: int) -> HttpResponse:
    """Drop zone, the current upload's progress (restored after a reload) and past uploads."""
    study = study_for_manager(request.user, pk)
    uploads = list(selectors.study_uploads(study=study)[:20])
    current = next((u for u in uploads if not u.is_finished), None)
    latest = uploads[0] if uploads and current is None else None
    context: dict[str, Any] = {
        "study": study,
        "uploads": uploads,
        "current": current,
        "current_payload": _payload(current) if current else None,
        "latest": latest,
        "create_url": reverse("studies:upload_create", kwargs={"pk": study.pk}),
        "chunk_bytes": settings.VBQ_UPLOAD_CHUNK_BYTES,
        "chunk_pieces": settings.VBQ_UPLOAD_CHUNK_PIECES,
        "max_files": ingest_limits().max_files,
    }
    if latest is not None:
        context |= _report_context(latest, problems_only=True)
    return render(request, "studies/uploads/uploads.html", context)


@require_POST
def upload_create_view(request: HttpRequest, pk: int) -> JsonResponse:
    """Announce an upload (name, number of files, bytes): 201 with its URLs."""
    study = study_for_manager(request.user, pk)
    try:
        data = request_json(request)
    except JsonBodyError as error:
        return _error(f"The request is not JSON the site accepts: {error}.", 400)
    form = UploadCreateForm(data if isinstance(data, dict) else None)
    if not form.is_valid():
        return _error("Bad upload announcement: " + form.errors.as_text(), 400)
    try:
        upload = upload_create(
            study=study,
            created_by=request.user,
            name=form.cleaned_data["name"],
            files=form.cleaned_data["files"],
            total_bytes=form.cleaned_data["bytes"],
        )
    except ValidationError as error:
        return _error(_messages_of(error), 400)
    record(
        Action.UPLOAD_STARTED,
        request=request,
        obj=upload,
        detail={"files": upload.files_total_expected},
    )
    return JsonResponse(_payload(upload), status=201)


@require_POST
def upload_chunk(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """One chunk: a raw body of file pieces described by ``X-Upload-Pieces``."""
    upload = upload_for_manager(request.user, public_id)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        pieces = parse_pieces(request.headers.get("X-Upload-Pieces", ""), content_length=length)
        counters = upload_receive_chunk(upload=upload, pieces=pieces, stream=request)  # type: ignore[arg-type]
    except ValueError:
        return _error("Bad Content-Length.", 400)
    except ValidationError as error:
        return _error(_messages_of(error), 400, upload_transfer_state(upload=upload))
    except UploadConflict as conflict:
        state = conflict.state
        if upload.status == UploadStatus.RECEIVING:
            state = {**upload_transfer_state(upload=upload), **state}
        return _error(conflict.message, 409, state)
    return JsonResponse(counters)


@require_GET
def upload_status(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """Progress, polled by the page (the outbox's dispatcher, not the poll, sends the ingest)."""
    upload = upload_for_manager(request.user, public_id)
    return JsonResponse(_payload(upload))


@require_POST
def upload_finish_view(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """All files arrived: queue the ingest. Answers within seconds even with the broker down."""
    upload = upload_for_manager(request.user, public_id)
    try:
        upload = upload_finish(upload=upload)
    except ValidationError as error:
        return _error(_messages_of(error), 400)
    except UploadConflict as conflict:
        return _error(conflict.message, 409, conflict.state)
    record(Action.UPLOAD_QUEUED, request=request, obj=upload)
    return JsonResponse(_payload(upload))


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_POST
def upload_cancel_view(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Cancel: JSON for the page's script, a redirect for the plain form."""
    upload = upload_cancel(upload=upload_for_manager(request.user, public_id))
    record(Action.UPLOAD_CANCELLED, request=request, obj=upload, detail={"status": upload.status})
    if _wants_json(request):
        return JsonResponse(_payload(upload))
    if upload.status == UploadStatus.CANCELLED:
        messages.info(request, f"Upload “{upload.name}” cancelled; its files were deleted.")
    else:
        messages.info(request, f"Upload “{upload.name}” had already ended.")
    return redirect("studies:uploads", pk=upload.study_id)


# --- the ingest report -------------------------------------------------------------------------


def _report_context(upload: Upload, *, problems_only: bool = False) -> dict[str, Any]:
    items = selectors.upload_items(upload=upload)
    problems = list(items.exclude(status=ItemStatus.ACCEPTED))
    return {
        "upload": upload,
        "problems": problems,
        "accepted": [] if problems_only else list(items.filter(status=ItemStatus.ACCEPTED)),
        "n_accepted": upload.instances_stored - upload.files_quarantined,
        "cases": list(selectors.upload_cases(upload=upload)),
    }


@require_GET
def upload_report(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """One upload's report: counts, every source's status and reason by position, its cases."""
    upload = upload_for_manager(request.user, public_id)
    context = _report_context(upload) | {"study": upload.study}
    if request.GET.get("partial"):  # the upload page inserts it when processing ends
        return render(request, "studies/uploads/_report.html", context)
    return render(request, "studies/uploads/report.html", context)


# --- cases, series and eligibility ---------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def study_cases(request: HttpRequest, pk: int) -> HttpResponse:
    """Every case with its reading series and acquisition; the study's TR/TE ranges."""
    study = study_for_manager(request.user, pk)
    # A bound ModelForm writes onto its instance while validating: keep ``study`` as stored.
    form = EligibilityRangesForm(posted(request), instance=copy.copy(study), prefix="ranges")
    if form.is_valid():
        if study_set_eligibility_ranges(study=study, **form.ranges()):
            record(Action.RANGES_EDITED, request=request, obj=study, detail=form.ranges())
            messages.success(request, "Ranges saved; every series is being judged again with them.")
        else:
            messages.info(request, "Nothing changed.")
        return redirect("studies:cases", pk=study.pk)
    cases = selectors.study_cases_with_series(study=study)
    return form_page(request, "studies/uploads/cases.html", form, study=study, cases=cases)


@require_http_methods(["GET", "POST"])
def case_series(request: HttpRequest, pk: int) -> HttpResponse:
    """Each series of a case with every eligibility rule; the manager's override form."""
    case = case_for_manager(request.user, pk)
    form = SeriesChoiceForm(posted(request), case=case)
    if form.is_valid():
        choice, reason = form.cleaned_data["choice"], form.cleaned_data["reason"]
        try:
            if choice == SeriesChoiceForm.AUTOMATIC:
                case_select_automatic(case=case, clear_override=True)
                messages.success(request, "Back to automatic selection.")
            else:
                series = form.series_by_pk.get(choice)
                case_choose_series(case=case, series=series, reason=reason, by=request.user)
                messages.success(
                    request,
                    "Reading series chosen." if series else "No series will be read for this case.",
                )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            record(Action.SERIES_CHOSEN, request=request, obj=case, detail={"choice": choice})
            return redirect("studies:case_series", pk=case.pk)
    series = list(selectors.case_series(case=case))
    selected = next((s for s in series if s.selected), None)
    if not form.is_bound:
        overridden = any(s.overridden_at for s in series)
        form.initial = {
            "choice": (str(selected.pk) if selected else SeriesChoiceForm.NONE)
            if overridden
            else SeriesChoiceForm.AUTOMATIC
        }
    return form_page(
        request,
        "studies/uploads/case_series.html",
        form,
        study=case.study,
        case=case,
        series=series,
        selected=selected,
        override=next((s for s in series if s.overridden_at), None),
    )
