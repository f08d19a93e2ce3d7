"""The audit trail in ``/admin/``: to look at, never to add, change or delete."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from vbqweb.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["sequence", "time", "actor_username", "action", "object_type", "object_id",
                    "study_id", "remote_addr"]  # fmt: skip
    list_filter = ["action"]
    search_fields = ["actor_username", "object_id"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    actions = None

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
