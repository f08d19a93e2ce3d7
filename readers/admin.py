from django.contrib import admin

from readers.models import Reading, VbqResult


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


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ["case", "reader", "session", "status", "roi_version", "updated_at"]
    list_filter = ["status", "session", "case__study"]
    search_fields = ["case__label", "reader__username"]
    inlines = [VbqResultInline]


@admin.register(VbqResult)
class VbqResultAdmin(admin.ModelAdmin):
    list_display = ["reading", "roi_version", "algorithm_version", "status", "vbq", "computed_at"]
    list_filter = ["status", "algorithm_version"]
