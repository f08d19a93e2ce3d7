"""The audit log's pages and CSV: a study's managers see their study's events, site admins
every event. Thin: access, a selector, a page or a streamed CSV (itself recorded: an export
of the log is a download like any other).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from studies.access import is_site_admin, study_for_manager
from studies.models import Study
from vbqweb.audit.actions import Action
from vbqweb.audit.selectors import CSV_COLUMNS, audit_csv_rows, audit_events
from vbqweb.audit.services import record
from vbqweb.spreadsheet import csv_lines

PAGE_SIZE = 100


def _page(request: HttpRequest, study: Study | None, study_id: int | None) -> HttpResponse:
    action = request.GET.get("action", "")
    events = audit_events(study_id=study_id, action=action)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"study": study, "page": page, "action": action, "actions": Action.choices}
    return render(request, "audit/events.html", context | {"study_filter": study_id})


def _csv(request: HttpRequest, study_id: int | None, name: str) -> StreamingHttpResponse:
    events = audit_events(study_id=study_id, action=request.GET.get("action", ""))
    record(Action.DOWNLOADED, request=request, study=study_id, detail={"file": name})
    response = StreamingHttpResponse(
        csv_lines(audit_csv_rows(events), CSV_COLUMNS), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _site_admin(request: HttpRequest) -> None:
    if not is_site_admin(request.user):
        raise PermissionDenied("Only site admins see the whole audit log.")


def _study_filter(request: HttpRequest) -> int | None:
    value = request.GET.get("study", "")
    return int(value) if value.isdigit() else None


@require_GET
def study_log(request: HttpRequest, pk: int) -> HttpResponse:
    study = study_for_manager(request.user, pk)
    return _page(request, study, study.pk)


@require_GET
def study_log_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    study = study_for_manager(request.user, pk)
    return _csv(request, study.pk, f"study-{study.pk}-audit.csv")


@require_GET
def site_log(request: HttpRequest) -> HttpResponse:
    """Every event (``?study=`` narrows it to one study, a purged one included)."""
    _site_admin(request)
    return _page(request, None, _study_filter(request))


@require_GET
def site_log_csv(request: HttpRequest) -> StreamingHttpResponse:
    _site_admin(request)
    return _csv(request, _study_filter(request), "audit.csv")
