"""The wide downloads (issue 13): one row per reading as CSV, the VBQ by reader as CSV, and both
in one ``.xlsx`` workbook with a sheet that explains the columns (``readers.analysis.wide``).

Thin, like ``views``: ``study_for_manager`` first (readers 403, everyone else 404), every
download recorded in the audit trail as the other downloads are. Kept apart from ``views`` so
that the agreement page's module and these change independently.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from readers.analysis import wide
from readers.analysis.views import attachment
from studies.access import study_for_manager
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record
from vbqweb.spreadsheet import to_csv, to_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@require_GET
def readings_wide(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """``csv``: one row per reading; ``by_reader``: one row per case × session with a VBQ
    column per reader; ``xlsx``: both sheets and the columns' meanings."""
    study = study_for_manager(request.user, pk)
    readings = wide.reading_rows(study=study)
    columns, by_reader = wide.by_reader(readings)
    name = {
        "csv": f"study-{study.pk}-readings-wide.csv",
        "by_reader": f"study-{study.pk}-vbq-by-reader.csv",
        "xlsx": f"study-{study.pk}-readings.xlsx",
    }[fmt]
    record(Action.DOWNLOADED, request=request, study=study, detail={"file": name})
    if fmt == "csv":
        return attachment(to_csv(readings, wide.READING_COLUMNS), name, "text/csv; charset=utf-8")
    if fmt == "by_reader":
        return attachment(to_csv(by_reader, columns), name, "text/csv; charset=utf-8")
    notes = [{"column": k, "meaning": v} for k, v in wide.COLUMN_NOTES.items()]
    workbook = to_xlsx(
        [
            ("readings", wide.READING_COLUMNS, readings),
            ("by reader", columns, by_reader),
            ("columns", ["column", "meaning"], notes),
        ]
    )
    return attachment(workbook, name, XLSX)
