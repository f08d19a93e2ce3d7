"""``manage.py agreement MEASUREMENTS.csv [--threshold NAME=VALUE ...]`` (spec §3).

Reads one reading per CSV row, runs :func:`studies.stats.agreement.analyse` and prints its JSON.

The CSV (UTF-8, a byte-order mark is tolerated) has the header ``case,reader,session,vbq``,
optionally followed by any of ``L1,L2,L3,L4,CSF``; header names are matched without regard to
case or surrounding spaces, in any order, and an unknown or repeated column is an error (a typo
such as ``L5`` must not be silently ignored). Cells:

- ``case``, ``reader``: non-empty text (surrounding spaces stripped);
- ``session``: a positive integer written in digits (``1`` = first reading);
- ``vbq``: a finite number, or **empty = the score was not computed** (too few levels): that
  reading has no score, it is left out of the VBQ statistics and counted in
  ``readings_without_vbq``, while its level SIs still count;
- ``L1``…``L4``, ``CSF``: a finite number, or empty = excluded / not measured.

Blank lines (and rows of empty cells, as spreadsheets export them) are skipped. Any problem —
unreadable or empty file, missing column, wrong number of fields, a non-numeric value, a session
that is not a positive integer, a duplicate (case, reader, session), only one reader, a bad
``--threshold`` — is one line on stderr naming the file, the line number where there is one and
the problem, a non-zero exit status and nothing on stdout.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.stats.agreement import AgreementInputError, analyse
from studies.vocabulary import LABELS
from vbqweb.commands import OneLineErrorsMixin, one_line

REQUIRED = ("case", "reader", "session", "vbq")
KNOWN = {name.lower(): name for name in (*REQUIRED, *LABELS)}


def parse_thresholds(texts: list[str] | None, path: str) -> dict[str, float]:
    """``["screening=2.95", ...]`` → ``{"screening": 2.95}``; a bad item names the file too."""
    thresholds: dict[str, float] = {}
    for text in texts or []:
        name, sep, value_text = str(text).partition("=")
        name = name.strip()
        problem = None
        if not sep or not name:
            problem = "expected NAME=VALUE"
        else:
            try:
                value = float(value_text)
            except ValueError:
                problem = f"{value_text.strip()!r} is not a number"
            else:
                if not math.isfinite(value):
                    problem = f"{value_text.strip()!r} is not a finite number"
                elif name in thresholds:
                    problem = f"threshold {name!r} given twice"
                else:
                    thresholds[name] = value
        if problem:
            raise CommandError(one_line(f"{path}: bad --threshold {text!r}: {problem}"))
    return thresholds


def _number(text: str, column: str, where: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise CommandError(one_line(f"{where}: {column} {text!r} is not a number")) from None
    if not math.isfinite(value):
        raise CommandError(one_line(f"{where}: {column} {text!r} is not a finite number"))
    return value


def read_measurements(path: str) -> list[dict[str, Any]]:
    """The CSV's readings as ``analyse`` records, or ``CommandError`` with one line."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return _parse(path, csv.reader(handle))
    except UnicodeDecodeError as error:
        raise CommandError(
            one_line(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})")
        ) from None
    except csv.Error as error:
        raise CommandError(one_line(f"{path}: malformed CSV: {error}")) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise CommandError(one_line(f"{path}: cannot read the file: {reason}")) from None


class _Rows(Protocol):
    """What the parser needs of ``csv.reader``: rows, and the line the last one ended on."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def _parse(path: str, rows: _Rows) -> list[dict[str, Any]]:
    header = next(rows, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(rows, None)  # leading blank lines
    if header is None:
        raise CommandError(f"{path}: empty file: expected the header {','.join(REQUIRED)}")
    header_line = rows.line_num
    columns: list[str] = []
    for cell in header:
        name = KNOWN.get(cell.strip().lower())
        if name is None:
            raise CommandError(
                one_line(
                    f"{path}: line {header_line}: unknown column {cell.strip()!r} (expected "
                    f"{','.join(REQUIRED)} optionally followed by {','.join(LABELS)})"
                )
            )
        if name in columns:
            raise CommandError(f"{path}: line {header_line}: column {name!r} appears twice")
        columns.append(name)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise CommandError(
            one_line(
                f"{path}: line {header_line}: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} (the header must start {','.join(REQUIRED)})"
            )
        )
    records: list[dict[str, Any]] = []
    first_line: dict[tuple[str, str, int], int] = {}
    for cells in rows:
        line = rows.line_num
        where = f"{path}: line {line}"
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            raise CommandError(
                f"{where}: expected {len(columns)} fields like the header, got {len(cells)}"
            )
        row = dict(zip(columns, cells, strict=True))
        case, reader = row["case"].strip(), row["reader"].strip()
        if not case:
            raise CommandError(f"{where}: empty case")
        if not reader:
            raise CommandError(f"{where}: empty reader")
        session_text = row["session"].strip()
        if not (session_text.isascii() and session_text.isdigit()) or int(session_text) < 1:
            raise CommandError(
                one_line(f"{where}: session {session_text!r} is not a positive integer")
            )
        session = int(session_text)
        key = (case, reader, session)
        if key in first_line:
            raise CommandError(
                one_line(
                    f"{where}: duplicate reading of case {case!r} by reader {reader!r} in "
                    f"session {session} (first on line {first_line[key]})"
                )
            )
        first_line[key] = line
        record: dict[str, Any] = {
            "case": case,
            "reader": reader,
            "session": session,
            "vbq": _number(row["vbq"], "vbq", where),
        }
        for column in LABELS:
            if column in row:
                record[column] = _number(row[column], column, where)
        records.append(record)
    if not records:
        raise CommandError(f"{path}: no readings: the file has a header but no data rows")
    readers = sorted({record["reader"] for record in records})
    if len(readers) < 2:
        raise CommandError(
            one_line(
                f"{path}: only one reader ({readers[0]!r}): agreement needs at least two readers"
            )
        )
    return records


class Command(OneLineErrorsMixin, BaseCommand):
    help = (
        "Inter- and intra-reader agreement of VBQ readings in a CSV "
        "(case,reader,session,vbq[,L1,L2,L3,L4,CSF]) -> JSON."
    )

    # A pure computation: the site's system checks (URLs, database) are not needed to run it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("measurements", metavar="MEASUREMENTS.csv")
        parser.add_argument(
            "--threshold",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a named VBQ threshold (repeatable); category = vbq >= VALUE",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = str(options["measurements"])
        texts = options.get("threshold") or []
        if isinstance(texts, str):  # call_command(threshold="a=1")
            texts = [texts]
        thresholds = parse_thresholds(list(texts), path)
        records = read_measurements(path)
        # Library warnings on stderr would break the "one line on stderr" contract.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                result = analyse(records, thresholds)
            except AgreementInputError as error:  # read_measurements checks first; belt and braces
                raise CommandError(one_line(f"{path}: {error}")) from None
        self.stdout.write(json.dumps(result, allow_nan=False, indent=2))
