from django.contrib import admin

from studies.models import (
    Assignment,
    Case,
    CaseSet,
    Instance,
    Series,
    Study,
    Threshold,
    Upload,
    UploadItem,
)


class ThresholdInline(admin.TabularInline):
    model = Threshold
    extra = 1


class AssignmentInline(admin.TabularInline):
    model = Assignment
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "roi_statistic", "level_aggregate", "min_levels", "sessions"]
    search_fields = ["name"]
    inlines = [ThresholdInline, AssignmentInline]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["study", "user", "role", "created_at"]
    list_filter = ["role", "study"]
    autocomplete_fields = ["user", "study"]


@admin.register(CaseSet)
class CaseSetAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "created_at"]
    list_filter = ["study"]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["label", "study", "case_set", "created_at"]
    list_filter = ["study"]
    search_fields = ["label", "study_instance_uid"]


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ["case", "description", "field_strength_t", "repetition_time_ms", "selected"]
    list_filter = ["selected", "field_strength_t"]
    search_fields = ["series_instance_uid", "description"]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    """Quarantined instances (possible burned-in text) wait here for a site admin."""

    list_display = [
        "sop_instance_uid",
        "series",
        "instance_number",
        "rows",
        "columns",
        "size",
        "quarantined",
    ]
    list_filter = ["quarantined"]
    search_fields = ["sop_instance_uid"]
    readonly_fields = ["sha256", "size", "quarantine_reason", "upload"]


class UploadItemInline(admin.TabularInline):
    model = UploadItem
    extra = 0
    can_delete = False
    fields = ["position", "file_index", "member_index", "status", "reason", "sop_instance_uid"]
    readonly_fields = fields


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "study",
        "status",
        "files_total_expected",
        "instances_stored",
        "created_at",
    ]
    list_filter = ["status", "study"]
    readonly_fields = [f.name for f in Upload._meta.fields]
    inlines = [UploadItemInline]
