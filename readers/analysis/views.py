"""Study managers' analytics: the agreement page, downloads, DICOM SR and the report.

Every view starts with ``study_for_manager``: readers get a 403 (they can see the study but
never its agreement), everyone else a 404. Views stay thin: the figures come from the stored
``StudyAnalysis`` (computed by a Celery task), the rows from ``readers.analysis.exports``.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from readers.access import reading_for_manager
from readers.analysis import exports
from readers.analysis import services as analytics
from readers.analysis.report_tables import ICC_MODELS, REFERENCE_NAMES
from readers.analysis.sr_export import reading_sr_bytes, study_sr_members
from readers.models import StudyAnalysis
from studies.access import study_for_manager
from studies.models import Role, Study
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record


def _report_context(study: Study, state: StudyAnalysis, document: dict) -> dict[str, Any]:
    from readers.analysis.report import report_context

    return report_context(
        study=analytics.study_summary(study=study),
        records=state.records,
        analysis=document,
        diagnostics=state.diagnostics,
        generated_at=state.computed_at or timezone.now(),
    )


@require_GET
def agreement(request: HttpRequest, pk: int) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    stale = analytics.analysis_is_stale(state=state)
    document = analytics.analysis_document(state=state)
    context = {
        "study": study,
        "state": state,
        "analysis": document,
        "stale": stale,
        "pending": state.claimed_at is not None,
        "report": _report_context(study, state, document) if document else None,
        # Words, not field names (issue 13 item 9): the ICC models as the PDF names them.
        "icc_models": ICC_MODELS,
        "reference_names": REFERENCE_NAMES,
    }
    if not document:  # what to do next, instead of an empty page
        context["next_steps"] = {
            "readers": study.assignments.filter(role=Role.READER).count(),
            "cases": study.cases.count(),
            "readings": len(state.records or []),
        }
    return render(request, "analytics/agreement.html", context)


@require_POST
def recompute(request: HttpRequest, pk: int) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    analytics.analysis_request(study=study)
    messages.success(request, "The agreement is being recomputed; this page updates when done.")
    return redirect("analytics:agreement", pk=study.pk)


@require_GET
def analysis_status(request: HttpRequest, pk: int) -> JsonResponse:
    """For polling: whether a recomputation is pending and when the figures were computed."""
    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    return JsonResponse(
        {
            "pending": state.claimed_at is not None,
            "computed_at": state.computed_at.isoformat() if state.computed_at else None,
            "stale": analytics.analysis_is_stale(state=state),
        }
    )


def _download(content: str | bytes, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def measurements(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    rows = list(exports.measurement_rows(study=study))
    name = f"study-{study.pk}-measurements.{fmt}"
    record(Action.DOWNLOADED, request=request, study=study, detail={"file": name})
    if fmt == "csv":
        text = exports.to_csv(rows, exports.MEASUREMENT_COLUMNS)
        return _download(text, name, "text/csv; charset=utf-8")
    return _download(json.dumps(rows, indent=1), name, "application/json")


@require_GET
def statistics(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    name = f"study-{study.pk}-statistics.{fmt}"
    record(Action.DOWNLOADED, request=request, study=study, detail={"file": name})
    document = analytics.analysis_document(state=state)
    if fmt == "csv":
        rows = exports.statistics_rows(document, state.diagnostics)
        return _download(exports.to_csv(rows, exports.STATISTICS_COLUMNS), name, "text/csv")
    payload = {
        "study": analytics.study_summary(study=study),
        "computed_at": state.computed_at.isoformat() if state.computed_at else None,
        "agreement": document,
        "explanations": exports.EXPLANATIONS,
        "diagnostics": state.diagnostics,
        "records": state.records,
    }
    return _download(json.dumps(payload, indent=1), name, "application/json")


@require_GET
def report(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """The printable agreement report as a page (``fmt`` "html") or a PDF download ("pdf")."""
    from readers.analysis.report import render_report_html, render_report_pdf

    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    if not state.analysis:
        messages.error(request, "No agreement has been computed yet.")
        return redirect("analytics:agreement", pk=study.pk)
    context = _report_context(study, state, analytics.analysis_document(state=state))
    record(Action.DOWNLOADED, request=request, study=study, detail={"file": f"report.{fmt}"})
    if fmt == "html":
        # The report's one <style> element, allowed by this response's CSP nonce (settings).
        return HttpResponse(render_report_html(context | {"style_nonce": str(request.csp_nonce)}))
    pdf = render_report_pdf(render_report_html(context))
    return _download(pdf, f"study-{study.pk}-agreement-report.pdf", "application/pdf")


@require_GET
def reading_sr(request: HttpRequest, pk: int, reading_public_id: UUID) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    reading = reading_for_manager(request.user, reading_public_id, study=study)
    try:
        data = reading_sr_bytes(reading=reading)
    except ValueError as exc:
        return HttpResponse(f"No SR: {exc}.", status=409, content_type="text/plain")
    record(Action.DOWNLOADED, request=request, obj=reading, detail={"file": "sr.dcm"})
    return _download(data, f"reading-{reading.public_id}-sr.dcm", "application/dicom")


@require_GET
def study_srs(request: HttpRequest, pk: int) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in study_sr_members(study=study):
            archive.writestr(name, data)
    record(Action.DOWNLOADED, request=request, study=study, detail={"file": "sr.zip"})
    return _download(buffer.getvalue(), f"study-{study.pk}-sr.zip", "application/zip")
