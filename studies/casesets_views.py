"""The attach page: reuse a case set of another study the manager also manages (issue 13).

Thin: the target study through ``study_for_manager`` (404 not visible, 403 its readers), the
chosen set through ``case_set_for_manager`` (404 unless the user manages the set's study too,
the same answer as for an id that does not exist), one service call, one audit event.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from studies.access import case_set_for_manager, study_for_manager
from studies.casesets import case_set_attach, case_sets_to_attach
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record


def _case_set_pk(request: HttpRequest) -> int:
    try:
        return int(request.POST.get("case_set", ""))
    except ValueError:
        raise Http404("No such case set") from None


@require_http_methods(["GET", "POST"])
def case_set_attach_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the other studies' case sets the manager may attach; POST: attach one."""
    study = study_for_manager(request.user, pk)
    if request.method == "POST":
        source = case_set_for_manager(request.user, _case_set_pk(request))
        try:
            done = case_set_attach(source=source, study=study, by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("studies:case_set_attach", pk=study.pk)
        if done.case_set is None:
            messages.info(request, "Every case of that set is already in this study.")
        else:
            record(
                Action.CASES_ATTACHED,
                request=request,
                obj=done.case_set,
                study=study,
                detail={
                    "from_case_set": source.pk,
                    "from_study": source.study_id,
                    "cases": done.cases,
                    "instances": done.instances,
                    "skipped": done.skipped,
                },
            )
            skipped = f" ({done.skipped} already here)" if done.skipped else ""
            messages.success(
                request,
                f"{done.cases} cases attached as “{done.case_set.name}”{skipped}; "
                "readers see them in their worklists.",
            )
        return redirect("studies:cases", pk=study.pk)
    sets = case_sets_to_attach(user=request.user, study=study)
    return render(request, "studies/casesets/attach.html", {"study": study, "case_sets": sets})
