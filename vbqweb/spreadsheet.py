"""CSV that no spreadsheet runs: every CSV the site writes goes through :func:`to_csv` or
:func:`csv_lines`.

The cells carry text from outside the site (DICOM headers such as the Manufacturer, usernames,
notes, a failed sign-in's username in the audit log), and managers open downloads in Excel or
LibreOffice, which run a cell that starts like a formula (OWASP "CSV Injection"). It lives in
``vbqweb`` because ``readers`` (the analytics downloads) and ``vbqweb.audit`` (the audit log's
export) both write CSV, and the audit trail may not import ``readers``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

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
