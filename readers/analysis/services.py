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
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from readers.models import Reading, StudyAnalysis, VbqResult
from studies.models import ReferenceStandard, Study
from studies.stats.agreement import AgreementInputError, analyse
from studies.stats.diagnostics import evaluate
from studies.vocabulary import CSF, LEVELS
from vbqweb.jobs import job_heartbeat, job_request
from vbqweb.tasks import ANALYSE_STUDY

OSTEOPOROSIS_T = -2.5  # WHO definition; the binary reference derived from DXA


def study_records(*, study: Study) -> tuple[list[dict[str, Any]], str]:
    """One row per submitted reading with a current result, and the fingerprint of the inputs."""
    readings = (
        Reading.objects.filter(case__study=study, status=Reading.Status.SUBMITTED)
        .select_related("case", "reader")
        .prefetch_related("results")
        .order_by("case__label", "reader__username", "session")
    )
    rows: list[dict[str, Any]] = []
    used: list[tuple[int, int, int]] = []
    for reading in readings:
        result = reading.current_result()
        if result is None or result.status == VbqResult.Status.ERROR:
            continue
        detail = result.detail or {}
        levels = detail.get("levels", {})
        row: dict[str, Any] = {
            "case": reading.case.label,
            "reader": reading.reader.get_username(),
            "session": reading.session,
            "vbq": result.vbq,
        }
        for label in LEVELS:
            row[label] = levels.get(label, {}).get("si")
        row[CSF] = (detail.get("csf") or {}).get("si")
        rows.append(row)
        used.append((reading.pk, reading.roi_version, result.pk, str(result.computed_at)))
    # Everything the analysis depends on: the readings' results, the thresholds and the
    # reference standard; when any of them changes, the stored figures are out of date.
    references = list(
        ReferenceStandard.objects.filter(case__study=study)
        .order_by("case_id")
        .values_list("case_id", "dxa_t_score", "qct_bmd", "fragility_fracture")
    )
    inputs = [used, sorted(study_thresholds(study=study).items()), references]
    fingerprint = hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()
    return rows, fingerprint


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
    result["score"] = "mean VBQ of the readers' session-1 readings per case"
    return result


def analysis_state(*, study: Study) -> StudyAnalysis:
    state, _ = StudyAnalysis.objects.get_or_create(study=study)
    return state


def analysis_is_stale(*, state: StudyAnalysis) -> bool:
    """True when the stored figures no longer describe the study's readings."""
    if state.computed_at is None:
        return True
    _, fingerprint = study_records(study=state.study)
    return fingerprint != state.fingerprint


def analysis_request(*, study: Study) -> None:
    """Ask for a recomputation of the study's agreement, in the caller's transaction.

    The outbox's job for the study (one key per study) is the claim: a burst of submissions is
    one job, sent ``VBQ_ANALYSIS_DELAY`` seconds after the last of them (debounced); the job
    runs one computation at a time, and a request made while it runs makes it run once more
    when it finishes. ``claimed_at`` says on the page that a recomputation is on its way.
    """
    state = analysis_state(study=study)
    now = timezone.now()
    StudyAnalysis.objects.filter(pk=state.pk).update(
        requested_at=now, claimed_at=Coalesce("claimed_at", Value(now, DateTimeField()))
    )
    job_request(
        ANALYSE_STUDY,
        key=f"analysis:study:{study.pk}",
        delay=settings.VBQ_ANALYSIS_DELAY,
        study_pk=study.pk,
    )


def analysis_compute(*, study_pk: int) -> StudyAnalysis | None:
    """Recompute and store a study's analysis. Idempotent: the same readings, the same row.

    Computed outside any transaction (it reads, then computes for as long as it takes); only
    the final UPDATE is inside one, together with the job's heartbeat, so that a run that was
    presumed dead and replaced writes nothing. ``claimed_at`` is cleared only when no request
    arrived after this run began (a later one runs the job again).
    """
    study = Study.objects.filter(pk=study_pk).first()
    if study is None:
        return None
    state = analysis_state(study=study)
    started = timezone.now()
    StudyAnalysis.objects.filter(pk=state.pk).update(
        claimed_at=Coalesce("claimed_at", Value(started, DateTimeField()))
    )
    records, fingerprint = study_records(study=study)
    error, result, diagnostics = "", {}, None
    try:
        if len({row["reader"] for row in records}) < 2:
            raise AgreementInputError("agreement needs submitted readings of at least two readers")
        result = analyse(records, study_thresholds(study=study))
        diagnostics = study_diagnostics(study=study, records=records)
    except AgreementInputError as exc:
        error = str(exc)
    with transaction.atomic():
        job_heartbeat()
        StudyAnalysis.objects.filter(pk=state.pk).update(
            computed_at=timezone.now(),
            fingerprint=fingerprint,
            records=records,
            analysis=result,
            diagnostics=diagnostics,
            error=error,
        )
        StudyAnalysis.objects.filter(pk=state.pk).filter(
            Q(requested_at__isnull=True) | Q(requested_at__lte=started)
        ).update(claimed_at=None)
    state.refresh_from_db()
    return state
