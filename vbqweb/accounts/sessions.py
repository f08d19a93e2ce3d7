"""Session limits: idle timeout and absolute lifetime (``VBQ_SESSION_IDLE_MINUTES``,
``VBQ_SESSION_MAX_HOURS``).

Two stamps in the session: when the user signed in and when they were last seen. The
"last seen" stamp is written at most once a minute: the viewer fetches many frames per page
and each write of the session is a database write; the idle limit is exact to that minute.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest

STARTED = "vbq_session_started"
SEEN = "vbq_session_seen"
TOUCH_EVERY = 60.0
"""Seconds between two writes of the "last seen" stamp."""


def session_start(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """At sign-in (``user_logged_in``): both clocks start now."""
    session = getattr(request, "session", None)
    if session is not None:
        now = time.time()
        session[STARTED] = now
        session[SEEN] = now


def session_expiry(request: HttpRequest, *, now: float | None = None) -> str | None:
    """Why the signed-in session of ``request`` has ended (a sentence), or None; touches it.

    A session signed in before these stamps existed starts its clocks at its first request.
    """
    session = request.session
    now = time.time() if now is None else now
    started, seen = session.get(STARTED), session.get(SEEN)
    idle = settings.VBQ_SESSION_IDLE_MINUTES * 60
    lifetime = settings.VBQ_SESSION_MAX_HOURS * 3600
    if started is not None and now - started > lifetime:
        hours = f"{settings.VBQ_SESSION_MAX_HOURS:g}"
        return f"Your session ended: sessions last at most {hours} hours. Please sign in again."
    if seen is not None and now - seen > idle:
        minutes = f"{settings.VBQ_SESSION_IDLE_MINUTES:g}"
        return f"Your session ended after {minutes} minutes without activity. Please sign in again."
    if started is None:
        session[STARTED] = now
    if seen is None or now - seen >= TOUCH_EVERY:
        session[SEEN] = now
    return None
