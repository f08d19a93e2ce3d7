from django.contrib import admin

from readers.models import Reading, ReadingRevision, VbqResult


class VbqResultInline(admin.TabularInline):
    model = VbqResult
    extra = 0
    readonly_fields = [
        "roi_version",
        "algorithm_version",
        "status",
        "vbq",
        "message",
        "computed_at",
    ]
    fields = readonly_fields
    can_delete = False


class ReadingRevisionInline(admin.TabularInline):
    model = ReadingRevision
    extra = 0
    readonly_fields = ["roi_version", "saved_at", "after_submit", "rois"]
    fields = readonly_fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False  # history is written by the service, never by hand


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ["case", "reader", "session", "status", "roi_version", "updated_at"]
    list_filter = ["status", "session", "case__study"]
    search_fields = ["case__label", "reader__username"]
    inlines = [ReadingRevisionInline, VbqResultInline]


@admin.register(VbqResult)
class VbqResultAdmin(admin.ModelAdmin):
    list_display = ["reading", "roi_version", "algorithm_version", "status", "vbq", "computed_at"]
    list_filter = ["status", "algorithm_version"]
