"""Agreement analytics of a study: gather the readings, call the pure statistics, store them.

Analytics need a study's settings *and* its readings, so they live on the ``readers`` side
of the ``readers → studies`` dependency; the statistics themselves are pure
(``studies.stats.agreement``, ``studies.stats.diagnostics``).

Which readings count: submitted ones, with the result of their current ROI version. A reading
whose score was not computed (too few levels) contributes its level SIs but no VBQ; a reading
whose computation failed or is still pending is left out until it has a result. The diagnostic
analysis scores each case by the mean VBQ of the readers' session-1 readings (stated in the
report).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from readers.models import Consensus, Reading, StudyAnalysis, StudyAnalysisDetail, VbqResult
from studies.models import ReferenceStandard, Series, Study
from studies.stats.agreement import AgreementInputError, analyse
from studies.stats.diagnostics import evaluate
from studies.stats.strata import (
    FIELD_STRENGTH,
    MANUFACTURER,
    field_strength_label,
    manufacturer_label,
    stratify,
)
from studies.vocabulary import CSF, LEVELS
from vbqweb.jobs import job_heartbeat, job_request
from vbqweb.tasks import ANALYSE_STUDY, BUILD_STUDY_FILES

OSTEOPOROSIS_T = -2.5  # WHO definition; the binary reference derived from DXA


def _current_results(*, study: Study, detail: bool) -> list[dict[str, Any]]:
    """The current result of every submitted reading of ``study``, in one query.

    The same choice as ``Reading.current_result`` (the latest result of the reading's current
    ROI version), made by the database instead of loading every version of every reading's
    results: a study of 1,000 readings edited a few times each has several thousand results,
    each with its full measurement ``detail``. ``detail`` says whether to load that JSON (the
    rows need it; the staleness check does not).
    """
    fields = [
        "pk",
        "reading_id",
        "roi_version",
        "status",
        "vbq",
        "computed_at",
        "reading__case__label",
        "reading__reader__username",
        "reading__session",
    ]
    results = VbqResult.objects.filter(
        reading__case__study=study,
        reading__status=Reading.Status.SUBMITTED,
        roi_version=F("reading__roi_version"),
        # An adjudicator's new measurement is the consensus, not one more reader (issue 14).
        reading__adjudication_consensus__isnull=True,
    ).order_by("reading_id", "computed_at")
    latest: dict[int, dict[str, Any]] = {}
    for result in results.values(*fields, *(["detail"] if detail else [])):
        latest[result["reading_id"]] = result  # ordered: the last one is the latest
    current = [r for r in latest.values() if r["status"] != VbqResult.Status.ERROR]
    current.sort(
        key=lambda r: (
            r["reading__case__label"],
            r["reading__reader__username"],
            r["reading__session"],
        )
    )
    return current


def _fingerprint(*, study: Study, current: list[dict[str, Any]]) -> str:
    """Everything the analysis depends on: the readings' results, the thresholds and the
    reference standard; when any of them changes, the stored figures are out of date."""
    used = [(r["reading_id"], r["roi_version"], r["pk"], str(r["computed_at"])) for r in current]
    references = list(
        ReferenceStandard.objects.filter(case__study=study)
        .order_by("case_id")
        .values_list("case_id", "dxa_t_score", "qct_bmd", "fragility_fracture")
    )
    consensus = [
        (c.case_id, c.session, c.current_vbq())
        for c in Consensus.objects.filter(case__study=study)
        .select_related("measured_reading")
        .prefetch_related("measured_reading__results")
        .order_by("case_id", "session")
    ]
    inputs = [used, sorted(study_thresholds(study=study).items()), references]
    inputs.append(sorted(case_strata(study=study).items()))  # strata (issue 14) are inputs too
    if consensus:  # only then: the fingerprints of studies without adjudication stay as they were
        inputs.append(consensus)
    return hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()


def case_strata(*, study: Study) -> dict[str, dict[str, str]]:
    """Case label → its strata (issue 14): the field strength and the manufacturer of the case's
    reading series, as stored from its headers at ingest, and the attributes imported with the
    reference standard. Two queries for the whole study."""
    strata: dict[str, dict[str, str]] = {}
    series = Series.objects.filter(case__study=study, selected=True).order_by("pk")
    for label, tesla, manufacturer in series.values_list(
        "case__label", "field_strength_t", "manufacturer"
    ):
        strata[label] = {
            FIELD_STRENGTH: field_strength_label(tesla),
            MANUFACTURER: manufacturer_label(manufacturer),
        }
    references = ReferenceStandard.objects.filter(case__study=study).order_by("case_id")
    for label, attributes in references.values_list("case__label", "attributes"):
        for name, value in (attributes or {}).items():
            if value not in (None, ""):
                strata.setdefault(label, {})[str(name)] = str(value)
    return strata


def study_records(*, study: Study) -> tuple[list[dict[str, Any]], str]:
    """One row per submitted reading with a current result, and the fingerprint of the inputs.

    Each row carries its case's ``strata`` (:func:`case_strata`), which ``analyse`` ignores and
    :func:`studies.stats.strata.stratify` reads."""
    current = _current_results(study=study, detail=True)
    strata = case_strata(study=study)
    rows: list[dict[str, Any]] = []
    for result in current:
        detail = result["detail"] or {}
        levels = detail.get("levels", {})
        row: dict[str, Any] = {
            "case": result["reading__case__label"],
            "reader": result["reading__reader__username"],
            "session": result["reading__session"],
            "vbq": result["vbq"],
        }
        for label in LEVELS:
            row[label] = levels.get(label, {}).get("si")
        row[CSF] = (detail.get("csf") or {}).get("si")
        row["strata"] = strata.get(row["case"], {})
        rows.append(row)
    return rows, _fingerprint(study=study, current=current)


def study_fingerprint(*, study: Study) -> str:
    """The fingerprint of ``study_records`` without building the rows (no result details)."""
    return _fingerprint(study=study, current=_current_results(study=study, detail=False))


def study_thresholds(*, study: Study) -> dict[str, float]:
    return {t.name: t.value for t in study.thresholds.all()}


def study_summary(*, study: Study) -> dict[str, Any]:
    """The study's name and measurement settings, as the report and the JSON download state."""
    return {
        "name": study.name,
        "roi_statistic": study.roi_statistic,
        "level_aggregate": study.level_aggregate,
        "min_levels": study.min_levels,
        "sessions": study.sessions,
        "washout_days": study.washout_days,
        "thresholds": study_thresholds(study=study),
        # "precision so far" (issue 14 item 4): the planned ICC and the target CI width.
        "planned_icc": study.planned_icc,
        "target_ci_width": study.target_ci_width,
    }


def study_diagnostics(*, study: Study, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """VBQ against the reference standard, when the study has one; None otherwise."""
    references = {
        ref.case.label: ref for ref in ReferenceStandard.objects.filter(case__study=study)
    }
    if not references:
        return None
    by_case: dict[str, list[float]] = {}
    for row in records:
        if row["session"] == 1 and row["vbq"] is not None:
            by_case.setdefault(row["case"], []).append(row["vbq"])
    # An adjudicated case is scored by its session-1 consensus instead (issue 14).
    consensus = {
        c.case.label: vbq
        for c in Consensus.objects.filter(case__study=study, session=1)
        .select_related("case", "measured_reading")
        .prefetch_related("measured_reading__results")
        if (vbq := c.current_vbq()) is not None
    }
    for label, vbq in consensus.items():
        by_case[label] = [vbq]
    cases = sorted(references)
    scores = [sum(v) / len(v) if (v := by_case.get(c)) else None for c in cases]

    def column(get: Any) -> list[float | None]:
        return [get(references[c]) for c in cases]

    continuous = {
        "dxa_t_score": column(lambda r: r.dxa_t_score),
        "qct_bmd": column(lambda r: r.qct_bmd),
    }
    binary = {
        "osteoporosis_dxa": column(
            lambda r: None if r.dxa_t_score is None else float(r.dxa_t_score <= OSTEOPOROSIS_T)
        ),
        "fragility_fracture": column(
            lambda r: None if r.fragility_fracture is None else float(r.fragility_fracture)
        ),
    }
    continuous = {k: v for k, v in continuous.items() if any(x is not None for x in v)}
    binary = {k: v for k, v in binary.items() if any(x is not None for x in v)}
    result = evaluate(
        scores, continuous=continuous, binary=binary, thresholds=study_thresholds(study=study)
    )
    result["score"] = "mean VBQ of the readers' session-1 readings per case" + (
        f" (the adjudicated consensus for {len(consensus)} cases)" if consensus else ""
    )
    return result


def analysis_state(*, study: Study) -> StudyAnalysis:
    """The stored analysis (records, summary, diagnostics; not the per-pair detail)."""
    state, _ = StudyAnalysis.objects.get_or_create(study=study)
    return state


def _state_pk(study: Study) -> int:
    """The primary key of the study's analysis row, created if new, loading none of its JSON:
    the scoring transaction of every submitted reading asks for a recomputation, and must not
    parse the stored analysis to do so."""
    state, _ = StudyAnalysis.objects.only("pk").get_or_create(study=study)
    return state.pk


def analysis_is_stale(*, state: StudyAnalysis) -> bool:
    """True when the stored figures no longer describe the study's readings."""
    if state.computed_at is None:
        return True
    return study_fingerprint(study=state.study) != state.fingerprint


def analysis_document(*, state: StudyAnalysis) -> dict[str, Any]:
    """The whole agreement document of the stored analysis, per-pair detail included.

    Built from the stored ``records`` (and the summary's thresholds) the first time a manager
    asks for it after a recomputation, then kept under the analysis' fingerprint
    (``StudyAnalysisDetail``), so the page, the report and the downloads share one document and
    it is computed once per set of rows. Empty when no analysis was computed.
    """
    if not state.analysis:
        return {}
    stored = (
        StudyAnalysisDetail.objects.filter(state=state, fingerprint=state.fingerprint)
        .values_list("document", flat=True)
        .first()
    )
    if stored is not None:
        return dict(stored)
    document: dict[str, Any] = analyse(state.records, state.analysis.get("thresholds") or {})
    # A site feature beside the spec's document (manage.py agreement does not stratify).
    document["strata"] = stratify(state.records)
    StudyAnalysisDetail.objects.update_or_create(
        state=state, defaults={"fingerprint": state.fingerprint, "document": document}
    )
    return document


def analysis_request(*, study: Study) -> None:
    """Ask for a recomputation of the study's agreement, in the caller's transaction.

    The outbox's job for the study (one key per study) is the claim: a burst of submissions is
    one job, sent ``VBQ_ANALYSIS_DELAY`` seconds after the last of them (debounced); the job
    runs one computation at a time, and a request made while it runs makes it run once more
    when it finishes. ``claimed_at`` says on the page that a recomputation is on its way.
    """
    now = timezone.now()
    StudyAnalysis.objects.filter(pk=_state_pk(study)).update(
        requested_at=now, claimed_at=Coalesce("claimed_at", Value(now, DateTimeField()))
    )
    job_request(
        ANALYSE_STUDY,
        key=f"analysis:study:{study.pk}",
        delay=settings.VBQ_ANALYSIS_DELAY,
        study_pk=study.pk,
    )


def analysis_compute(*, study_pk: int) -> StudyAnalysis | None:
    """Recompute and store a study's analysis summary. Idempotent: the same readings, the same row.

    Computed outside any transaction (it reads, then computes for as long as it takes); only
    the final UPDATE is inside one, together with the job's heartbeat, so that a run that was
    presumed dead and replaced writes nothing. ``claimed_at`` is cleared only when no request
    arrived after this run began (a later one runs the job again). Stored compactly: the rows
    and the summary (``analyse(pairs=False)``: milliseconds and ~20 kB at 50 readers × 20
    cases, where the whole document takes seconds and ~13 MB); the per-pair detail is built on
    demand (:func:`analysis_document`). Rows that have not changed since the stored analysis
    (the same fingerprint) are not computed or written again.
    """
    study = Study.objects.filter(pk=study_pk).first()
    if study is None:
        return None
    pk = _state_pk(study)
    started = timezone.now()
    StudyAnalysis.objects.filter(pk=pk).update(
        claimed_at=Coalesce("claimed_at", Value(started, DateTimeField()))
    )
    records, fingerprint = study_records(study=study)
    stored = StudyAnalysis.objects.filter(pk=pk).values("fingerprint", "computed_at").get()
    fields: dict[str, Any] = {}
    if stored["computed_at"] is None or stored["fingerprint"] != fingerprint:
        error, result, diagnostics = "", {}, None
        try:
            if len({row["reader"] for row in records}) < 2:
                raise AgreementInputError(
                    "agreement needs submitted readings of at least two readers"
                )
            result = analyse(records, study_thresholds(study=study), pairs=False)
            diagnostics = study_diagnostics(study=study, records=records)
        except AgreementInputError as exc:
            error = str(exc)
        fields = {
            "computed_at": timezone.now(),
            "fingerprint": fingerprint,
            "records": records,
            "analysis": result,
            "diagnostics": diagnostics,
            "error": error,
        }
    with transaction.atomic():
        job_heartbeat()
        if fields:
            StudyAnalysis.objects.filter(pk=pk).update(**fields)
        StudyAnalysis.objects.filter(pk=pk).filter(
            Q(requested_at__isnull=True) | Q(requested_at__lte=started)
        ).update(claimed_at=None)
        # Then the worker builds the page's figures, the reports and the SR zip for this
        # analysis (``readers.analysis.artifacts``; a run finds built files and does nothing).
        files_request(study_pk=study.pk)
    return StudyAnalysis.objects.get(pk=pk)


def files_job_key(study_pk: int) -> str:
    """The outbox key of a study's file building (one job per study)."""
    return f"files:study:{study_pk}"


def files_request(*, study_pk: int) -> None:
    """Ask the worker to build the study's files for its stored analysis, in the caller's
    transaction (``readers.analysis.artifacts.files_build``)."""
    job_request(BUILD_STUDY_FILES, key=files_job_key(study_pk), study_pk=study_pk)
