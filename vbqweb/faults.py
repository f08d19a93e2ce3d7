"""A database or object store that is down for a moment answers 503 with ``Retry-After``,
never a 500 page.

When PostgreSQL restarts (an upgrade, a failover, a crash) every request that needs it fails
with ``OperationalError`` or ``InterfaceError``. Django turns that into a 500 page, which tells
the viewer's autosave and a reader nothing useful: the request did not go through, and trying
again in a few seconds is the right thing to do. This module says exactly that.

Why a signal and a middleware rather than ``process_exception``: the first query of a request
is often made by another middleware (the session, the user, the lockout), and Django converts an
exception raised there into a 500 response before any ``process_exception`` sees it. Every
uncaught exception, wherever it is raised, is announced by ``got_request_exception`` while it is
being handled: the receiver below marks the request when the exception is the database being
unreachable, and the middleware, placed outside the session and everything else that queries,
replaces the 500 it then receives. The error is still logged with its traceback by Django.

The object store (``VBQ_STORAGE=s3``) is the same kind of fault: an upload's chunk or an image
that could not be written or read because the store is unreachable is worth trying again, and
says so (``vbqweb.storage.storage_unavailable`` decides).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from vbqweb.storage import storage_unavailable

RETRY_AFTER = 5  # seconds: a restart of PostgreSQL takes about this long
MESSAGE = (
    "The database is unavailable for a moment, so this request was not completed. "
    "Nothing is lost that was saved before; try again in a few seconds."
)
STORAGE_MESSAGE = (
    "The file store is unavailable for a moment, so this request was not completed. "
    "Nothing is lost that was saved before; try again in a few seconds."
)
_MARK = "_vbq_unavailable"


def is_database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` means "the database cannot be reached now" (retryable), not a bug.

    PostgreSQL (psycopg) reports a refused, dropped or terminated connection as
    ``OperationalError``; a connection already closed is ``InterfaceError``. SQLite uses
    ``OperationalError`` for a lock wait that timed out (retryable) but also for a missing table
    (a bug, which must stay a 500): for SQLite only the lock and open failures count.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("sqlite3"):
        text = str(exc).lower()
        return "locked" in text or "unable to open" in text
    return True


def _mark_request(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    """``got_request_exception`` receiver: runs inside Django's ``except`` block."""
    if request is None:
        return
    error = sys.exc_info()[1]
    if is_database_unavailable(error):
        setattr(request, _MARK, "database")
    elif error is not None and storage_unavailable(error):
        setattr(request, _MARK, "storage")


got_request_exception.connect(_mark_request, dispatch_uid="vbqweb.faults.mark_request")


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        request.path.endswith(".json")
        or "json" in request.content_type
        or request.content_type == "application/octet-stream"  # a script's raw body (uploads)
        or ("application/json" in accept and "text/html" not in accept)
        or "/dicomweb/" in request.path
    )


def unavailable_response(request: HttpRequest, what: str = "database") -> HttpResponse:
    """The 503 itself: JSON for the viewer and other scripts, a short page for a person.
    ``what`` is ``database`` or ``storage``."""
    response: HttpResponse
    message = STORAGE_MESSAGE if what == "storage" else MESSAGE
    if _wants_json(request):
        response = JsonResponse(
            {"error": f"{what}_unavailable", "message": message, "retry_after": RETRY_AFTER},
            status=503,
        )
    else:
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<title>Unavailable for a moment</title></head><body>"
            f"<h1>Unavailable for a moment</h1><p>{message}</p></body></html>"
        )
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER)
    add_never_cache_headers(response)
    return response


class DatabaseUnavailableMiddleware:
    """Replace the 500 of a request that failed on an unreachable database with a 503.

    Must sit outside every middleware that queries the database (above the session
    middleware): those turn their exceptions into a 500 response that arrives here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        what = getattr(request, _MARK, "")
        if what and response.status_code >= 500:
            return unavailable_response(request, what)
        return response
