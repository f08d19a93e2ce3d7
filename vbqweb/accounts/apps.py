"""The accounts app: connects the receiver that stamps a session's start at sign-in."""

from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "vbqweb.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from vbqweb.accounts.sessions import session_start

        user_logged_in.connect(session_start, dispatch_uid="vbqweb.accounts.session_start")
