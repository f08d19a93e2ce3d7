"""What Django announces, recorded: sign-ins, role changes, admin edits.

Why signals here, and not django-auditlog or django-simple-history (neither is a dependency):
the trail needs few model changes (roles, and whatever a site admin does in ``/admin/``), and
they must go into the *same* hash chain as the reads and downloads, with the actor and address
of the request. A library would keep a second, unchained history. So:

- ``user_logged_in`` / ``user_login_failed`` / ``user_logged_out`` (Django) and
  ``user_locked_out`` (django-axes);
- ``Assignment`` saved or deleted, wherever from (the people page, the admin, a user or study
  deleted with its roles): ``role.added`` / ``role.changed`` / ``role.removed``, with the user
  and the role, so that the history outlives the row;
- accounts, whatever page or command did it: a user created (an invitation, the admin,
  ``createsuperuser``), a password set (change, reset, invitation accepted, the admin; also a
  hasher upgrade at sign-in, which Django does by saving a new hash), a TOTP device confirmed or
  deleted (django-otp): ``account.*``, never with the secret or the hash;
- the admin: its own ``LogEntry`` rows for additions and changes (they carry the changed
  fields), and ``post_delete`` of the object an admin request deleted (Django writes the
  ``LogEntry`` rows of a bulk delete in one insert, which sends no signal).
"""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models import Model, QuerySet
from django.db.models.signals import post_delete, post_save, pre_save

from studies.models import Assignment
from vbqweb.audit.actions import Action
from vbqweb.audit.context import current_request
from vbqweb.audit.services import record, study_id_of

NOT_ADMIN_OBJECTS = {"sessions", "admin", "audit", "contenttypes"}
"""Apps whose rows an admin request may delete without it being an admin's edit (a session at
sign-out, the admin's own log, this trail)."""


def on_login(*, request: Any, user: Any, **kwargs: Any) -> None:
    record(Action.LOGIN, request=request, actor=user)


def on_login_failed(*, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))
    record(Action.LOGIN_FAILED, request=request, detail={"username": username})


def on_logout(*, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record(Action.LOGOUT, request=request, actor=user)


def on_locked_out(*, request: Any, username: Any = "", **kwargs: Any) -> None:
    record(Action.LOCKED_OUT, request=request, detail={"username": str(username or "")})


def _role_detail(assignment: Assignment) -> dict[str, Any]:
    users = get_user_model()
    username = (
        users.objects.filter(pk=assignment.user_id)
        .values_list(users.USERNAME_FIELD, flat=True)
        .first()
    )
    return {"user_id": assignment.user_id, "username": username or "", "role": assignment.role}


def on_assignment_pre_save(*, instance: Assignment, **kwargs: Any) -> None:
    """Remember the stored role, so that ``post_save`` can tell a change from a no-op."""
    instance._audit_old_role = (  # type: ignore[attr-defined]
        Assignment.objects.filter(pk=instance.pk).values_list("role", flat=True).first()
        if instance.pk
        else None
    )


def on_assignment_saved(*, instance: Assignment, created: bool, **kwargs: Any) -> None:
    old = getattr(instance, "_audit_old_role", None)
    if created:
        record(Action.ROLE_ADDED, obj=instance, detail=_role_detail(instance))
    elif old != instance.role:
        detail = _role_detail(instance) | {"previous_role": old}
        record(Action.ROLE_CHANGED, obj=instance, detail=detail)


def on_assignment_deleted(*, instance: Assignment, **kwargs: Any) -> None:
    """Deleting an assignment deletes its row; the trail keeps who had which role, and since
    when."""
    detail = _role_detail(instance) | {"since": instance.created_at.isoformat()}
    record(Action.ROLE_REMOVED, obj=instance, study=instance.study_id, detail=detail)


def on_user_pre_save(*, instance: Any, **kwargs: Any) -> None:
    """Remember the stored password hash, so that ``post_save`` can tell a new password."""
    users = get_user_model()
    instance._audit_old_password = (
        users.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
        if instance.pk
        else None
    )


def on_user_saved(
    *, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    detail = {"user_id": instance.pk, "username": instance.get_username()}
    if created:
        record(Action.ACCOUNT_CREATED, obj=instance, detail=detail)
        return
    if update_fields is not None and "password" not in update_fields:
        return
    if getattr(instance, "_audit_old_password", None) != instance.password:
        record(Action.PASSWORD_SET, obj=instance, detail=detail)


def on_device_pre_save(*, instance: Any, **kwargs: Any) -> None:
    instance._audit_was_confirmed = bool(
        instance.pk
        and type(instance)
        .objects.filter(pk=instance.pk)
        .values_list("confirmed", flat=True)
        .first()
    )


def _device_detail(instance: Any) -> dict[str, Any]:
    return {"user_id": instance.user_id, "device": type(instance).__name__}


def on_device_saved(*, instance: Any, **kwargs: Any) -> None:
    if instance.confirmed and not getattr(instance, "_audit_was_confirmed", False):
        record(
            Action.MFA_ENROLLED,
            object_type="account.user",
            object_id=instance.user_id,
            detail=_device_detail(instance),
        )


def on_device_deleted(*, instance: Any, **kwargs: Any) -> None:
    if instance.confirmed:
        record(
            Action.MFA_REMOVED,
            object_type="account.user",
            object_id=instance.user_id,
            detail=_device_detail(instance),
        )


def _in_admin(request: Any) -> bool:
    match = getattr(request, "resolver_match", None)
    return match is not None and "admin" in match.namespaces


def on_admin_log_entry(*, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    """An addition or change made in ``/admin/`` (deletions: :func:`on_deleted`)."""
    if not created or instance.action_flag not in (ADDITION, CHANGE):
        return
    try:
        change: Any = json.loads(instance.change_message or "[]")
    except ValueError:
        change = instance.change_message
    obj = None
    try:
        obj = instance.get_edited_object()
    except Exception:  # gone, or a content type without a model: record what the log says
        obj = None
    content_type = instance.content_type
    record(
        Action.ADMIN_ADDED if instance.action_flag == ADDITION else Action.ADMIN_CHANGED,
        actor=instance.user,
        object_type=f"{content_type.app_label}.{content_type.model}" if content_type else "",
        object_id=instance.object_id or "",
        study=study_id_of(obj) if obj is not None else None,
        detail={"repr": instance.object_repr, "change": json.dumps(change)[:1000]},
    )


def on_deleted(*, sender: type[Model], instance: Model, origin: Any = None, **kwargs: Any) -> None:
    """An object an admin request deleted itself (not one deleted with it in cascade)."""
    if sender._meta.app_label in NOT_ADMIN_OBJECTS:
        return
    request = current_request()
    if request is None or not _in_admin(request):
        return
    direct = origin is instance or (isinstance(origin, QuerySet) and origin.model is sender)
    if direct:
        record(
            Action.ADMIN_DELETED,
            request=request,
            obj=instance,
            detail={"repr": str(instance)[:200]},
        )


def connect() -> None:
    """Connect every receiver (``AuditConfig.ready``), each once."""
    user_logged_in.connect(on_login, dispatch_uid="audit.login")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.login_failed")
    user_logged_out.connect(on_logout, dispatch_uid="audit.logout")
    pre_save.connect(on_assignment_pre_save, sender=Assignment, dispatch_uid="audit.role_pre")
    post_save.connect(on_assignment_saved, sender=Assignment, dispatch_uid="audit.role_saved")
    post_delete.connect(on_assignment_deleted, sender=Assignment, dispatch_uid="audit.role_del")
    post_save.connect(on_admin_log_entry, sender=LogEntry, dispatch_uid="audit.admin_log")
    # Only for what the admin can delete: a receiver for every model would cost every bulk
    # delete of the site Django's fast path (objects are loaded to send the signal).
    for model in apps.get_models():
        if admin.site.is_registered(model) and model._meta.app_label not in NOT_ADMIN_OBJECTS:
            post_delete.connect(
                on_deleted, sender=model, dispatch_uid=f"audit.admin_delete.{model._meta.label}"
            )
    users = get_user_model()
    pre_save.connect(on_user_pre_save, sender=users, dispatch_uid="audit.user_pre")
    post_save.connect(on_user_saved, sender=users, dispatch_uid="audit.user_saved")
    if apps.is_installed("django_otp.plugins.otp_totp"):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        pre_save.connect(on_device_pre_save, sender=TOTPDevice, dispatch_uid="audit.mfa_pre")
        post_save.connect(on_device_saved, sender=TOTPDevice, dispatch_uid="audit.mfa_saved")
        post_delete.connect(on_device_deleted, sender=TOTPDevice, dispatch_uid="audit.mfa_del")
    if apps.is_installed("axes"):
        from axes.signals import user_locked_out

        user_locked_out.connect(on_locked_out, dispatch_uid="audit.locked_out")
