"""The audit trail's action names, defined once.

A name is ``<what>.<verb>``; it is stored as text (the model has no ``choices``, so that a new
action needs no migration) and :func:`vbqweb.audit.services.record` refuses any name not here.
"""

from __future__ import annotations

from django.db import models


class Action(models.TextChoices):
    # Accounts (django.contrib.auth's signals; django-axes's lockout).
    LOGIN = "auth.login", "Signed in"
    LOGIN_FAILED = "auth.login_failed", "Sign-in failed"
    LOGOUT = "auth.logout", "Signed out"
    LOCKED_OUT = "auth.locked_out", "Locked out"
    ACCOUNT_CREATED = "account.created", "Account created"
    PASSWORD_SET = "account.password_set", "Password set"
    MFA_ENROLLED = "account.mfa_enrolled", "Two-factor sign-in turned on"
    MFA_REMOVED = "account.mfa_removed", "Two-factor sign-in turned off"
    # What people looked at and took away.
    READING_VIEWED = "reading.viewed", "Reading viewed"
    IMAGES_RETRIEVED = "images.retrieved", "Images retrieved"
    DOWNLOADED = "export.downloaded", "Downloaded"
    # Readings.
    ROIS_SAVED = "reading.rois_saved", "ROIs saved"
    READING_SUBMITTED = "reading.submitted", "Reading submitted"
    CONSENSUS_RECORDED = "consensus.recorded", "Consensus recorded (adjudication)"
    # Roles (any change of an Assignment row, wherever it comes from).
    ROLE_ADDED = "role.added", "Role added"
    ROLE_CHANGED = "role.changed", "Role changed"
    ROLE_REMOVED = "role.removed", "Role removed"
    # Study design.
    STUDY_CREATED = "study.created", "Study created"
    STUDY_EDITED = "study.edited", "Study edited"
    RANGES_EDITED = "study.ranges_edited", "Eligibility ranges edited"
    REFERENCE_IMPORTED = "study.reference_imported", "Reference standard imported"
    SERIES_CHOSEN = "case.series_chosen", "Reading series chosen"
    CASES_ATTACHED = "caseset.attached", "Case set attached from another study"
    STUDY_PURGED = "study.purged", "Study purged"
    # Ingest.
    UPLOAD_STARTED = "upload.started", "Upload started"
    UPLOAD_QUEUED = "upload.queued", "Upload queued for ingest"
    UPLOAD_CANCELLED = "upload.cancelled", "Upload cancelled"
    UPLOAD_FINISHED = "upload.finished", "Ingest finished"
    UPLOAD_FAILED = "upload.failed", "Ingest failed"
    # Django's admin.
    ADMIN_ADDED = "admin.added", "Added in the admin"
    ADMIN_CHANGED = "admin.changed", "Changed in the admin"
    ADMIN_DELETED = "admin.deleted", "Deleted in the admin"
