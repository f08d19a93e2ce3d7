"""Accounts: who may sign in, how, and for how long (issue 12).

Sign-in throttling and lockout (django-axes), a TOTP second factor (django-otp), session
limits, Django's own password views under ``/accounts/`` (spec §7), and readers invited by
their study's managers without ``/admin/``. No models of its own: axes and django-otp keep
theirs, the invitation is Django's password-reset token.
"""
