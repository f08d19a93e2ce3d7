"""The audit app: connects the receivers that record what Django announces."""

from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "vbqweb.audit"
    label = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vbqweb.audit import receivers

        receivers.connect()
