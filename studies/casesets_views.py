"""The attach pages: reuse a case set of another study the manager also manages (issue 13).

Thin: the target study through ``study_for_manager`` (404 not visible, 403 its readers), the
chosen set through ``case_set_for_manager`` (404 unless the user manages the set's study too,
the same answer as for an id that does not exist), the attach through
``case_set_attach_for_manager`` (404 for anyone but the receiving study's managers). The POST
only records the attach and its job (the worker copies: a large set takes tens of seconds) and
redirects to its progress page, which ``static/js/attach.js`` keeps current. The worker audits
the attach when it is done (``caseset.attached``, by the manager who asked).
"""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from studies.access import case_set_attach_for_manager, case_set_for_manager, study_for_manager
from studies.casesets import attach_status_payload, case_set_attach_request, case_sets_to_attach
from studies.models import CaseSetAttach


def _case_set_pk(request: HttpRequest) -> int:
    try:
        return int(request.POST.get("case_set", ""))
    except ValueError:
        raise Http404("No such case set") from None


@require_http_methods(["GET", "POST"])
def case_set_attach_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the other studies' case sets the manager may attach, and recent attaches;
    POST: record an attach (the worker copies) and show its progress."""
    study = study_for_manager(request.user, pk)
    if request.method == "POST":
        source = case_set_for_manager(request.user, _case_set_pk(request))
        try:
            attach = case_set_attach_request(source=source, study=study, by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("studies:case_set_attach", pk=study.pk)
        return redirect("studies:case_set_attach_progress", public_id=attach.public_id)
    sets = case_sets_to_attach(user=request.user, study=study)
    attaches = CaseSetAttach.objects.filter(study=study)[:10]
    context = {"study": study, "case_sets": sets, "attaches": attaches}
    return render(request, "studies/casesets/attach.html", context)


@require_GET
def case_set_attach_progress(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """One attach: "12 of 200 cases copied", kept current by ``static/js/attach.js``."""
    attach = case_set_attach_for_manager(request.user, public_id)
    status_url = reverse("studies:case_set_attach_status", kwargs={"public_id": public_id})
    context = {
        "study": attach.study,
        "attach": attach,
        "payload": attach_status_payload(attach=attach),
        "status_url": status_url,
    }
    return render(request, "studies/casesets/progress.html", context)


@require_GET
def case_set_attach_status(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """The attach's progress as JSON, for the progress page's script."""
    attach = case_set_attach_for_manager(request.user, public_id)
    return JsonResponse(attach_status_payload(attach=attach))
