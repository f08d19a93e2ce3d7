"""Wide downloads for SPSS, R and Excel (issue 13): one row per reading, and one row per case and
session with a column per reader.

The long format (``exports.measurement_rows``: a row per reading × ROI label) is the spec's
contract and stays as it is; these tables are built *from its rows*, so the three downloads can
never disagree. What each is for:

* **readings** (one row per observation: a reader's reading of a case in a session): what a
  mixed model, a t-test between sessions or a pivot table wants. ``L1_si`` … ``CSF_si`` are the
  ROIs' signal intensities under the study's ROI statistic; an excluded level has an empty SI,
  ``L1_excluded = 1`` and its reason.
* **by reader** (one row per case × session, one ``vbq_<reader>`` column per reader): what an
  ICC needs in SPSS (``RELIABILITY /VARIABLES=vbq_a vbq_b … /ICC=MODEL(RANDOM) TYPE(ABSOLUTE)``)
  and in R (``irr::icc(df[, readers])``, ``psych::ICC``). A missing reading is an empty cell
  (system-missing in SPSS, ``NA`` in R); ``complete = 1`` marks the rows every reader read, the
  ones an ICC uses.

Column names are valid SPSS variable names (a letter first, then letters, digits and ``_``, at
most 64 characters); a reader's column is ``vbq_`` + the username with every other character
replaced by ``_`` (and ``_2``, ``_3`` … should two usernames collide). Booleans are 0/1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any, Final

from readers.analysis.exports import measurement_rows
from studies.models import Study
from studies.vocabulary import CSF, LABELS, LEVELS

_BASE: Final = [
    "case", "reader", "session", "submitted_at", "vbq", "score_status", "n_levels",
]  # fmt: skip
_PER_LEVEL: Final = [f"{label}_{part}" for label in LEVELS for part in ("si", "excluded", "reason")]
_TAIL: Final = [
    f"{CSF}_si", "csf_level", "roi_statistic", "level_aggregate",
    "field_strength_t", "manufacturer", "model", "repetition_time_ms", "echo_time_ms",
    "active_seconds", *(f"{label}_seconds" for label in LABELS), "quality_confirmed",
    "consensus_vbq", "consensus_source",
]  # fmt: skip
READING_COLUMNS: Final = [*_BASE, *_PER_LEVEL, *_TAIL]
"""The readings table's columns, in order (docs/agreement.md, "Wide downloads")."""

COLUMN_NOTES: Final = {
    "case": "the case's label in this study",
    "reader": "the reader's username",
    "session": "reading session (1 = first reading)",
    "submitted_at": "when the reading was submitted (ISO 8601, UTC)",
    "vbq": "the VBQ score (empty when not computed)",
    "score_status": "ok, or why there is no score",
    "n_levels": "vertebral levels measured (not excluded)",
    "L1_si": "L1 signal intensity (the study's ROI statistic); L2-L4 alike",
    "L1_excluded": "1 when the reader excluded L1 (then L1_si is empty); L2-L4 alike",
    "L1_reason": "why L1 was excluded; L2-L4 alike",
    "CSF_si": "CSF signal intensity",
    "csf_level": "the level the CSF ROI was drawn at",
    "active_seconds": "active reading time on the case (visible tab, input in the last minute)",
    "L1_seconds": "the part of active_seconds spent on L1; L2-L4 and CSF alike",
    "quality_confirmed": "quality warnings the reader confirmed at submit",
    "consensus_vbq": "the adjudicated VBQ of the case in the session (empty: not adjudicated)",
    "vbq_<reader>": "(by reader) that reader's VBQ of the case in the session",
    "n_readers": "(by reader) readers with a VBQ for the case in the session",
    "complete": "(by reader) 1 when every reader of the study has a VBQ here (what an ICC uses)",
}
"""One line per column, for the workbook's ``columns`` sheet and the docs."""

_NOT_NAME: Final = re.compile(r"[^A-Za-z0-9_]")


def _flag(value: Any) -> int:
    return 1 if value else 0


def _reading_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The long rows of one reading (one per ROI label) as one wide row."""
    first = rows[0]
    row = {key: first.get(key) for key in _BASE if key != "n_levels"}
    for key in _TAIL[1:]:
        row[key] = first.get(key)
    row["n_levels"] = 0
    for long in rows:
        label = long["level"]
        row[f"{label}_si"] = None if long["excluded"] else long["si"]
        row[f"{label}_seconds"] = long["level_seconds"]
        if label == CSF:
            row["csf_level"] = long["csf_level"]
            continue
        row[f"{label}_excluded"] = _flag(long["excluded"])
        row[f"{label}_reason"] = long["reason"]
        row["n_levels"] += int(not long["excluded"] and long["si"] is not None)
    return row


def readings_from_long(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Long measurement rows (consecutive per reading, as ``measurement_rows`` yields them)
    as one row per reading."""
    key = lambda r: (r["case"], r["reader"], r["session"])  # noqa: E731
    for _, group in groupby(rows, key=key):
        yield _reading_row(list(group))


def reading_rows(*, study: Study) -> list[dict[str, Any]]:
    """Every submitted reading of the study, one row each, columns :data:`READING_COLUMNS`."""
    return list(readings_from_long(measurement_rows(study=study)))


def reader_column(username: str, taken: set[str]) -> str:
    """``vbq_`` + the username as an SPSS variable name, unique among ``taken`` (added to it)."""
    base = ("vbq_" + _NOT_NAME.sub("_", username))[:60]
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name.lower())
    return name


def by_reader(readings: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows): one row per case × session, one VBQ column per reader (every reader
    with a submitted reading, in username order)."""
    taken: set[str] = {"case", "session", "n_readers", "complete", "consensus_vbq"}
    readers = sorted({r["reader"] for r in readings})
    column = {reader: reader_column(reader, taken) for reader in readers}
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for reading in readings:
        row = table.setdefault(
            (reading["case"], reading["session"]),
            {"case": reading["case"], "session": reading["session"]},
        )
        row[column[reading["reader"]]] = reading["vbq"]
        if reading.get("consensus_vbq") is not None:
            row["consensus_vbq"] = reading["consensus_vbq"]
    rows = []
    for key in sorted(table):
        row = table[key]
        n = sum(1 for reader in readers if row.get(column[reader]) is not None)
        rows.append(row | {"n_readers": n, "complete": _flag(n == len(readers))})
    columns = ["case", "session", *column.values(), "n_readers", "complete", "consensus_vbq"]
    return columns, rows
