"""Study managers' analytics: the agreement page, downloads, DICOM SR and the report.

Every view starts with ``study_for_manager``: readers get a 403 (they can see the study but
never its agreement), everyone else a 404. Views stay thin: the figures come from the stored
``StudyAnalysis`` (computed by a Celery task), the rows from ``readers.analysis.exports``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from readers.access import reading_for_manager
from readers.analysis import artifacts, exports
from readers.analysis import services as analytics
from readers.analysis.sr_export import reading_sr_bytes
from readers.models import StudyAnalysis
from studies.access import study_for_manager
from studies.models import Role, Study
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record


def _files(study: Study, state: StudyAnalysis) -> dict[str, artifacts.FileStatus]:
    """The study's generated files; asks the worker for any that is missing."""
    status = artifacts.files_status(study=study, state=state)
    artifacts.files_ensure(study=study, status=status)
    return status


def _preparing(
    request: HttpRequest,
    study: Study,
    state: StudyAnalysis,
    file: artifacts.FileStatus,
    what: str,
    url: str,
) -> HttpResponse:
    """The "preparing… N of M" page of a download that is being built; it polls the status
    and starts the download when the file is in."""
    return render(
        request,
        "analytics/preparing.html",
        {"study": study, "state": state, "file": file, "what": what, "download_url": url},
    )


def _serve(status: artifacts.FileStatus, filename: str, content_type: str) -> FileResponse:
    return FileResponse(
        artifacts.file_open(status),
        as_attachment=True,
        filename=filename,
        content_type=content_type,
    )


@require_GET
def agreement(request: HttpRequest, pk: int) -> HttpResponse:
    """The page: the status banner now, the figures as the worker built them for this analysis
    (the last built ones marked out of date while the current ones are prepared)."""
    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    stale = analytics.analysis_is_stale(state=state)
    context: dict[str, Any] = {
        "study": study,
        "state": state,
        "stale": stale,
        "pending": state.claimed_at is not None,
        "figures": None,
    }
    if state.analysis:
        page = _files(study, state)[artifacts.Kind.PAGE]
        if page.name:
            try:
                with artifacts.file_open(page) as fh:
                    context["figures"] = fh.read().decode()
            except FileNotFoundError:  # the store lost it: "preparing" until the next build
                page = dataclasses.replace(page, ready=False)
        context["figures_out_of_date"] = not page.ready
        context["preparing_figures"] = not page.ready
        context["figures_status"] = page
    else:  # what to do next, instead of an empty page
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
    """For polling: whether a recomputation is pending, when the figures were computed, and
    where each generated file stands (``files``: ready, building, progress of total)."""
    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    files = _files(study, state)
    return JsonResponse(
        {
            "pending": state.claimed_at is not None,
            "computed_at": state.computed_at.isoformat() if state.computed_at else None,
            "stale": analytics.analysis_is_stale(state=state),
            "files": {kind: file.as_json() for kind, file in files.items()},
        }
    )


def attachment(content: str | bytes, filename: str, content_type: str) -> HttpResponse:
    """A download: the body with a ``Content-Disposition`` that names its file."""
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
        return attachment(text, name, "text/csv; charset=utf-8")
    return attachment(json.dumps(rows, indent=1), name, "application/json")


@require_GET
def statistics(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    name = f"study-{study.pk}-statistics.{fmt}"
    record(Action.DOWNLOADED, request=request, study=study, detail={"file": name})
    document = analytics.analysis_document(state=state)
    if fmt == "csv":
        rows = exports.statistics_rows(document, state.diagnostics)
        return attachment(exports.to_csv(rows, exports.STATISTICS_COLUMNS), name, "text/csv")
    payload = {
        "study": analytics.study_summary(study=study),
        "computed_at": state.computed_at.isoformat() if state.computed_at else None,
        "agreement": document,
        "explanations": exports.EXPLANATIONS,
        "diagnostics": state.diagnostics,
        "records": state.records,
    }
    return attachment(json.dumps(payload, indent=1), name, "application/json")


@require_GET
def report(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """The printable agreement report as a page (``fmt`` "html") or a PDF download ("pdf"),
    as the worker built them for the stored analysis; "preparing…" until then."""
    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    if not state.analysis:
        messages.error(request, "No agreement has been computed yet.")
        return redirect("analytics:agreement", pk=study.pk)
    kind = artifacts.Kind.REPORT if fmt == "html" else artifacts.Kind.PDF
    file = _files(study, state)[kind]
    url = reverse(f"analytics:report_{fmt}", kwargs={"pk": study.pk})
    if not file.ready:
        what = "printable report" if fmt == "html" else "PDF report"
        return _preparing(request, study, state, file, what, url)
    record(Action.DOWNLOADED, request=request, study=study, detail={"file": f"report.{fmt}"})
    if fmt == "html":
        with artifacts.file_open(file) as fh:
            html = fh.read().decode()
        # The report's one <style> element, allowed by this response's CSP nonce (settings).
        nonce = str(request.csp_nonce)
        return HttpResponse(html.replace(artifacts.NONCE_PLACEHOLDER, nonce, 1))
    return _serve(file, f"study-{study.pk}-agreement-report.pdf", "application/pdf")


@require_GET
def reading_sr(request: HttpRequest, pk: int, reading_public_id: UUID) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    reading = reading_for_manager(request.user, reading_public_id, study=study)
    try:
        data = reading_sr_bytes(reading=reading)
    except ValueError as exc:
        return HttpResponse(f"No SR: {exc}.", status=409, content_type="text/plain")
    record(Action.DOWNLOADED, request=request, obj=reading, detail={"file": "sr.dcm"})
    return attachment(data, f"reading-{reading.public_id}-sr.dcm", "application/dicom")


@require_GET
def study_srs(request: HttpRequest, pk: int) -> HttpResponse:
    """Every scored reading's SR in one zip, as the worker built it for the stored analysis."""
    study = study_for_manager(request.user, pk)
    state = analytics.analysis_state(study=study)
    file = _files(study, state)[artifacts.Kind.SR_ZIP]
    if not file.ready:
        url = reverse("analytics:study_srs", kwargs={"pk": study.pk})
        return _preparing(request, study, state, file, "DICOM SR zip", url)
    record(Action.DOWNLOADED, request=request, study=study, detail={"file": "sr.zip"})
    return _serve(file, f"study-{study.pk}-sr.zip", "application/zip")
