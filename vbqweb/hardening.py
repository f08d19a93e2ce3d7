"""Response headers that keep a browser from leaking what the site shows.

The Content-Security-Policy is django-csp's (``CONTENT_SECURITY_POLICY`` in settings) and the
Referrer-Policy Django's own (``SECURE_REFERRER_POLICY``); this middleware adds the two that
neither sets:

- **Permissions-Policy** (``VBQ_PERMISSIONS_POLICY``): the site needs no camera, microphone,
  location, payment or device access, so no page of it, nor anything injected into one, gets
  them.
- **Cache-Control: no-store** on every response that does not say otherwise. Pages, JSON and
  downloads carry readings, scores and agreement: a shared workstation's disk cache or its
  back button must not keep them after the user logs out. The exception is explicit: a view
  that sets its own ``Cache-Control`` keeps it (the DICOMweb images, which are de-identified and
  immutable, are cached privately on purpose: ``docs/viewer.md``). Static files never reach
  this middleware (WhiteNoise answers them before it), so the viewer's bundle stays cached.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


def permissions_policy_header(policy: dict[str, list[str]]) -> str:
    """``{"camera": [], "fullscreen": ["self"]}`` → ``camera=(), fullscreen=(self)``."""
    return ", ".join(f"{feature}=({' '.join(allow)})" for feature, allow in policy.items())


class HardeningMiddleware:
    """Adds ``Permissions-Policy`` and the default ``Cache-Control: no-store``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.permissions_policy = permissions_policy_header(settings.VBQ_PERMISSIONS_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if self.permissions_policy:
            response.headers.setdefault("Permissions-Policy", self.permissions_policy)
        response.headers.setdefault("Cache-Control", "no-store")
        return response
