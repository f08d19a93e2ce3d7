"""Every view is login-only (Django's ``LoginRequiredMiddleware``); a script is told so in JSON.

Why: a page visit without a session is sent to the login page (302), but the viewer's autosave,
its score polling and the DICOMweb loader are ``fetch`` calls: a redirect to an HTML login page
reaches them as a 200 of HTML (the autosave could not tell "saved" from "signed out") or as a
broken image. So a call from a script (``vbqweb.accounts.middleware.wants_json``: a ``.json``
URL, DICOMweb, or an ``Accept`` that asks for JSON and not HTML) gets **401** with a JSON body
that says where to sign in (``location``); the viewer keeps the reader's draft, shows the link
and sends the draft again once the reader has signed in (``static/src/viewer/persistence.js``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.shortcuts import resolve_url

from vbqweb.accounts.middleware import wants_json

SIGNED_OUT = "Signed out: sign in again, your work is kept."


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Django's middleware, answering 401 JSON instead of the redirect to a script's call."""

    def handle_no_permission(
        self, request: HttpRequest, view_func: Callable[..., Any]
    ) -> HttpResponseBase:
        if wants_json(request):
            login_url = resolve_url(getattr(view_func, "login_url", None) or settings.LOGIN_URL)
            return JsonResponse({"error": SIGNED_OUT, "location": login_url}, status=401)
        return super().handle_no_permission(request, view_func)
