"""Study pages. Thin: fetch through ``access``, read through selectors, render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from readers.selectors import reader_worklist, study_readings
from studies import selectors
from studies.access import study_for_user
from studies.models import Role


@require_GET
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Managers see every case, reader and reading; readers see their own worklist only."""
    study, role = study_for_user(request.user, pk)
    context: dict[str, object] = {"study": study, "role": role}
    if role == Role.MANAGER:
        readings = study_readings(study=study)
        readers = list(selectors.study_readers(study=study))
        by_key = {(r.case_id, r.reader_id, r.session): r for r in readings}
        sessions = range(1, study.sessions + 1)
        rows = [
            {
                "case": case,
                "cells": [
                    by_key.get((case.pk, a.user_id, session)) for a in readers for session in sessions
                ],
            }
            for case in selectors.study_cases(study=study)
        ]
        context |= {
            "rows": rows,
            "readers": readers,
            "managers": selectors.study_managers(study=study),
            "sessions": sessions,
            "n_readings": len(readings),
            "n_submitted": sum(r.is_locked for r in readings),
        }
        return render(request, "studies/study_manager.html", context)
    context |= {
        "worklist": reader_worklist(reader=request.user, study=study),
        "sessions": range(1, study.sessions + 1),
    }
    return render(request, "studies/study_reader.html", context)
