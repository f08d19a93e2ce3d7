"""Readings and results in ``/admin/``: to look at, never to add, change or delete.

A reading's ROIs and status are what its reader did, and a result is what the server computed
from them: a site admin who could edit either in the admin could change a submitted reading or
invent a score (issue 12). Changes go through the reader's own pages and the scoring task;
every view of a reading by someone else and every change is in the audit trail
(``docs/audit.md``). Deleting is refused too, so a study or a user that still has readings
cannot be deleted here: ``manage.py purge_study`` removes a whole study, logged.
"""

from typing import Any

from django.contrib import admin

from readers.models import Consensus, Reading, ReadingRevision, StudyArtifact, VbqResult
from studies.admin import StudyNamedChoices
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record


class ReadOnly:
    """View permission only, for a ``ModelAdmin`` or an inline."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class VbqResultInline(ReadOnly, admin.TabularInline):
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


class ReadingRevisionInline(ReadOnly, admin.TabularInline):
    """History is written by the service, never by hand."""

    model = ReadingRevision
    extra = 0
    readonly_fields = ["roi_version", "saved_at", "after_submit", "rois"]
    fields = readonly_fields


@admin.register(Reading)
class ReadingAdmin(ReadOnly, StudyNamedChoices, admin.ModelAdmin):
    list_display = ["case", "study", "reader", "session", "status", "roi_version", "updated_at"]
    list_filter = ["status", "session", "case__study"]
    list_select_related = ["case__study", "reader"]
    search_fields = ["case__label", "case__study__name", "reader__username"]
    readonly_fields = ["study"]
    inlines = [ReadingRevisionInline, VbqResultInline]
    actions = None

    @admin.display(description="study", ordering="case__study__name")
    def study(self, reading: Reading) -> str:
        """Case labels repeat from study to study: the list and the page name the study."""
        return reading.case.study.name

    def change_view(
        self, request: Any, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        """Looking at a reading here is a view of a reading like the manager's page."""
        response = super().change_view(request, object_id, form_url, extra_context)
        reading = Reading.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if request.method == "GET" and response.status_code == 200 and reading is not None:
            record(Action.READING_VIEWED, request=request, obj=reading)
        return response


@admin.register(VbqResult)
class VbqResultAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["reading", "roi_version", "algorithm_version", "status", "vbq", "computed_at"]
    list_select_related = ["reading__case__study", "reading__reader"]
    list_filter = ["status", "algorithm_version"]
    actions = None


@admin.register(Consensus)
class ConsensusAdmin(ReadOnly, admin.ModelAdmin):
    """An adjudicated VBQ and its provenance, to look at: a decision is the adjudicator's
    (``readers/adjudication``), audited there, and never edited afterwards in the admin."""

    list_display = ["case", "session", "source", "accepted_label", "vbq", "decided_by"]
    list_select_related = ["case__study", "decided_by"]
    list_filter = ["source"]
    actions = None


@admin.register(StudyArtifact)
class StudyArtifactAdmin(ReadOnly, admin.ModelAdmin):
    """The files built from each study's analysis and their build state, to see what is built
    or stuck (``readers.analysis.artifacts``). The file itself is named, never linked: it holds
    the study's readings, and its downloads go through the study's pages, access-checked and
    audited."""

    list_display = ["study", "kind", "built_at", "size", "building_state", "key"]
    list_select_related = ["study"]
    list_filter = ["kind"]
    fields = ["study", "kind", "key", "stored_name", "size", "built_at", "building_state"]
    readonly_fields = fields
    actions = None

    @admin.display(description="analysis key")
    def key(self, obj: StudyArtifact) -> str:
        return obj.fingerprint[:16]

    @admin.display(description="stored as")
    def stored_name(self, obj: StudyArtifact) -> str:
        return obj.file.name or "–"

    @admin.display(description="building")
    def building_state(self, obj: StudyArtifact) -> str:
        if not obj.building:
            return "–"
        return f"{obj.building[:16]}: {obj.progress} of {obj.total}"
