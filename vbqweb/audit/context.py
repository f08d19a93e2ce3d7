"""The request being answered, for events recorded below the views.

Role changes are recorded by receivers of ``Assignment``'s signals and admin deletions by a
receiver of ``post_delete``: neither is handed the request, yet the event must name who did it
and from where. :class:`AuditContextMiddleware` keeps the request in a context variable for as
long as it is answered; :func:`current_request` reads it (None in a Celery task or a
management command, whose events are the system's).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponseBase

_request: ContextVar[HttpRequest | None] = ContextVar("vbq_audit_request", default=None)


def current_request() -> HttpRequest | None:
    return _request.get()


class AuditContextMiddleware:
    """Keeps the request in :func:`current_request` while the view answers it (after the
    authentication middleware, so that ``request.user`` is there when an event is recorded)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
