"""CSV and ``.xlsx`` that no spreadsheet runs: every CSV the site writes goes through
:func:`to_csv` or :func:`csv_lines`, every workbook through :func:`to_xlsx`.

The cells carry text from outside the site (DICOM headers such as the Manufacturer, usernames,
notes, a failed sign-in's username in the audit log), and managers open downloads in Excel or
LibreOffice, which run a cell that starts like a formula (OWASP "CSV Injection"). It lives in
``vbqweb`` because ``readers`` (the analytics downloads) and ``vbqweb.audit`` (the audit log's
export) both write CSV, and the audit trail may not import ``readers``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import xlsxwriter

FORMULA_STARTS: Final = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
"""What makes a spreadsheet read a cell as a formula (OWASP "CSV Injection": ``=``, ``+``,
``-``, ``@``, tab and carriage return; also line feed and the full-width ``＝ ＋ － ＠``, which
some spreadsheets fold into the ASCII ones)."""

_PLAIN_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet runs: text that would start a formula gets a
    leading ``'`` (which spreadsheets show as "this is text"), as OWASP advises.

    Numbers are left alone, so ``-2.5`` stays a negative number and statistics stay
    computable; so is text that is nothing but a number (``"-2.5"``), which a spreadsheet reads
    as that number and never as a formula.
    """
    if value is None:
        return ""
    if not isinstance(value, str) or not value or value[0] not in FORMULA_STARTS:
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_lines(rows: Iterable[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    """The CSV a header and then a row at a time (for a streamed download), every cell
    :func:`spreadsheet_safe`.

    Lines end in CRLF (RFC 4180), so that a cell holding a carriage return or a line feed is
    quoted and stays one cell (Python's writer quotes only the characters of its terminator).
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    yield out.getvalue()
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
        yield out.getvalue()


def to_csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    """The rows as CSV (a header, then one line per row): :func:`csv_lines` joined."""
    return "".join(csv_lines(rows, columns))


Sheet = tuple[str, Sequence[str], Iterable[dict[str, Any]]]
"""A worksheet: its name (at most 31 characters), its columns, its rows."""


def to_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """The sheets as one ``.xlsx`` workbook (XlsxWriter): a header row, then the rows.

    Every cell is typed by what it holds, never by how its text looks: numbers as numbers
    (``True``/``False`` as 1/0; NaN and infinities, which a workbook cannot hold, as empty
    cells), text as text through :func:`spreadsheet_safe`, so a cell shows exactly what the
    CSV holds. XlsxWriter's own guessing (a string starting with ``=`` written as a formula,
    one like a URL as a link, one like a number as a number) is turned off as well.
    """
    out = io.BytesIO()
    options = {
        "in_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
    }
    with xlsxwriter.Workbook(out, options) as book:
        bold = book.add_format({"bold": True})
        for name, columns, rows in sheets:
            sheet = book.add_worksheet(name[:31])
            for col, title in enumerate(columns):
                sheet.write_string(0, col, str(spreadsheet_safe(title)), bold)
            sheet.freeze_panes(1, 0)
            for line, row in enumerate(rows, start=1):
                for col, key in enumerate(columns):
                    _write_cell(sheet, line, col, row.get(key))
    return out.getvalue()


def _write_cell(sheet: Any, row: int, col: int, value: Any) -> None:
    if isinstance(value, bool):
        sheet.write_number(row, col, int(value))
    elif isinstance(value, int | float):
        if math.isfinite(value):
            sheet.write_number(row, col, value)
    elif value is not None and value != "":
        sheet.write_string(row, col, str(spreadsheet_safe(str(value))))
