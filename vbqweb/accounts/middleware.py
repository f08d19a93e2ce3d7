"""Two gates every request passes after authentication: the session's limits and the second
factor.

``SessionLimitsMiddleware`` logs out a session past its idle or absolute limit and lets the
request go on as an anonymous one: whatever answers anonymous requests answers it (the login
page for pages, 401 for the viewer's JSON), so no page or JSON endpoint needs to know.

``MfaMiddleware`` holds a signed-in user who has not passed the second factor to one page:
the code page when they have a device, the enrolment page when they must have one and do not
(``VBQ_MFA_REQUIRED``, managers and admins). It checks every view by name, the admin's
included (the admin marks its views as not needing Django's login: it has its own), so no
way in skips it. A JSON caller gets 401 with the page to go to, never a redirect to HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from vbqweb.accounts.mfa import confirmed_device, mfa_required_for
from vbqweb.accounts.sessions import session_expiry

OPEN_TO_UNVERIFIED = {"logout", "healthz"}
"""Views a signed-in user reaches before the second factor (besides its own pages)."""


def wants_json(request: HttpRequest) -> bool:
    """A call from a script (the viewer, the uploader, a DICOMweb client), not a page visit."""
    accept = request.headers.get("Accept", "")
    return (
        request.path.endswith(".json")
        or request.path.startswith("/dicomweb/")
        or ("json" in accept and "text/html" not in accept)
    )


class SessionLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.user.is_authenticated:
            reason = session_expiry(request)
            if reason is not None:
                logout(request)  # flushes the session; request.user is anonymous from here
                messages.info(request, reason)
        return self.get_response(request)


class MfaMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        name = request.resolver_match.view_name if request.resolver_match else ""
        if name in OPEN_TO_UNVERIFIED:
            return None
        if confirmed_device(user) is not None:
            target = "accounts:mfa_verify"
        elif mfa_required_for(user):
            target = "accounts:mfa_setup"
        else:
            return None
        if name == target:
            return None
        return self._send_to(request, target)

    @staticmethod
    def _send_to(request: HttpRequest, target: str) -> HttpResponse:
        url = reverse(target)
        if wants_json(request):
            what = (
                "a code from your authenticator app"
                if target.endswith("verify")
                else ("a second factor")
            )
            return JsonResponse(
                {"error": f"Sign-in is not complete: {what} is needed.", "location": url},
                status=401,
            )
        if request.method == "GET":
            url = f"{url}?{urlencode({'next': request.get_full_path()})}"
        return redirect(url)
