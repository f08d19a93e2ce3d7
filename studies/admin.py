"""The study side in ``/admin/``. Every drop-down that picks a case, a series, a case set, a
threshold or an upload names its study ("Study A — Case 001"): case labels repeat from study
to study, so a bare "Case 001" does not say which one is meant (issue 13 item 10).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models

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

CHOICE_LABELS: dict[type[models.Model], tuple[tuple[str, ...], Callable[[Any], str]]] = {
    Case: (("study",), lambda case: f"{case.study.name} — {case.label}"),
    Series: (
        ("case__study",),
        lambda s: (
            f"{s.case.study.name} — {s.case.label} / {s.description or s.series_instance_uid}"
        ),
    ),
    CaseSet: (("study",), lambda case_set: f"{case_set.study.name} — {case_set.name}"),
    Threshold: (("study",), lambda t: f"{t.study.name} — {t}"),
    Upload: (("study",), lambda upload: f"{upload.study.name} — {upload}"),
}
"""Model → (what to ``select_related`` for the label, the label) of a foreign-key drop-down."""


def study_named_choices(field: forms.Field | None) -> forms.Field | None:
    """Label a model choice field's options with their study (one query, not one per option)."""
    if isinstance(field, forms.ModelChoiceField):
        related = CHOICE_LABELS.get(field.queryset.model)
        if related is not None:
            joins, label = related
            field.queryset = field.queryset.select_related(*joins)
            field.label_from_instance = label  # type: ignore[method-assign]
    return field


class StudyNamedChoices:
    """A ``ModelAdmin`` or inline mixin: its foreign-key drop-downs name the study."""

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        return study_named_choices(field)


class ThresholdInline(admin.TabularInline):
    model = Threshold
    extra = 1


class AssignmentInline(admin.TabularInline):
    model = Assignment
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Study)
class StudyAdmin(StudyNamedChoices, admin.ModelAdmin):
    list_display = ["name", "roi_statistic", "level_aggregate", "min_levels", "sessions"]
    search_fields = ["name"]
    inlines = [ThresholdInline, AssignmentInline]

    def get_form(self, request: Any, obj: Study | None = None, **kwargs: Any) -> Any:
        """The adjudication threshold is one of this study's own (none on a new study)."""
        form = super().get_form(request, obj, **kwargs)
        field = form.base_fields.get("adjudication_threshold")
        if isinstance(field, forms.ModelChoiceField):
            field.queryset = field.queryset.filter(study=obj) if obj else field.queryset.none()
        return form


@admin.register(Assignment)
class AssignmentAdmin(StudyNamedChoices, admin.ModelAdmin):
    list_display = ["study", "user", "role", "created_at"]
    list_filter = ["role", "study"]
    autocomplete_fields = ["user", "study"]


@admin.register(CaseSet)
class CaseSetAdmin(StudyNamedChoices, admin.ModelAdmin):
    list_display = ["name", "study", "created_at"]
    list_filter = ["study"]


@admin.register(Case)
class CaseAdmin(StudyNamedChoices, admin.ModelAdmin):
    list_display = ["label", "study", "case_set", "created_at"]
    list_filter = ["study"]
    list_select_related = ["study", "case_set"]
    search_fields = ["label", "study_instance_uid"]


@admin.register(Series)
class SeriesAdmin(StudyNamedChoices, admin.ModelAdmin):
    list_display = [
        "case",
        "study",
        "description",
        "field_strength_t",
        "repetition_time_ms",
        "selected",
    ]
    list_filter = ["selected", "field_strength_t", "case__study"]
    list_select_related = ["case__study"]

    @admin.display(description="study", ordering="case__study__name")
    def study(self, series: Series) -> str:
        return series.case.study.name

    search_fields = ["series_instance_uid", "description"]


@admin.register(Instance)
class InstanceAdmin(StudyNamedChoices, admin.ModelAdmin):
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
class UploadAdmin(StudyNamedChoices, admin.ModelAdmin):
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
