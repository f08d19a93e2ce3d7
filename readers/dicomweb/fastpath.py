"""The cheap path for repeated WADO-RS requests: a cached authorisation and cached bytes.

Why. A viewer fetches every frame of a series, and the full Django path costs far more than the
bytes: the session and the user are loaded, the second factor and the session limits checked,
the access query run, the DICOM file opened and parsed, for each frame. ``bench/serve.py``
measured that at about 0.15-0.2x Orthanc's requests per second. Here the decision the full path
made is reused for a short time, in the process that made it:

- **A grant** ``(session key, study UID, series UID) -> (readable SOP UIDs, deadline)`` is
  recorded when the full path has answered 200 for an object of the series (the session, the
  second factor, the session limits and ``readers.access`` all passed, and the image retrieval
  is in the audit trail). It lives ``GRANT_SECONDS`` (15 s) and never past the session's idle or
  absolute limit; a logout in this process drops the session's grants at once. So revoking a
  role, quarantining an instance or signing out (in another process) takes effect within 15 s,
  and a session's "last seen" stamp is still written by a full request at least that often.
- **A body cache**: the exact response (status 200, headers, body) the full path sent for a URL
  and ``Accept`` header, kept in a bounded in-memory LRU (``VBQ_DICOMWEB_CACHE_MB`` per
  process, 128 by default). Instances are immutable (new UIDs for new bytes), so an entry
  never goes stale; a frame is decoded or cut out of the file once per process, not per request.

A request takes the cheap path only when it is a GET without a conditional header, carries a
session cookie with a live grant for its series, names a SOP UID in the grant, and its URL and
``Accept`` are in the body cache; everything else (the first request, a 304, an unusual
``Accept``, an error) goes the full way. The middleware sits just after WhiteNoise, so the
security headers (Referrer-Policy, Permissions-Policy, CSP, nosniff) are added as for any
response. The object store is not touched on a hit: with ``VBQ_STORAGE=s3`` the cache is this
process's memory, nothing is written to disk.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase

GRANT_SECONDS = 15.0
_PATH = re.compile(
    r"^/dicomweb/studies/(?P<study>[0-9.]+)/series/(?P<series>[0-9.]+)/instances/"
    r"(?P<sop>[0-9.]+)(?:/metadata|(?:/frames/[0-9,]+)?(?:/rendered|/thumbnail)?)$"
)
_DROP = {"set-cookie", "date"}


@dataclass(frozen=True)
class Grant:
    sops: frozenset[str]
    deadline: float


@dataclass(frozen=True)
class Entry:
    headers: tuple[tuple[str, str], ...]
    body: bytes


class _Memory:
    """Grants and bodies of this process, behind one lock (gthread workers are threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.grants: dict[tuple[str, str, str], Grant] = {}
        self.bodies: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self.size = 0

    def budget(self) -> int:
        return int(getattr(settings, "VBQ_DICOMWEB_CACHE_MB", 128) * 1024 * 1024)

    def grant(self, key: tuple[str, str, str], grant: Grant) -> None:
        with self.lock:
            if len(self.grants) > 10_000:  # expired grants are dropped when there are many
                now = time.monotonic()
                self.grants = {k: g for k, g in self.grants.items() if g.deadline > now}
            self.grants[key] = grant

    def granted(self, key: tuple[str, str, str], sop: str) -> bool:
        grant = self.grants.get(key)
        return grant is not None and grant.deadline > time.monotonic() and sop in grant.sops

    def forget_session(self, session_key: str) -> None:
        with self.lock:
            self.grants = {k: g for k, g in self.grants.items() if k[0] != session_key}

    def body(self, key: tuple[str, str]) -> Entry | None:
        entry = self.bodies.get(key)
        if entry is not None:
            with self.lock:
                if key in self.bodies:
                    self.bodies.move_to_end(key)
        return entry

    def keep(self, key: tuple[str, str], entry: Entry) -> None:
        budget = self.budget()
        if len(entry.body) > budget // 8:
            return
        with self.lock:
            old = self.bodies.pop(key, None)
            if old is not None:
                self.size -= len(old.body)
            self.bodies[key] = entry
            self.size += len(entry.body)
            while self.size > budget and self.bodies:
                _, dropped = self.bodies.popitem(last=False)
                self.size -= len(dropped.body)

    def clear(self) -> None:
        with self.lock:
            self.grants.clear()
            self.bodies.clear()
            self.size = 0


MEMORY = _Memory()


def grant_series(request: HttpRequest, *, study_uid: str, series_uid: str, sops: set[str]) -> None:
    """Called by a view that has checked access to the series: offer a grant, recorded by the
    middleware if the response is a 200."""
    request._dicomweb_grant = (study_uid, series_uid, frozenset(sops))  # type: ignore[attr-defined]


def cacheable(request: HttpRequest) -> None:
    """Called by a view whose 200 answer depends only on the URL and ``Accept``."""
    request._dicomweb_cacheable = True  # type: ignore[attr-defined]


def _replayed(entry: Entry) -> HttpResponse:
    response = HttpResponse(entry.body)
    for name, value in entry.headers:
        response[name] = value
    return response


def replay(request: HttpRequest) -> HttpResponse | None:
    """For a view that has checked access and called ``cacheable``: the response another
    session already received for this URL and Accept header in this process, if kept (so a
    frame is decoded once per process, not once per reader)."""
    key = getattr(request, "_dicomweb_body_key", None)
    if key is None or not getattr(request, "_dicomweb_cacheable", False):
        return None
    entry = MEMORY.body(key)
    return None if entry is None else _replayed(entry)


def _session_deadline(request: HttpRequest, now_wall: float) -> float:
    """Seconds (monotonic) until the grant must end: the grant's life, the session's limits."""
    from vbqweb.accounts.sessions import SEEN, STARTED

    session = request.session  # type: ignore[attr-defined]
    limit = GRANT_SECONDS
    started, seen = session.get(STARTED), session.get(SEEN)
    if seen is not None:
        limit = min(limit, seen + settings.VBQ_SESSION_IDLE_MINUTES * 60 - now_wall)
    if started is not None:
        limit = min(limit, started + settings.VBQ_SESSION_MAX_HOURS * 3600 - now_wall)
    return time.monotonic() + max(0.0, limit)


class FastPathMiddleware:
    """Answers a granted, cached WADO-RS request before the session is loaded (module doc)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.cookie = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info
        if not path.startswith("/dicomweb/studies/") or request.method != "GET":
            return self.get_response(request)
        match = _PATH.match(path)
        session_key = request.COOKIES.get(self.cookie)
        body_key = (
            f"{request.scheme}://{request.get_host()}{request.get_full_path()}",
            request.META.get("HTTP_ACCEPT", ""),
        )
        if (
            match is not None
            and session_key
            and "HTTP_IF_NONE_MATCH" not in request.META
            and "HTTP_RANGE" not in request.META
            and MEMORY.granted((session_key, match["study"], match["series"]), match["sop"])
        ):
            entry = MEMORY.body(body_key)
            if entry is not None:
                return _replayed(entry)
        request._dicomweb_body_key = body_key  # type: ignore[attr-defined]
        response = self.get_response(request)
        if response.status_code == 200:
            self._remember(request, response, body_key)
        return response

    def _remember(
        self, request: HttpRequest, response: HttpResponseBase, body_key: tuple[str, str]
    ) -> None:
        offered = getattr(request, "_dicomweb_grant", None)
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if offered is None or session is None or user is None or not user.is_authenticated:
            return
        session_key = session.session_key
        if not session_key or request.COOKIES.get(self.cookie) != session_key:
            return  # a new or rotated session: its cookie is not the one the next request sends
        study_uid, series_uid, sops = offered
        deadline = _session_deadline(request, time.time())
        MEMORY.grant((session_key, study_uid, series_uid), Grant(sops, deadline))
        if getattr(request, "_dicomweb_cacheable", False) and isinstance(response, HttpResponse):
            headers = tuple(
                (name, value) for name, value in response.items() if name.lower() not in _DROP
            )
            MEMORY.keep(body_key, Entry(headers, response.content))


@receiver(user_logged_out)
def _forget_on_logout(sender: object, request: HttpRequest | None, **kwargs: object) -> None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None) if session is not None else None
    if key:
        MEMORY.forget_session(key)
