"""Writes on the reader side: opening, saving, submitting and scoring readings.

The science lives in the pure package ``readers.measurement`` (``rois``, ``measure``); these
functions fetch what they need from the database and storage, call them, and store what they
return.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from readers.analysis.services import analysis_request
from readers.measurement.dicomio import DicomReadError, read_slice
from readers.measurement.measure import ALGORITHM_VERSION, MeasurementError, measure_vbq
from readers.measurement.quality import QualityLimits, QualityReport, check_reading
from readers.measurement.rois import RoiError, parse_roi_set
from readers.models import Reading, ReadingRevision, VbqResult
from readers.selectors import score_job_key
from readers.sessions import reader_sessions
from studies.models import Case, Instance, Study
from studies.vocabulary import LABELS
from vbqweb import notify
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record
from vbqweb.jobs import job_done_with_this_transaction, job_request, pause_point
from vbqweb.tasks import SCORE_READING

logger = logging.getLogger(__name__)


def reading_open(*, reader: AbstractBaseUser, case: Case, session: int) -> Reading:
    """The reader's reading of ``case`` in ``session``, created as an empty draft if new."""
    if not 1 <= session <= case.study.sessions:
        raise ValidationError(f"This study has sessions 1 to {case.study.sessions}.")
    existing = Reading.objects.filter(reader=reader, case=case, session=session).first()
    if existing is not None:
        return existing
    state = reader_sessions(reader=reader, study=case.study)[session - 1]
    if not state.is_open:
        when = (
            f"opens on {state.opens_at:%Y-%m-%d %H:%M} UTC"
            if state.opens_at
            else f"opens once session {session - 1} is complete and the wash-out has passed"
        )
        raise ValidationError(f"Session {session} {when}.")
    reading, _ = Reading.objects.get_or_create(reader=reader, case=case, session=session)
    return reading


class RoiVersionConflict(Exception):
    """A save made on an older ROI version than the reading's (another window or tab saved
    since): nothing was saved. Carries the reading's current version and set, so that the viewer
    can tell its own earlier save (a reload's late autosave) from another window's."""

    def __init__(self, roi_version: int, rois: Any) -> None:
        super().__init__("This reading was changed in another window or tab.")
        self.roi_version = roi_version
        self.rois = rois


def reading_save_rois(*, reading: Reading, data: Any, base_version: int | None = None) -> Reading:
    """Validate and store a new ROI set, then schedule its scoring.

    The set must parse (spec §2) and must reference only the case's reading series and its
    instances; otherwise nothing changes. Each save bumps ``roi_version`` so that a result
    computed for an older version is never taken for the current one.

    ``base_version`` (optimistic concurrency, the viewer's ``X-VBQ-Base-Version``): the version
    the edit was made on. The UPDATE is conditional on it, so of two saves made on the same
    version only the first lands and the other raises ``RoiVersionConflict`` with nothing
    saved; a stale tab cannot overwrite a newer set. ``None`` (scripts, ``manage.py`` tools, a
    client that does not send it): the last save wins, as before.
    """
    if reading.is_locked and not reading.case.study.allow_edit_after_submit:
        raise PermissionDenied("This reading is submitted and locked.")
    try:
        roi_set = parse_roi_set(data)
    except RoiError as exc:
        raise ValidationError(str(exc)) from exc
    series = reading.case.reading_series
    if series is None:
        raise ValidationError("This case has no series selected for reading.")
    if roi_set.series_instance_uid != series.series_instance_uid:
        raise ValidationError("series_instance_uid is not this case's reading series.")
    referenced = {roi.sop_instance_uid for roi in roi_set.rois}
    known = set(
        series.instances.readable()
        .filter(sop_instance_uid__in=referenced)
        .values_list("sop_instance_uid", flat=True)
    )
    if unknown := sorted(referenced - known):
        raise ValidationError(f"ROIs reference instances not in this series: {', '.join(unknown)}")
    with transaction.atomic():
        rows = Reading.objects.filter(pk=reading.pk)
        if base_version is not None:
            rows = rows.filter(roi_version=base_version)
        if not rows.update(
            rois=roi_set.to_json(), roi_version=F("roi_version") + 1, updated_at=timezone.now()
        ):
            current = Reading.objects.values("roi_version", "rois").get(pk=reading.pk)
            raise RoiVersionConflict(current["roi_version"], current["rois"])
        reading.refresh_from_db()
        _revision_keep(reading)
        reading_request_score(reading=reading)
        detail = {"roi_version": reading.roi_version, "after_submit": reading.is_locked}
        record(Action.ROIS_SAVED, obj=reading, detail=detail)
    return reading


def _revision_keep(reading: Reading) -> None:
    """Keep the reading's new ROI set as a revision, coalescing autosaves.

    The viewer autosaves every change, so one revision per save has no bound. A save replaces
    the latest revision when that one was saved less than ``VBQ_REVISION_COALESCE_SECONDS``
    ago *in the same phase* (both before submission, or both after): a burst of editing leaves
    one revision, a pause starts a new one. The set as submitted is never replaced: it is the
    last revision saved before submission, and nothing saved after submission replaces one
    saved before. (Called after the reading's conditional UPDATE, which holds its row lock, so
    two saves of one reading never interleave here.)
    """
    window = timedelta(seconds=settings.VBQ_REVISION_COALESCE_SECONDS)
    now = timezone.now()
    latest = reading.revisions.order_by("-roi_version").first()
    if (
        latest is not None
        and latest.after_submit == reading.is_locked
        and now - latest.saved_at < window
    ):
        ReadingRevision.objects.filter(pk=latest.pk).update(
            roi_version=reading.roi_version, rois=reading.rois, saved_at=now
        )
        return
    ReadingRevision.objects.create(
        reading=reading,
        roi_version=reading.roi_version,
        rois=reading.rois,
        after_submit=reading.is_locked,
    )


class QualityWarnings(Exception):
    """A submit refused until the reader confirms these warnings (nothing was stored)."""

    def __init__(self, report: QualityReport) -> None:
        super().__init__("; ".join(w.message for w in report.warnings))
        self.report = report


def reading_quality(*, reading: Reading) -> QualityReport:
    """The quality checks of the reading's current ROI set (``readers.measurement.quality``).

    The measurement is computed here, synchronously, from the stored images rather than taken
    from the worker's result: at submit the score of the last autosave may still be pending.
    Reading the four or five referenced slices and measuring them takes milliseconds (logged;
    ``docs/viewer.md`` has the figures), which a submit can afford.
    """
    started = time.perf_counter()
    study = reading.case.study
    roi_set = parse_roi_set(reading.rois)
    try:
        images = _load_referenced_images(reading, set(roi_set.referenced_uids))
    except DicomReadError as exc:
        images = {}
        logger.warning("quality check of %s: %s", reading.pk, exc)
    limits = QualityLimits(
        min_bone_roi_area_mm2=study.min_bone_roi_area_mm2,
        plausible_vbq_min=study.plausible_vbq_min,
        plausible_vbq_max=study.plausible_vbq_max,
    )
    report = check_reading(roi_set, images, limits, **study.measurement_settings())
    logger.info(
        "quality check of reading %s: %s in %.1f ms",
        reading.pk,
        ",".join(report.codes) or "no warning",
        1000 * (time.perf_counter() - started),
    )
    return report


def reading_submit(
    *,
    reading: Reading,
    confirmed: Collection[str] = (),
    timing: Mapping[str, Any] | None = None,
) -> Reading:
    """Lock the reading. It must be complete: every level measured or excluded, and a CSF ROI.

    Then the quality checks (:func:`reading_quality`) run on every submit, whoever calls: a
    warning whose code is not in ``confirmed`` raises :class:`QualityWarnings` and nothing is
    stored (the viewer shows them and asks again). A confirmed submit keeps the codes in
    ``quality_confirmed`` and in the audit event. The set locked is the set checked: a save
    that lands in between makes the submit fail and be asked again. ``timing`` (the viewer's
    reading time) is recorded with the submission (:func:`reading_record_time`).
    """
    if reading.is_locked:
        raise PermissionDenied("This reading is already submitted.")
    if not reading.rois:
        raise ValidationError("Place the ROIs before submitting.")
    roi_set = parse_roi_set(reading.rois)
    present = {roi.label for roi in roi_set.rois} | {e.label for e in roi_set.exclusions}
    if missing := [label for label in LABELS if label not in present]:
        raise ValidationError(f"Not yet measured or excluded: {', '.join(missing)}.")
    checked_version = reading.roi_version
    report = reading_quality(reading=reading)
    if set(report.codes) - set(confirmed):
        raise QualityWarnings(report)
    with transaction.atomic():
        if timing is not None:
            reading_record_time(reading=reading, timing=timing)
        updated = (
            Reading.objects.filter(pk=reading.pk, status=Reading.Status.DRAFT)
            .filter(roi_version=checked_version)
            .update(
                status=Reading.Status.SUBMITTED,
                submitted_at=timezone.now(),
                quality_confirmed=list(report.codes),
            )
        )
        if not updated:
            reading.refresh_from_db()
            if reading.is_locked:
                raise PermissionDenied("This reading is already submitted.")
            raise ValidationError("The ROIs changed while submitting: submit again.")
        reading.refresh_from_db()
        # Inside SQLite's write lock: ask whether a result exists, load none (bench/RESULTS.md).
        if not reading.results.filter(roi_version=reading.roi_version).exists():
            reading_request_score(reading=reading)
        else:
            analysis_request(study=reading.case.study)
        detail: dict[str, Any] = {"roi_version": reading.roi_version}
        if report.codes:
            detail["quality_confirmed"] = list(report.codes)
        record(Action.READING_SUBMITTED, obj=reading, detail=detail)
    return reading


TIME_SLACK_SECONDS = 5.0
"""What the server allows a reported time above the reading's age (clock granularity)."""


def reading_record_time(*, reading: Reading, timing: Mapping[str, Any]) -> Reading:
    """Store the viewer's active reading time (issue 13 item 6): ``{"active_seconds": s,
    "level_seconds": {"L1": s, ...}}``.

    The viewer counts time while its tab is visible and the reader gave input within the last
    minute (``static/src/viewer/timing.js``) and sends its running totals. The server keeps
    each total monotonic (a stale or replayed report never lowers what is stored: totals only
    grow) and bounded (no total exceeds the time since the reading was opened, so a broken or
    forged client cannot claim a day of work on a case opened a minute ago). A malformed
    report is a ``ValidationError``. Only a writable reading is timed: the callers fetch it
    with ``reading_for_writer``.
    """
    active, levels = _parse_timing(timing)
    with transaction.atomic():
        current = Reading.objects.select_for_update().get(pk=reading.pk)
        bound = (timezone.now() - current.created_at).total_seconds() + TIME_SLACK_SECONDS
        stored = dict(current.level_seconds or {})
        merged = {
            label: round(
                max(float(stored.get(label) or 0.0), min(levels.get(label, 0.0), bound)), 1
            )
            for label in LABELS
            if label in stored or label in levels
        }
        total = round(max(current.active_seconds, min(active, bound)), 1)
        Reading.objects.filter(pk=reading.pk).update(active_seconds=total, level_seconds=merged)
    reading.active_seconds, reading.level_seconds = total, merged
    return reading


def _parse_timing(timing: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
    def seconds(where: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{where} must be a number of seconds")
        if not math.isfinite(value) or value < 0:
            raise ValidationError(f"{where} must be a finite number of seconds, not negative")
        return float(value)

    if not isinstance(timing, Mapping) or set(timing) - {"active_seconds", "level_seconds"}:
        raise ValidationError("timing takes active_seconds and level_seconds only")
    active = seconds("active_seconds", timing.get("active_seconds", 0))
    levels = timing.get("level_seconds", {})
    if not isinstance(levels, Mapping) or set(levels) - set(LABELS):
        raise ValidationError(f"level_seconds takes the labels {', '.join(LABELS)}")
    return active, {label: seconds(f"level_seconds.{label}", v) for label, v in levels.items()}


def reading_request_score(*, reading: Reading) -> None:
    """Record the scoring of the reading's current ROI version in the outbox (in the caller's
    transaction: the work is kept even if the broker is down; it is sent after commit)."""
    job_request(
        SCORE_READING,
        key=score_job_key(reading_pk=reading.pk, roi_version=reading.roi_version),
        reading_pk=reading.pk,
        roi_version=reading.roi_version,
    )


def reading_compute_vbq(*, reading_pk: int, roi_version: int) -> VbqResult | None:
    """Compute and store the VBQ of one reading at one ROI version. Idempotent.

    A second delivery of the same task updates the same row (one result per reading, ROI
    version and algorithm version). A task for a version that is no longer current does
    nothing: the newer version has its own task. The result and, for a submitted reading, the
    request of the study's agreement are written in one transaction.
    """
    reading = Reading.objects.select_related("case__study").filter(pk=reading_pk).first()
    if reading is None or reading.roi_version != roi_version or not reading.rois:
        return None
    pause_point("score")
    study = reading.case.study
    method = study.measurement_settings()
    outcome: dict[str, Any] = {"status": VbqResult.Status.ERROR, "message": "", "detail": {}}
    try:
        roi_set = parse_roi_set(reading.rois)
        images = _load_referenced_images(reading, {roi.sop_instance_uid for roi in roi_set.rois})
        detail = measure_vbq(roi_set, images, **method)  # type: ignore[arg-type]
    except (RoiError, MeasurementError, DicomReadError) as exc:
        outcome["message"] = str(exc)
    else:
        computed = detail.get("vbq") is not None
        outcome = {
            "status": VbqResult.Status.OK if computed else VbqResult.Status.NOT_COMPUTED,
            "message": "" if computed else str(detail.get("reason", "")),
            "detail": detail,
            "vbq": detail.get("vbq"),
            "numerator": detail.get("numerator"),
            "csf_si": (detail.get("csf") or {}).get("si"),
        }
    with transaction.atomic():
        result, _ = VbqResult.objects.update_or_create(
            reading=reading,
            roi_version=roi_version,
            algorithm_version=ALGORITHM_VERSION,
            defaults={
                "method": method,
                "vbq": None,
                "numerator": None,
                "csf_si": None,
                **outcome,
            },
        )
        if Reading.objects.filter(pk=reading.pk, status=Reading.Status.SUBMITTED).exists():
            analysis_request(study=study)
        job_done_with_this_transaction()  # the job's end in this write, not one of its own
        # A score poll waiting on the server (readers.views) looks again now, not on its
        # next tick.
        transaction.on_commit(lambda: notify.announce(notify.score_topic(reading.pk)))
    return result


def _load_referenced_images(reading: Reading, uids: set[str]) -> dict[str, Any]:
    """Read the referenced instances of the case's reading series from storage.

    Only instances of that series are looked up, so an ROI on any other instance is reported
    by the measurement as not in the case's series.
    """
    series = reading.case.reading_series
    if series is None:
        return {}
    images = {}
    for instance in Instance.objects.readable().filter(series=series, sop_instance_uid__in=uids):
        with instance.file.open("rb") as fh:
            image = read_slice(fh, name=instance.sop_instance_uid)
        images[image.sop_instance_uid] = image
    return images


def study_request_rescore(*, study: Study) -> int:
    """Record the scoring of every reading of ``study`` that has ROIs (sent after commit).

    Used when the study's measurement settings change: each task rewrites the result row of
    the reading's current ROI version with the new method. Returns the number scheduled.
    """
    readings = Reading.objects.filter(case__study=study, rois__isnull=False)
    count = 0
    for reading in readings.only("pk", "roi_version"):
        reading_request_score(reading=reading)
        count += 1
    return count
