"""The lockout backend: django-axes' check, also for an ``authenticate()`` without a request.

``axes.backends.AxesStandaloneBackend`` raises when ``authenticate()`` is called without the
request, which is what Django's test ``Client.login`` and code outside a request (the demo's
checks, a shell) do. Every sign-in over HTTP passes its request (``LoginView``, the admin's
login: the tests send 20 wrong passwords through both), so it is counted and refused by
account and by address. A call without one has no address: it is refused when the *account*
is locked, and otherwise left to the password check; its failures are not counted (axes
records failures from the request only), which is right for calls that no visitor can make.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LockoutBackend(AxesStandaloneBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        return super().authenticate(
            request if request is not None else HttpRequest(), username, password, **kwargs
        )
