"""Site-wide views: the home page per role and the health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from readers.selectors import reader_studies_to_read
from studies.access import is_site_admin, studies_managed_by, studies_read_by
from studies.models import Role, Study


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """One page, three roles: studies managed, studies read (each with what is left to read in
    the current session and its next case), and the admin's way in."""
    reading = list(studies_read_by(request.user))
    return render(
        request,
        "home.html",
        {
            "managed": studies_managed_by(request.user).prefetch_related("cases", "assignments"),
            "reading": reader_studies_to_read(reader=request.user, studies=reading),
            "is_site_admin": is_site_admin(request.user),
            # Issue 14: the studies the user adjudicates (their worklists only).
            "adjudicating": Study.objects.filter(
                assignments__user=request.user, assignments__role=Role.ADJUDICATOR
            ),
        },
    )


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and container health checks: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")
