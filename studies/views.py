"""Study design pages, for a study's managers and site admins. Thin: fetch through ``access``,
validate with a form, write with a service, redirect.

Creating a study needs the ``studies.add_study`` permission (or a site admin); everything else
needs the study's manager role: 404 when the study is not visible, 403 for its readers on the
study's own pages (they know it exists), and 404 for its manager-only objects (a case, an upload,
an assignment), exactly as for an id that does not exist, so no answer tells them apart.
"""

from __future__ import annotations

import copy

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from studies import selectors, services
from studies.access import (
    AnyUser,
    assignment_for_manager,
    is_site_admin,
    role_in_study,
    study_for_manager,
)
from studies.form_pages import form_page, posted
from studies.forms import (
    LITERATURE_THRESHOLDS,
    AssignmentForm,
    BaseThresholdFormSet,
    ReferenceUploadForm,
    StudyForm,
    ThresholdFormSet,
)
from studies.models import Role, Study
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record

THRESHOLDS_PREFIX = "thresholds"


def can_create_study(user: AnyUser) -> bool:
    return is_site_admin(user) or user.has_perm("studies.add_study")


@require_http_methods(["GET", "POST"])
def study_create(request: HttpRequest) -> HttpResponse:
    """A new study, with the literature's thresholds offered; its creator becomes its manager."""
    if not can_create_study(request.user):
        raise PermissionDenied("You may not create studies.")
    data = posted(request)
    form = StudyForm(data)
    thresholds = ThresholdFormSet(data, initial=LITERATURE_THRESHOLDS, prefix=THRESHOLDS_PREFIX)
    if all([form.is_valid(), thresholds.is_valid()]):
        study = services.study_create_with_manager(
            manager=request.user, thresholds=thresholds.thresholds(), **form.settings()
        )
        record(Action.STUDY_CREATED, request=request, obj=study)
        messages.success(request, f"Study “{study.name}” created; you manage it.")
        return redirect("study", pk=study.pk)
    return _study_form_page(request, form, thresholds, study=None)


@require_http_methods(["GET", "POST"])
def study_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a study's design; new measurement settings rescore its readings."""
    study = study_for_manager(request.user, pk)
    data = posted(request)
    # A bound ModelForm writes onto its instance while validating: keep ``study`` as stored.
    form = StudyForm(data, instance=copy.copy(study))
    thresholds = ThresholdFormSet(
        data,
        initial=[{"name": t.name, "value": t.value} for t in study.thresholds.all()],
        prefix=THRESHOLDS_PREFIX,
    )
    if all([form.is_valid(), thresholds.is_valid()]):
        changed = services.study_update(
            study=study, thresholds=thresholds.thresholds(), **form.settings()
        )
        if changed:  # thresholds included
            record(
                Action.STUDY_EDITED, request=request, obj=study, detail={"changed": sorted(changed)}
            )
        if not changed:
            messages.info(request, "Nothing changed.")
        elif changed & services.MEASUREMENT_FIELDS:
            messages.success(
                request, "Study saved. Its readings are being rescored with the new settings."
            )
        else:
            messages.success(request, "Study saved.")
        return redirect("study", pk=study.pk)
    return _study_form_page(request, form, thresholds, study=study)


def _study_form_page(
    request: HttpRequest, form: StudyForm, thresholds: BaseThresholdFormSet, *, study: Study | None
) -> HttpResponse:
    """The one page that creates a study (``study`` is None) and edits one."""
    template = "studies/design/study_form.html"
    return form_page(request, template, form, thresholds=thresholds, study=study)


@require_http_methods(["GET", "POST"])
def study_people(request: HttpRequest, pk: int) -> HttpResponse:
    """The study's managers and readers; POST adds the people picked and/or typed, with one
    role (all of them or, when one cannot be added, none)."""
    study = study_for_manager(request.user, pk)
    form = AssignmentForm(posted(request), study=study, manager=request.user)
    if form.is_valid():
        people, role = form.cleaned_data["people"], form.cleaned_data["role"]
        try:
            added = services.assignments_add(study=study, users=people, role=role)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            names = ", ".join(a.user.get_username() for a in added)
            verb = "is" if len(added) == 1 else "are"
            role_name = added[0].get_role_display().lower() + ("s" if len(added) > 1 else "")
            messages.success(request, f"{names} {verb} now {role_name} of this study.")
            return redirect("studies:people", pk=study.pk)
    managers = list(selectors.study_managers(study=study))
    return form_page(
        request,
        "studies/design/people.html",
        form,
        study=study,
        managers=managers,
        readers=selectors.study_readers(study=study),
        adjudicators=selectors.study_adjudicators(study=study),
        last_manager_pk=managers[0].pk if len(managers) == 1 else None,
    )


@require_POST
def assignment_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Take a role away; a reader's readings stay stored but are no longer theirs to see."""
    assignment = assignment_for_manager(request.user, pk)
    study, username = assignment.study, assignment.user.get_username()
    try:
        services.assignment_revoke(assignment=assignment)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("studies:people", pk=study.pk)
    if assignment.role == Role.READER:
        messages.success(
            request, f"{username} no longer reads this study; their readings are kept."
        )
    elif assignment.role == Role.ADJUDICATOR:
        messages.success(request, f"{username} no longer adjudicates this study.")
    else:
        messages.success(request, f"{username} no longer manages this study.")
    if role_in_study(request.user, study) is None:
        return redirect("home")  # they removed themselves
    return redirect("studies:people", pk=study.pk)


@require_http_methods(["GET", "POST"])
def study_reference(request: HttpRequest, pk: int) -> HttpResponse:
    """Each case's reference values, and a CSV upload that stores all of its rows or none."""
    study = study_for_manager(request.user, pk)
    cases = list(selectors.study_cases(study=study).select_related("reference"))
    form = ReferenceUploadForm(
        posted(request), request.FILES or None, known_cases={c.label for c in cases}
    )
    if form.is_valid():
        stored = services.reference_standard_import(study=study, rows=form.rows())
        record(Action.REFERENCE_IMPORTED, request=request, obj=study, detail={"cases": stored})
        kept = len(cases) - stored
        messages.success(
            request,
            f"Reference values stored for {stored} case{'s' if stored != 1 else ''}"
            + (f"; the other {kept} keep their values." if kept else "."),
        )
        return redirect("studies:reference", pk=study.pk)
    rows = [(case, getattr(case, "reference", None)) for case in cases]
    # Case attributes (strata, issue 14): one column each, in name order.
    names = sorted({name for _, ref in rows if ref for name in ref.attributes or {}})
    return form_page(
        request,
        "studies/design/reference.html",
        form,
        study=study,
        rows=[
            (case, ref, [((ref.attributes or {}).get(n, "") if ref else "") for n in names])
            for case, ref in rows
        ],
        attribute_names=names,
        n_with_reference=sum(ref is not None for _, ref in rows),
    )
