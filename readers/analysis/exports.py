"""Downloads for study managers: tidy raw measurements and the statistics, as rows.

Raw measurements are one row per reading × ROI label (L1–L4, CSF), with both the median and
the mean of every ROI so that either SI convention can be reproduced from the download, the
ROI geometry as drawn (spec ``vbq.rois/1`` JSON) and the acquisition facts that VBQ depends
on (field strength, TR, TE, vendor).

Every CSV the site writes goes through :func:`to_csv` (``vbqweb.spreadsheet``, shared with the
audit log's export), which keeps a spreadsheet from running a cell as a formula
(``spreadsheet_safe``): the cells carry text from outside the site (DICOM headers such as the
Manufacturer, usernames, notes), and a manager opens the download in Excel or LibreOffice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from readers.models import Consensus, Reading
from studies.models import Instance, Study
from studies.vocabulary import CSF, DEFAULT_CSF_LEVEL, LABELS
from vbqweb.spreadsheet import to_csv

__all__ = ["MEASUREMENT_COLUMNS", "STATISTICS_COLUMNS", "to_csv"]

MEASUREMENT_COLUMNS = [
    "reader", "case", "session", "status", "submitted_at", "vbq", "score_status",
    "score_message", "level", "excluded", "reason", "csf_level", "n_pixels", "median", "mean",
    "sd", "area_mm2", "si", "roi_statistic", "level_aggregate", "slices", "rois",
    "field_strength_t", "repetition_time_ms", "echo_time_ms", "manufacturer", "model",
    "consensus_vbq", "consensus_source",
    "active_seconds", "level_seconds", "quality_confirmed",
]  # fmt: skip
"""``consensus_*``: the adjudicated VBQ of the case in that session and where it came from
(issue 14; empty when the case was not adjudicated): the same on every row of the case.
``active_seconds``: the reader's active time on the case (visible tab, input within the last
minute; issue 13), on every row of the reading; ``level_seconds``: the part of it spent on the
row's level; ``quality_confirmed``: the quality warnings the reader confirmed at submit (codes
of ``readers.measurement.quality``, space-separated)."""


def consensus_columns(*, study: Study) -> dict[tuple[int, int], dict[str, Any]]:
    """(case pk, session) → the consensus columns, for every adjudicated case of the study."""
    consensuses = (
        Consensus.objects.filter(case__study=study)
        .select_related("measured_reading")
        .prefetch_related("measured_reading__results")
    )
    return {
        (c.case_id, c.session): {"consensus_vbq": c.current_vbq(), "consensus_source": c.provenance}
        for c in consensuses
    }


def measurement_rows(*, study: Study) -> Iterator[dict[str, Any]]:
    """Every submitted reading of the study, one row per ROI label."""
    readings = (
        Reading.objects.filter(case__study=study, status=Reading.Status.SUBMITTED)
        .filter(adjudication_consensus__isnull=True)  # an adjudicator's measurement: consensus
        .select_related("case", "reader")
        .prefetch_related("results", "case__series")
        .order_by("case__label", "reader__username", "session")
    )
    numbers = dict(
        Instance.objects.filter(series__case__study=study).values_list(
            "sop_instance_uid", "instance_number"
        )
    )
    consensus = consensus_columns(study=study)
    no_consensus = {"consensus_vbq": None, "consensus_source": ""}
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
            "active_seconds": reading.active_seconds,
            "quality_confirmed": " ".join(reading.quality_confirmed or []),
        } | consensus.get((reading.case_id, reading.session), no_consensus)
        level_seconds = reading.level_seconds or {}
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
                "level_seconds": level_seconds.get(label, 0.0),
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
        yield from _measurement_error_rows("inter-reader", session, "all", block, block.get("n"))
        for name, kappa in (block.get("kappa") or {}).items():
            yield _row(
                "inter-reader",
                session,
                "all",
                f"Fleiss kappa ({name})",
                kappa.get("fleiss"),
                kappa.get("fleiss_ci95"),
                kappa.get("n"),
            )
            for key, label in (
                ("percent_agreement", "share of cases all readers agree on"),
                ("gwet_ac1", "Gwet AC1"),
            ):
                yield _row(
                    "inter-reader",
                    session,
                    "all",
                    f"{label} ({name})",
                    kappa.get(key),
                    None,
                    kappa.get("n"),
                )
        for pair in (block.get("weighted_kappa") or {}).get("pairs") or []:
            who = " vs ".join(pair["readers"])
            for form in ("linear", "quadratic"):
                yield _row(
                    "inter-reader",
                    session,
                    who,
                    f"weighted kappa, {form} (ordered categories)",
                    pair.get(form),
                    None,
                    pair.get("n"),
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
            yield from _measurement_error_rows(
                "intra-reader", sessions, reader, item, item.get("n")
            )
    yield from strata_rows(analysis.get("strata") or {})
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


MEASUREMENT_ERROR_NAMES = {
    ("variance_components", "case"): "variance between cases (VBQ^2)",
    ("variance_components", "reader"): "variance between readers (VBQ^2)",
    ("variance_components", "residual"): "residual variance (VBQ^2)",
    ("sem", "agreement"): "SEM, agreement (VBQ; standard error of measurement)",
    ("sem", "consistency"): "SEM, consistency (VBQ; readers' systematic differences left out)",
    ("sdc", "agreement"): (
        "SDC, agreement (VBQ; a change in one patient's VBQ smaller than this may be "
        "measurement error, 95 %)"
    ),
    ("sdc", "consistency"): "SDC, consistency (VBQ; readers' systematic differences left out)",
}
"""Spec §6's measurement-error figures, named so that the CSV explains itself (de Vet 2006)."""

EXPLANATIONS = {
    "variance_components": "Two-way ANOVA variance components: case = (MSR - MSE)/k, "
    "reader = (MSC - MSE)/n, residual = MSE (negative estimates reported as 0).",
    "sem": "Standard error of measurement in VBQ units: agreement = sqrt(reader + residual), "
    "consistency = sqrt(residual) (de Vet et al., J Clin Epidemiol 2006).",
    "sdc": "Smallest detectable change = 1.96 * sqrt(2) * SEM: a change in one patient's VBQ "
    "smaller than this may be measurement error (95 %).",
    "percent_agreement": "Share of cases on which all readers put the case on the same side "
    "of the threshold.",
    "gwet_ac1": "Gwet's AC1 (2008), chance-corrected agreement that stays meaningful when one "
    "category is rare.",
    "fleiss_ci95": "95 % CI of Fleiss' kappa: jackknife over cases with one evenly split "
    "pseudo-case (Fleiss & Davies 1982), t distribution; keeps 95 % coverage from 20 cases on.",
    "strata": "The agreement per group of cases (session 1): field strength and manufacturer "
    "from the images' headers, and each case attribute imported with the reference standard. "
    "icc: how consistently different readers give a case the same VBQ within the group "
    "(ICC2 absolute agreement, ICC3 consistency; 95 % CI); bland_altman: two readers' VBQ of "
    "the same case differ by no more than loa in 95 % of cases (every reader pair pooled, "
    "first - second); distribution: median, quartiles and range of the cases' mean VBQ. "
    "A group with fewer than min_cases cases read by every reader has a note instead of icc "
    "and bland_altman.",
    "weighted_kappa": "Cohen's weighted kappa (linear, quadratic) per reader pair over the "
    "ordered categories 0..T (number of thresholds reached).",
}
"""One line per spec §6 key for the JSON download, so the file explains its new figures."""


def strata_rows(strata: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Per stratum (issue 14): ICC2/ICC3, bias and limits, the VBQ distribution, each with n;
    a stratum with too few complete cases says so in place of its ICC and limits."""
    session = strata.get("session")
    for dimension in strata.get("dimensions") or []:
        for stratum in dimension.get("strata") or []:
            section = f"stratum: {dimension['name']} = {stratum['value']}"
            n = stratum.get("n")
            if stratum.get("too_few"):
                yield _row(section, session, "all", f"ICC2 (VBQ): {stratum['note']}", None, None, n)
            else:
                for form, icc in (stratum.get("icc") or {}).items():
                    yield _stat(section, session, "all", f"{form} (VBQ)", icc, n)
                ba = stratum.get("bland_altman") or {}
                loa = ba.get("loa") or [None, None]
                for name, value in (
                    ("bias (VBQ; reader pairs pooled)", ba.get("bias")),
                    ("lower LoA (VBQ)", loa[0]),
                    ("upper LoA (VBQ)", loa[1]),
                ):
                    yield _row(section, session, "all", name, value, None, n)
            dist = stratum.get("distribution") or {}
            for key, name in (
                ("median", "median VBQ (case means)"),
                ("q1", "VBQ lower quartile"),
                ("q3", "VBQ upper quartile"),
                ("min", "VBQ minimum"),
                ("max", "VBQ maximum"),
            ):
                yield _row(section, session, "all", name, dist.get(key), None, dist.get("n"))


def _measurement_error_rows(
    section: str, session: Any, readers: str, block: dict[str, Any], n: Any
) -> Iterator[dict[str, Any]]:
    for (key, part), name in MEASUREMENT_ERROR_NAMES.items():
        if key in block:
            yield _row(section, session, readers, name, (block[key] or {}).get(part), None, n)


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
