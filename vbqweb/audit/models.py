"""The audit trail's one table: append-only, each row chained to the one before by a hash.

Nothing here points at another table: the actor is a user id *and* a snapshot of the
username, the object and its study are ids, so that deleting a user, an assignment or a whole
study (``manage.py purge_study``) leaves its history as it was, and the chain's hashes, which
cover those values, stay valid. Rows are written only by :func:`vbqweb.audit.services.record`;
the model refuses every update and delete through Django's API (and the admin shows it
read-only). Someone with the database's own credentials can still change a row: that is what
the hash chain and ``manage.py audit_verify`` are for (``docs/audit.md``).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models


class AppendOnly(Exception):
    """An attempt to change or delete an audit event through the ORM."""


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise AppendOnly("The audit trail is append-only: events are never changed or deleted.")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Reads as usual; every bulk write that could rewrite history raises."""

    update = _refuse
    delete = _refuse
    bulk_update = _refuse
    update_or_create = _refuse
    bulk_create = _refuse  # one at a time, under the chain's lock (services.record)


class AuditEvent(models.Model):
    """One thing that happened: who (``actor_*``), what (``action``), to what (``object_*``,
    ``study_id``), when, from where, and a little ``detail``; ``hash`` covers all of it and the
    previous event's hash."""

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    time = models.DateTimeField(editable=False)
    actor_id = models.BigIntegerField(null=True, blank=True, editable=False)
    actor_username = models.CharField(max_length=150, blank=True, editable=False)
    action = models.CharField(max_length=64, db_index=True, editable=False)
    object_type = models.CharField(max_length=64, blank=True, editable=False)
    object_id = models.CharField(max_length=64, blank=True, editable=False)
    study_id = models.BigIntegerField(null=True, blank=True, db_index=True, editable=False)
    remote_addr = models.CharField(max_length=45, blank=True, editable=False)
    detail = models.JSONField(default=dict, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} by {self.actor_username or 'system'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Insert once; never update (a saved event is history)."""
        if not self._state.adding or self.pk is not None:
            _refuse()
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse()
