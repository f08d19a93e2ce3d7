"""django-axes' two hooks: which address a sign-in comes from (``AXES_CLIENT_IP_CALLABLE``), for
the per-address lockout, and the page a locked-out sign-in gets (``AXES_LOCKOUT_CALLABLE``).

Behind ``VBQ_PROXY_COUNT`` reverse proxies, each of which appends the address it saw to
``X-Forwarded-For``, the client is the entry that many places from the right: entries further
left were written by the client itself and could be anything. Without proxies it is
``REMOTE_ADDR``; a wrong count would either lock everybody out together (the proxy's address)
or let an attacker choose their address, so the README asks for it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str | None:
    proxies = settings.VBQ_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """What a locked-out sign-in sees (``AXES_LOCKOUT_CALLABLE``): 429 and a plain sentence.

    The same answer whether the account, the address or both are locked, and whether the
    account exists: it tells an attacker nothing the attempt count did not.
    """
    minutes = f"{settings.VBQ_LOCKOUT_MINUTES:g}"
    return render(request, "accounts/lockout.html", {"minutes": minutes}, status=429)
