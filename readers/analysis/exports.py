"""Downloads for study managers: tidy raw measurements and the statistics, as rows.

Raw measurements are one row per reading × ROI label (L1–L4, CSF), with both the median and
the mean of every ROI so that either SI convention can be reproduced from the download, the
ROI geometry as drawn (spec ``vbq.rois/1`` JSON) and the acquisition facts that VBQ depends
on (field strength, TR, TE, vendor).

Every CSV the site writes goes through :func:`to_csv`, which keeps a spreadsheet from running
a cell as a formula (:func:`spreadsheet_safe`): the cells carry text from outside the site
(DICOM headers such as the Manufacturer, usernames, notes), and a manager opens the download
in Excel or LibreOffice.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

from readers.models import Reading
from studies.models import Instance, Study
from studies.vocabulary import CSF, DEFAULT_CSF_LEVEL, LABELS

MEASUREMENT_COLUMNS = [
    "reader", "case", "session", "status", "submitted_at", "vbq", "score_status",
    "score_message", "level", "excluded", "reason", "csf_level", "n_pixels", "median", "mean",
    "sd", "area_mm2", "si", "roi_statistic", "level_aggregate", "slices", "rois",
    "field_strength_t", "repetition_time_ms", "echo_time_ms", "manufacturer", "model",
]  # fmt: skip


def measurement_rows(*, study: Study) -> Iterator[dict[str, Any]]:
    """Every submitted reading of the study, one row per ROI label."""
    readings = (
        Reading.objects.filter(case__study=study, status=Reading.Status.SUBMITTED)
        .select_related("case", "reader")
        .prefetch_related("results", "case__series")
        .order_by("case__label", "reader__username", "session")
    )
    numbers = dict(
        Instance.objects.filter(series__case__study=study).values_list(
            "sop_instance_uid", "instance_number"
        )
    )
    for reading in readings:
        result = reading.current_result()
        detail = (result.detail if result else None) or {}
        series = next((s for s in reading.case.series.all() if s.selected), None)
        rois = (reading.rois or {}).get("rois", [])
        base = {
            "reader": reading.reader.get_username(),
            "case": reading.case.label,
            "session": reading.session,
            "status": reading.status,
            "submitted_at": reading.submitted_at.isoformat() if reading.submitted_at else "",
            "vbq": result.vbq if result else None,
            "score_status": result.status if result else "pending",
            "score_message": result.message if result else "",
            "roi_statistic": (detail.get("method") or {}).get("roi_statistic"),
            "level_aggregate": (detail.get("method") or {}).get("level_aggregate"),
            "field_strength_t": series.field_strength_t if series else None,
            "repetition_time_ms": series.repetition_time_ms if series else None,
            "echo_time_ms": series.echo_time_ms if series else None,
            "manufacturer": series.manufacturer if series else "",
            "model": series.model_name if series else "",
        }
        for label in LABELS:
            drawn = [r for r in rois if r.get("label") == label and not r.get("excluded")]
            excluded = next(
                (r for r in rois if r.get("label") == label and r.get("excluded")), None
            )
            stats = detail.get("csf") if label == CSF else (detail.get("levels") or {}).get(label)
            stats = stats or {}
            yield base | {
                "level": label,
                "excluded": bool(excluded),
                "reason": excluded.get("reason", "") if excluded else "",
                "csf_level": next((r.get("level", DEFAULT_CSF_LEVEL) for r in drawn), "")
                if label == CSF
                else "",
                "n_pixels": stats.get("n_pixels"),
                "median": stats.get("median"),
                "mean": stats.get("mean"),
                "sd": stats.get("sd"),
                "area_mm2": stats.get("area_mm2"),
                "si": stats.get("si"),
                "slices": " ".join(str(numbers.get(r.get("sop_instance_uid"), "?")) for r in drawn),
                "rois": json.dumps(drawn, separators=(",", ":")) if drawn else "",
            }


def statistics_rows(
    analysis: dict[str, Any], diagnostics: dict[str, Any] | None
) -> Iterator[dict[str, Any]]:
    """The headline statistics flattened: one row per figure, with its CI and its n."""
    blocks = analysis.get("inter_reader_by_session") or []
    for block in blocks:
        session = block.get("session")
        for form, icc in (block.get("icc") or {}).items():
            yield _stat("inter-reader", session, "all", f"{form} (VBQ)", icc, block.get("n"))
        for pair in block.get("pairs") or []:
            who = " vs ".join(pair["readers"])
            ba = pair.get("bland_altman") or {}
            yield _row(
                "inter-reader",
                session,
                who,
                "bias (VBQ)",
                ba.get("bias"),
                ba.get("bias_ci95"),
                pair.get("n"),
            )
            loa = ba.get("loa") or [None, None]
            yield _row("inter-reader", session, who, "lower LoA (VBQ)", loa[0], None, pair.get("n"))
            yield _row("inter-reader", session, who, "upper LoA (VBQ)", loa[1], None, pair.get("n"))
            yield _stat("inter-reader", session, who, "CCC (VBQ)", pair.get("ccc"), pair.get("n"))
        for name, kappa in (block.get("kappa") or {}).items():
            yield _row(
                "inter-reader",
                session,
                "all",
                f"Fleiss kappa ({name})",
                kappa.get("fleiss"),
                None,
                kappa.get("n"),
            )
        for level, stats in (block.get("levels") or {}).items():
            icc = (stats.get("icc") or {}).get("ICC2")
            yield _stat("inter-reader", session, "all", f"ICC2 ({level} SI)", icc, stats.get("n"))
    for reader, comparison in (analysis.get("intra_reader") or {}).items():
        for item in comparison.get("by_session") or []:
            sessions = "-".join(str(s) for s in item.get("sessions", []))
            for form in ("ICC3", "ICC2"):
                icc = (item.get("icc") or {}).get(form)
                yield _stat("intra-reader", sessions, reader, f"{form} (VBQ)", icc, item.get("n"))
            ba = item.get("bland_altman") or {}
            yield _row(
                "intra-reader",
                sessions,
                reader,
                "bias (VBQ)",
                ba.get("bias"),
                ba.get("bias_ci95"),
                item.get("n"),
            )
    for name, stats in ((diagnostics or {}).get("binary") or {}).items():
        auc = stats.get("auc") or {}
        yield _row(
            "diagnostic",
            1,
            "mean of readers",
            f"AUC ({name})",
            auc.get("auc", auc.get("value")),
            auc.get("ci95"),
            stats.get("n"),
        )
    for name, stats in ((diagnostics or {}).get("continuous") or {}).items():
        yield _stat(
            "diagnostic",
            1,
            "mean of readers",
            f"Pearson r ({name})",
            stats.get("pearson"),
            stats.get("n"),
        )
        yield _stat(
            "diagnostic",
            1,
            "mean of readers",
            f"Spearman rho ({name})",
            stats.get("spearman"),
            stats.get("n"),
        )


STATISTICS_COLUMNS = [
    "section",
    "session",
    "readers",
    "statistic",
    "value",
    "ci95_low",
    "ci95_high",
    "n",
]


def _stat(section: str, session: Any, readers: str, name: str, stat: Any, n: Any) -> dict[str, Any]:
    stat = stat or {}
    return _row(section, session, readers, name, stat.get("value"), stat.get("ci95"), n)


def _row(
    section: str, session: Any, readers: str, name: str, value: Any, ci: Any, n: Any
) -> dict[str, Any]:
    low, high = ci if isinstance(ci, list | tuple) and len(ci) == 2 else (None, None)
    return {"section": section, "session": session, "readers": readers, "statistic": name,
            "value": value, "ci95_low": low, "ci95_high": high, "n": n}  # fmt: skip


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


def to_csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    """The rows as CSV (a header, then one line per row), every cell :func:`spreadsheet_safe`.

    Lines end in CRLF (RFC 4180), so that a cell holding a carriage return or a line feed is
    quoted and stays one cell (Python's writer quotes only the characters of its terminator).
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
    return out.getvalue()
