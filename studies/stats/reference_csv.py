"""Parse a study's per-case reference standard from CSV (spec §1). Pure: no Django import.

The file is UTF-8 (a byte-order mark, as spreadsheets write, is accepted) with a header row::

    case,dxa_t_score,qct_bmd,fragility_fracture,site,scanner_protocol

``case`` is the case label readers see (e.g. ``Case 001``) and is required; the three value
columns are optional, in any order, and **any other column is a case attribute** (text: a site,
a protocol, an age band), by which the agreement page stratifies the analysis (issue 14); at
least one value or attribute column must be present. A column that is absent leaves that value
or attribute as it is; an empty cell in a present column means "unknown" and clears it.
Fractures are ``yes``/``no``/``true``/``false``/``1``/``0`` (any case) or empty. Attribute names
are the header's, lower-cased; ``field_strength`` and ``manufacturer`` are not accepted (they
come from the images' headers), nor more than :data:`MAX_ATTRIBUTES` attribute columns.

Every problem is reported with its line number, and a file with any problem yields nothing:
the caller stores all rows or none.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

CASE_COLUMN = "case"
VALUE_COLUMNS = ("dxa_t_score", "qct_bmd", "fragility_fracture")
T_SCORE_LIMIT = 10.0  # |T| beyond this is a typing error (e.g. -25 for -2.5), not a patient
MAX_REPORTED_ERRORS = 20
MAX_ATTRIBUTES = 10
MAX_ATTRIBUTE_NAME = 40
MAX_ATTRIBUTE_VALUE = 100
RESERVED_ATTRIBUTES = frozenset({"field_strength", "field strength", "manufacturer"})
"""Strata the site takes from the stored DICOM headers: a CSV column may not shadow them."""

_TRUE = {"yes", "true", "1"}
_FALSE = {"no", "false", "0"}


@dataclass(frozen=True)
class ReferenceRow:
    """One case's reference values; ``columns`` says which of them the file gave."""

    line: int
    columns: frozenset[str]
    dxa_t_score: float | None = None
    qct_bmd: float | None = None
    fragility_fracture: bool | None = None
    attributes: tuple[tuple[str, str | None], ...] = ()
    """(name, text or None = clear) for each attribute column of the file."""

    def updates(self, attributes: dict[str, str] | None = None) -> dict[str, Any]:
        """The values to store: only the columns the file has (absent ones stay as they are).

        ``attributes``: the case's stored attributes, into which the file's are merged (an
        attribute the file does not name stays; an empty cell removes it).
        """
        values: dict[str, Any] = {
            name: getattr(self, name) for name in VALUE_COLUMNS if name in self.columns
        }
        if self.attributes:
            merged = dict(attributes or {})
            for name, text in self.attributes:
                if text is None:
                    merged.pop(name, None)
                else:
                    merged[name] = text
            values["attributes"] = merged
        return values


class ReferenceCsvError(ValueError):
    """The file cannot be used; ``errors`` holds ``(line, message)`` pairs, first to last."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = list(errors)
        super().__init__(" ".join(self.messages()))

    def messages(self) -> list[str]:
        shown = [f"Line {line}: {message}" for line, message in self.errors[:MAX_REPORTED_ERRORS]]
        if len(self.errors) > MAX_REPORTED_ERRORS:
            shown.append(f"… and {len(self.errors) - MAX_REPORTED_ERRORS} more problems.")
        return shown


def parse_reference_csv(text: str, known_cases: set[str]) -> dict[str, ReferenceRow]:
    """Rows keyed by case label; raises :class:`ReferenceCsvError` if anything is wrong."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)  # blank lines before the header
    if header is None:
        raise ReferenceCsvError(
            [(1, f"the file is empty; expected a header such as {_expected_header()}.")]
        )
    columns = _parse_header(header, reader.line_num)

    rows: dict[str, ReferenceRow] = {}
    errors: list[tuple[int, str]] = []
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            errors.append(
                (line, f"expected {len(columns)} fields like the header, found {len(cells)}.")
            )
            continue
        record = {name: cell.strip() for name, cell in zip(columns, cells, strict=True)}
        label = record.pop(CASE_COLUMN)
        row_errors: list[str] = []
        if not label:
            row_errors.append("the case label is empty.")
        elif label in rows:
            row_errors.append(f"case {label!r} is already given on line {rows[label].line}.")
        elif label not in known_cases:
            row_errors.append(f"there is no case {label!r} in this study.")
        values: dict[str, float | bool | None] = {}
        attributes: list[tuple[str, str | None]] = []
        for name, cell in record.items():
            if name not in VALUE_COLUMNS:
                if len(cell) > MAX_ATTRIBUTE_VALUE:
                    row_errors.append(f"{name} is longer than {MAX_ATTRIBUTE_VALUE} characters.")
                attributes.append((name, " ".join(cell.split()) or None))
                continue
            try:
                values[name] = _parse_value(name, cell)
            except ValueError as exc:
                row_errors.append(str(exc))
        errors.extend((line, message) for message in row_errors)
        if not row_errors:
            rows[label] = _row(line, values, tuple(attributes))
    if errors:
        raise ReferenceCsvError(errors)
    return rows


def _row(
    line: int,
    values: dict[str, float | bool | None],
    attributes: tuple[tuple[str, str | None], ...] = (),
) -> ReferenceRow:
    t_score, bmd, fracture = (values.get(name) for name in VALUE_COLUMNS)
    return ReferenceRow(
        line=line,
        columns=frozenset(values),
        attributes=attributes,
        dxa_t_score=None if t_score is None else float(t_score),
        qct_bmd=None if bmd is None else float(bmd),
        fragility_fracture=None if fracture is None else bool(fracture),
    )


def _expected_header() -> str:
    return ",".join((CASE_COLUMN, *VALUE_COLUMNS))


def _parse_header(header: list[str], line: int) -> list[str]:
    columns = [cell.strip().lower() for cell in header]
    errors: list[tuple[int, str]] = []
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            errors.append((line, f"the column {name!r} appears twice."))
        elif name not in (CASE_COLUMN, *VALUE_COLUMNS):
            if ";" in name or "\t" in name:
                errors.append(
                    (line, f"unknown column {name!r} (the file must be comma-separated).")
                )
            elif not name:
                errors.append((line, "a column has no name."))
            elif name in RESERVED_ATTRIBUTES:
                errors.append(
                    (line, f"the column {name!r} is taken from the images' DICOM headers; "
                     "leave it out or rename it.")
                )  # fmt: skip
            elif len(name) > MAX_ATTRIBUTE_NAME:
                errors.append((line, f"the column name {name[:20]!r}… is too long."))
        seen.add(name)
    attributes = seen - {CASE_COLUMN, *VALUE_COLUMNS}
    if len(attributes) > MAX_ATTRIBUTES:
        errors.append((line, f"{len(attributes)} attribute columns; at most {MAX_ATTRIBUTES}."))
    if CASE_COLUMN not in seen:
        errors.append((line, f"there is no {CASE_COLUMN!r} column (the case label)."))
    if not seen - {CASE_COLUMN}:
        errors.append(
            (line, f"no value column; give at least one of {', '.join(VALUE_COLUMNS)} "
             "or a case attribute.")
        )  # fmt: skip
    if errors:
        raise ReferenceCsvError(errors)
    return columns


def _parse_value(name: str, cell: str) -> float | bool | None:
    if not cell:
        return None
    if name == "fragility_fracture":
        word = cell.lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"fragility_fracture {cell!r} is not yes/no/true/false/1/0 or empty.")
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{name} {cell!r} is not a number.") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {cell!r} is not a finite number.")
    if name == "dxa_t_score" and abs(value) > T_SCORE_LIMIT:
        raise ValueError(f"dxa_t_score {cell} is outside -{T_SCORE_LIMIT:g} to {T_SCORE_LIMIT:g}.")
    if name == "qct_bmd" and value < 0:
        raise ValueError(f"qct_bmd {cell} is negative.")
    return value
