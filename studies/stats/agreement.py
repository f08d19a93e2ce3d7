"""The agreement analysis of a multi-reader VBQ study (spec §1 and §3, issue 6).

:func:`analyse` takes the readings in long format (one record per case × reader × session),
checks and tabulates them, and builds the whole agreement document: inter-reader statistics per
session, intra-reader repeatability per reader, kappa per threshold, and per-level SI and
exclusion agreement, from the estimators of :mod:`studies.stats.estimators`. Why here, apart
from the estimators: this module owns the input format and the document's shape, which the site
(in Celery), ``manage.py agreement``, the report and the tests all share, so they compute the
same numbers. Every figure that depends on which readings were available carries the count
``n`` it was computed from, and anything a formula cannot estimate is ``null`` in the JSON.

Pure: numpy and scipy only, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray

from studies.stats.categorical import (
    category_counts,
    fleiss_small_sample_ci,
    gwet_ac1,
    percent_agreement,
)
from studies.stats.categorical import weighted_kappa as _weighted_kappa
from studies.stats.estimators import (
    _NAN,
    JSON,
    FloatArray,
    _pearson,
    _spearman,
    bland_altman,
    ccc,
    cohen_kappa,
    fleiss_kappa,
    icc,
)
from studies.stats.jsonable import json_ready
from studies.stats.reliability import measurement_error
from studies.vocabulary import LABELS, LEVELS


class AgreementInputError(ValueError):
    """Readings that cannot be analysed (duplicate reading, bad session, ...)."""


# --- the study analysis --------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """Readings as dense arrays: values[column][session, case, reader], NaN = empty cell."""

    cases: list[str]
    readers: list[str]
    sessions: list[int]
    columns: list[str]  # "vbq" first, then the SI columns present
    values: dict[str, FloatArray]
    present: NDArray[np.bool_]  # a reading (row) exists
    n_rows: int
    n_without_vbq: int


def _number(value: Any, what: str) -> float:
    if value is None:
        return _NAN
    if isinstance(value, str):
        if value.strip() == "":
            return _NAN
        try:
            value = float(value)
        except ValueError:
            raise AgreementInputError(f"{what}: {value!r} is not a number") from None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AgreementInputError(f"{what}: {value!r} is not a number") from None
    if math.isinf(number):
        raise AgreementInputError(f"{what}: {value!r} is not a finite number")
    return number


def _session(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise AgreementInputError(f"{what}: session {value!r} is not a positive integer")
    if isinstance(value, int | np.integer):
        session = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        session = int(value.strip())
    else:
        raise AgreementInputError(f"{what}: session {value!r} is not a positive integer")
    if session < 1:
        raise AgreementInputError(f"{what}: session {value!r} is not a positive integer")
    return session


def _table(records: Iterable[Mapping[str, Any] | Sequence[Any]]) -> _Table:
    rows: list[tuple[str, str, int, dict[str, float]]] = []
    columns_seen: set[str] = set()
    seen: dict[tuple[str, str, int], int] = {}
    for index, record in enumerate(records):
        what = f"record {index}"
        if isinstance(record, Mapping):
            missing = [key for key in ("case", "reader", "session", "vbq") if key not in record]
            if missing:
                raise AgreementInputError(f"{what}: missing {', '.join(missing)}")
            fields = {key: record[key] for key in ("case", "reader", "session", "vbq")}
            extra = {c: record[c] for c in LABELS if c in record}
        else:
            if not 4 <= len(record) <= 4 + len(LABELS):
                raise AgreementInputError(f"{what}: expected 4 to 9 fields, got {len(record)}")
            fields = dict(zip(("case", "reader", "session", "vbq"), record[:4], strict=True))
            extra = dict(zip(LABELS, record[4:], strict=False))
        case, reader = str(fields["case"]).strip(), str(fields["reader"]).strip()
        if not case or not reader:
            raise AgreementInputError(f"{what}: empty case or reader")
        session = _session(fields["session"], what)
        key = (case, reader, session)
        if key in seen:
            raise AgreementInputError(
                f"{what}: duplicate reading (case {case!r}, reader {reader!r}, session "
                f"{session}), first at record {seen[key]}"
            )
        seen[key] = index
        values = {"vbq": _number(fields["vbq"], f"{what}: vbq")}
        for column, value in extra.items():
            values[column] = _number(value, f"{what}: {column}")
            columns_seen.add(column)
        rows.append((case, reader, session, values))
    cases = sorted({row[0] for row in rows})
    readers = sorted({row[1] for row in rows})
    sessions = sorted({row[2] for row in rows})
    columns = ["vbq", *(c for c in LABELS if c in columns_seen)]
    case_index = {c: i for i, c in enumerate(cases)}
    reader_index = {r: i for i, r in enumerate(readers)}
    session_index = {s: i for i, s in enumerate(sessions)}
    shape = (len(sessions), len(cases), len(readers))
    values_arrays = {column: np.full(shape, np.nan) for column in columns}
    present = np.zeros(shape, dtype=bool)
    n_without_vbq = 0
    for case, reader, session, values in rows:
        where = (session_index[session], case_index[case], reader_index[reader])
        present[where] = True
        for column, value in values.items():
            values_arrays[column][where] = value
        if math.isnan(values["vbq"]):
            n_without_vbq += 1
    return _Table(
        cases, readers, sessions, columns, values_arrays, present, len(rows), n_without_vbq
    )


def _agreement_pair(names: list[str], a: FloatArray, b: FloatArray) -> JSON:
    return {
        "readers": names,
        "n": int(a.size),
        "bland_altman": bland_altman(a, b),
        "ccc": ccc(a, b),
        "pearson": _pearson(a, b),
        "spearman": _spearman(a, b),
    }


def _inter_measure(matrix: FloatArray, readers: list[str], pairs: bool = True) -> JSON:
    """ICC and pairwise agreement over the cases every reader has a value for."""
    complete = matrix[np.isfinite(matrix).all(axis=1)] if matrix.size else matrix
    n = int(complete.shape[0])
    block: JSON = {"n": n, "icc": icc(complete)}
    if pairs:
        block["pairs"] = [
            _agreement_pair([readers[i], readers[j]], complete[:, i], complete[:, j])
            for i, j in combinations(range(len(readers)), 2)
        ]
    return block


def _binary_pair(first: NDArray[np.bool_], second: NDArray[np.bool_]) -> JSON:
    both = int(np.sum(first & second))
    first_only = int(np.sum(first & ~second))
    second_only = int(np.sum(~first & second))
    n = int(first.size)
    return {
        "n": n,
        "both": both,
        "first_only": first_only,
        "second_only": second_only,
        "neither": n - both - first_only - second_only,
        "agreement": (n - first_only - second_only) / n if n else _NAN,
        "cohen": cohen_kappa(first, second),
    }


def _kappa_block(
    matrix: FloatArray, readers: list[str], thresholds: Mapping[str, float], with_pairs: bool
) -> JSON:
    """Per threshold: category = value ≥ threshold; Fleiss over readers, Cohen per pair."""
    out: JSON = {}
    for name, threshold in thresholds.items():
        category = matrix >= threshold
        pairs = []
        for i, j in combinations(range(len(readers)), 2) if with_pairs else ():
            pair = _binary_pair(category[:, i], category[:, j])
            pairs.append(
                {
                    "readers": [readers[i], readers[j]],
                    "cohen": pair["cohen"],
                    "agreement": pair["agreement"],
                    "n": pair["n"],
                }
            )
        n = int(matrix.shape[0])
        counts, _ = category_counts(category.astype(np.int64), 2)
        out[name] = {
            "threshold": float(threshold),
            "n": n,
            "fleiss": fleiss_kappa(category) if n else _NAN,
            # spec §6: the κ paradox needs the raw agreement and AC1 next to κ, and κ its CI
            # (one that holds at 20–30 cases: issue 14 item 6, bench/kappa_ci.py).
            "fleiss_ci95": fleiss_small_sample_ci(counts) if n else [_NAN, _NAN],
            "percent_agreement": percent_agreement(category),
            "gwet_ac1": gwet_ac1(counts)["value"] if n else _NAN,
            "positive": {r: int(category[:, i].sum()) for i, r in enumerate(readers)},
        } | ({"pairs": pairs} if with_pairs else {})
    return out


def _weighted_kappa_block(
    matrix: FloatArray, readers: list[str], thresholds: Mapping[str, float]
) -> JSON:
    """Spec §6: ordered category = number of thresholds ≤ VBQ (0 … T); weighted κ per pair."""
    levels = np.zeros(matrix.shape, dtype=np.int64)
    for threshold in thresholds.values():
        levels += matrix >= threshold
    q = len(thresholds) + 1
    return {
        "pairs": [
            {
                "readers": [readers[i], readers[j]],
                "n": int(matrix.shape[0]),
                "linear": _weighted_kappa(levels[:, i], levels[:, j], q, "linear"),
                "quadratic": _weighted_kappa(levels[:, i], levels[:, j], q, "quadratic"),
            }
            for i, j in combinations(range(len(readers)), 2)
        ]
    }


def _inter_block(table: _Table, s: int, thresholds: Mapping[str, float], pairs: bool) -> JSON:
    present = table.present[s]
    reader_idx = [j for j in range(len(table.readers)) if present[:, j].any()]
    readers = [table.readers[j] for j in reader_idx]
    read = present[:, reader_idx]
    vbq = table.values["vbq"][s][:, reader_idx]
    has_vbq = np.isfinite(vbq)
    block: JSON = {"session": table.sessions[s], "readers": readers}
    main = _inter_measure(vbq, readers, pairs)
    complete = has_vbq.all(axis=1)
    block.update(
        n=main["n"],
        cases_read=int(read.any(axis=1).sum()),
        cases_read_by_all=int(read.all(axis=1).sum()),
        vbq_by_reader={r: int(has_vbq[:, i].sum()) for i, r in enumerate(readers)},
        icc=main["icc"],
        **({"pairs": main["pairs"]} if pairs else {}),
        kappa=_kappa_block(vbq[complete], readers, thresholds, pairs),
        # spec §6: variance components, SEM and SDC from the ICCs' ANOVA.
        **measurement_error(vbq[complete]),
    )
    if pairs and len(thresholds) >= 2:
        block["weighted_kappa"] = _weighted_kappa_block(vbq[complete], readers, thresholds)
    level_columns = table.columns[1:]
    if level_columns:
        block["levels"] = {
            column: _inter_measure(table.values[column][s][:, reader_idx], readers, pairs)
            for column in level_columns
        }
    excludable = [c for c in level_columns if c in LEVELS]
    if excludable:
        all_read = read.all(axis=1)
        exclusions: JSON = {}
        for column in excludable:
            excluded = ~np.isfinite(table.values[column][s][:, reader_idx][all_read])
            n = int(excluded.shape[0])
            exclusions[column] = {
                "n": n,
                "excluded": {r: int(excluded[:, i].sum()) for i, r in enumerate(readers)},
                "fleiss": fleiss_kappa(excluded) if n else _NAN,
            }
            if pairs:
                exclusions[column]["pairs"] = [
                    {"readers": [readers[i], readers[j]]}
                    | _binary_pair(excluded[:, i], excluded[:, j])
                    for i, j in combinations(range(len(readers)), 2)
                ]
        block["exclusions"] = exclusions
    return block


def _intra_comparison(table: _Table, j: int, s: int, thresholds: Mapping[str, float]) -> JSON:
    """One reader's first session against session index ``s``: the same case read twice."""

    def paired(column: str) -> tuple[FloatArray, FloatArray]:
        first = table.values[column][0, :, j]
        later = table.values[column][s, :, j]
        keep = np.isfinite(first) & np.isfinite(later)
        return first[keep], later[keep]

    def measure(column: str) -> JSON:
        a, b = paired(column)
        return {
            "n": int(a.size),
            "icc": icc(np.column_stack([a, b])),
            "bland_altman": bland_altman(a, b),
            "ccc": ccc(a, b),
            "pearson": _pearson(a, b),
            "spearman": _spearman(a, b),
        }

    block: JSON = {"sessions": [table.sessions[0], table.sessions[s]]}
    block.update(measure("vbq"))
    a, b = paired("vbq")
    error = measurement_error(np.column_stack([a, b]))  # spec §6: the session is the rater
    block.update(sem=error["sem"], sdc=error["sdc"])
    block["kappa"] = {
        name: {"threshold": float(threshold)}
        | {
            key: value
            for key, value in _binary_pair(a >= threshold, b >= threshold).items()
            if key in ("n", "cohen", "agreement")
        }
        for name, threshold in thresholds.items()
    }
    level_columns = table.columns[1:]
    if level_columns:
        block["levels"] = {column: measure(column) for column in level_columns}
    excludable = [c for c in level_columns if c in LEVELS]
    if excludable:
        both_read = table.present[0, :, j] & table.present[s, :, j]
        block["exclusions"] = {
            column: _binary_pair(
                ~np.isfinite(table.values[column][0, both_read, j]),
                ~np.isfinite(table.values[column][s, both_read, j]),
            )
            for column in excludable
        }
    return block


def analyse(
    records: Iterable[Mapping[str, Any] | Sequence[Any]],
    thresholds: Mapping[str, float] | None = None,
    *,
    pairs: bool = True,
) -> JSON:
    """The whole agreement analysis of a reader study, as ``manage.py agreement`` prints it.

    ``records``: one per reading, a mapping with keys ``case``, ``reader``, ``session``,
    ``vbq`` and optionally ``L1``…``L4``, ``CSF`` (or a sequence in that order). ``None``, NaN
    or an empty string is an empty cell: for ``vbq`` the score was not computed (the reading
    is kept for the level and exclusion statistics but has no score); for a level it was
    excluded or not measured. ``thresholds``: ``{name: value}``; a reading is in the category
    when ``vbq ≥ value``.

    Output (spec §3, with these documented extensions; every NaN is ``null``)::

        {"cases", "readers", "sessions", "readings", "readings_without_vbq", "thresholds",
         "inter_reader": <session block for the first session (session 1)>,
         "inter_reader_by_session": [<session block>, ... one per session],
         "intra_reader": {reader: <comparison of session 1 with the first later session>
                                  + {"by_session": [<comparison>, ... one per later session]}}}

    A session block is ``{"session", "readers", "n", "cases_read", "cases_read_by_all",
    "vbq_by_reader", "icc", "variance_components", "sem", "sdc", "pairs", "kappa"}`` (spec
    §6; each threshold's ``kappa`` entry adds ``fleiss_ci95``, ``percent_agreement`` and
    ``gwet_ac1``), ``"weighted_kappa": {"pairs": [...]}`` with two or more thresholds (and
    pairs), plus ``"levels"`` (each SI column present:
    ``{"n", "icc", "pairs"}``) and ``"exclusions"`` (L1–L4: how often readers agree that a
    level is excluded) when the readings carry SIs. Inter-reader statistics use the cases that
    *every* reader of that session has a value for (spec §3), separately per column; ``n`` is
    that count. ``pairs`` run over the sorted readers; ``bland_altman`` is first − second.

    A comparison is ``{"sessions": [1, s], "n", "icc", "bland_altman", "ccc", "pearson",
    "spearman", "sem", "sdc", "kappa"}`` (+ ``levels``, ``exclusions``): the cases the reader
    scored in both sessions; ``bland_altman`` is session 1 − session s. ``intra_reader`` is
    empty when the study has one session; otherwise every reader has an entry and one
    comparison per later session of the study (``n`` = 0 and ``null`` statistics for a
    session they did not read).

    ``pairs=False`` leaves out every ``pairs`` list (per reader pair: Bland–Altman, CCC,
    correlations, Cohen's kappa, exclusion tables), keeping every other figure. Why: the pairs
    grow with readers² (1,225 at 50 readers, ~95 % of the document's time and bytes), so the
    site recomputes this summary after submissions and builds the pairs only when a manager
    asks for them (``readers.analysis.services``).
    """
    thresholds = dict(thresholds or {})
    for name, threshold in thresholds.items():
        if not math.isfinite(float(threshold)):
            raise AgreementInputError(f"threshold {name!r}: {threshold!r} is not a finite number")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        table = _table(records)
        if not table.readers:
            raise AgreementInputError("no readings")
        blocks = [_inter_block(table, s, thresholds, pairs) for s in range(len(table.sessions))]
        intra: JSON = {}
        if len(table.sessions) > 1:
            for j, reader in enumerate(table.readers):
                comparisons = [
                    _intra_comparison(table, j, s, thresholds)
                    for s in range(1, len(table.sessions))
                ]
                intra[reader] = comparisons[0] | {"by_session": comparisons}
    result: JSON = {
        "cases": len(table.cases),
        "readers": table.readers,
        "sessions": table.sessions,
        "readings": table.n_rows,
        "readings_without_vbq": table.n_without_vbq,
        "thresholds": {name: float(value) for name, value in thresholds.items()},
        "inter_reader": blocks[0],
        "inter_reader_by_session": blocks,
        "intra_reader": intra,
    }
    cleaned: JSON = json_ready(result)
    return cleaned
