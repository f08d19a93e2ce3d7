"""Site-wide views: the home page per role and the health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studies.access import is_site_admin, studies_managed_by, studies_read_by


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """One page, three roles: studies managed, studies read, and the admin's way in."""
    return render(
        request,
        "home.html",
        {
            "managed": studies_managed_by(request.user).prefetch_related("cases", "assignments"),
            "reading": studies_read_by(request.user),
            "is_site_admin": is_site_admin(request.user),
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
