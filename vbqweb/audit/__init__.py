"""The audit trail (issue 12): an append-only, hash-chained log of who did what, when, from where.

One model (:class:`~vbqweb.audit.models.AuditEvent`), one vocabulary of action names
(:mod:`vbqweb.audit.actions`), one service every read, download and change goes through
(:func:`vbqweb.audit.services.record`), receivers for what Django announces (sign-ins, role
changes, admin edits), pages for a study's managers and the site's admins, and
``manage.py audit_verify``, which re-computes the chain. ``docs/audit.md`` says what is
recorded and why.

It lives in ``vbqweb`` because both ``readers`` and ``studies`` record into it; it imports
``studies`` (access checks, model names for the image events) and never ``readers``.
"""
