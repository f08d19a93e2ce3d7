"""Series eligibility and each case's reading series, and re-judging them when ranges change.

Every series is judged by every rule of :func:`studies.ingest.eligibility.classify_series`, with
the study's TR/TE ranges, on the headers of its instances (kept slim during an ingest, read back
from storage afterwards); each case's reading series is then its best eligible series, unless a
manager chose one (or none) by hand. Changing the study's ranges sends the re-judging of every
series to the worker (``REJUDGE_SERIES``, recorded in the outbox :mod:`vbqweb.jobs` with the
change and sent once it commits).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import pydicom
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from pydicom.dataset import Dataset

from studies.ingest.eligibility import classify_series
from studies.ingest.untrusted import quiet_pydicom
from studies.models import Case, Series, Study, Upload
from vbqweb.jobs import job_request
from vbqweb.tasks import REJUDGE_SERIES

logger = logging.getLogger(__name__)

# What classify_series reads: the rest of a header is not kept in memory during an ingest.
_CLASSIFY_KEYWORDS = (
    "Modality",
    "RepetitionTime",
    "EchoTime",
    "MagneticFieldStrength",
    "Manufacturer",
    "ManufacturerModelName",
    "ScanningSequence",
    "EchoPulseSequence",
    "MRAcquisitionType",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "NumberOfFrames",
    "ContrastBolusAgent",
    "ContrastBolusAgentSequence",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "SeriesDescription",
    "ProtocolName",
)


def _slim_header(ds: Dataset) -> Dataset:
    """The attributes series eligibility needs (after the bytes were written)."""
    slim = Dataset()
    for keyword in _CLASSIFY_KEYWORDS:
        if keyword in ds:
            with contextlib.suppress(Exception):
                slim[keyword] = ds[keyword]
    return slim


def _stored_headers(series: Series, *, exclude_upload: Upload | None) -> list[tuple[Dataset, bool]]:
    """Headers of a series' instances stored by earlier uploads (read back from storage)."""
    headers: list[tuple[Dataset, bool]] = []
    others = series.instances.all()
    if exclude_upload is not None:
        others = others.exclude(upload=exclude_upload)
    for instance in others.only("file", "quarantined"):
        try:
            with instance.file.open("rb") as handle, quiet_pydicom():
                ds = pydicom.dcmread(handle, stop_before_pixels=True)
        except Exception:  # a stored instance we wrote ourselves: should not happen
            logger.exception("cannot re-read stored instance %s", instance.pk)
            continue
        headers.append((_slim_header(ds), instance.quarantined))
    return headers


def series_judge(*, series: Series, headers: Sequence[tuple[Dataset, bool]], study: Study) -> None:
    """Store a series' eligibility (every rule, with reasons) and its acquisition facts.

    Judged on what readers may see: quarantined instances (possible burned-in text) count for
    nothing, and a series with nothing else is ineligible with that reason.
    """
    readable = [h for h, quarantined in headers if not quarantined]
    result = classify_series(readable or [h for h, _ in headers], **study.eligibility_settings())
    verdict = result.to_dict()
    if not readable:
        verdict["eligible"] = False
        verdict["reasons"] = [
            "every instance is quarantined (possible burned-in text): nothing to show readers",
            *verdict["reasons"],
        ]
    n_quarantined = len(headers) - len(readable)
    if n_quarantined and readable:
        verdict["notes"].append(f"{n_quarantined} instance(s) quarantined: not shown to readers")
    series.eligible = bool(verdict["eligible"])
    series.eligibility = verdict
    series.orientation = result.orientation
    series.n_instances = series.instances.count()
    series.field_strength_t = result.field_strength_t
    series.repetition_time_ms = result.tr_ms
    series.echo_time_ms = result.te_ms
    series.manufacturer = (result.manufacturer or "")[:128]
    series.model_name = (result.model or "")[:128]
    series.modality = (result.modality or series.modality or "MR")[:16]
    series.save()


def _rank(series: Series) -> tuple[int, int, str]:
    """Best first: a 2D acquisition, then the most slices, then a stable tie-break."""
    verdict = series.eligibility or {}
    return (
        1 if verdict.get("acquisition_type") == "3D" else 0,
        -int(verdict.get("n_slices") or series.n_instances),
        series.series_instance_uid,
    )


@transaction.atomic
def case_select_automatic(*, case: Case, clear_override: bool = False) -> Series | None:
    """Select the case's best eligible series, unless a manager chose one (or none) by hand.

    ``clear_override`` returns a case to automatic selection.
    """
    series = list(Case.objects.select_for_update().get(pk=case.pk).series.all())
    if clear_override:
        Series.objects.filter(case=case).update(
            eligibility_overridden_by=None, override_reason="", overridden_at=None
        )
    elif any(s.overridden_at is not None for s in series):
        return next((s for s in series if s.selected), None)
    eligible = sorted((s for s in series if s.eligible), key=_rank)
    best = eligible[0] if eligible else None
    others = Series.objects.filter(case=case, selected=True)
    if best is not None:
        others = others.exclude(pk=best.pk)
    others.update(selected=False)  # first: at most one selected series per case
    if best is not None and not best.selected:
        Series.objects.filter(pk=best.pk).update(selected=True)
    return best


@transaction.atomic
def case_choose_series(
    *, case: Case, series: Series | None, reason: str, by: AbstractBaseUser
) -> None:
    """A manager's choice of the reading series (or of none), overriding eligibility.

    Recorded on the chosen series (or, for "none", on every series of the case) with who, when
    and why. Refused once readers have started on the case: their ROIs reference instances of
    the current series.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError("Say why: the reason is kept with the choice.")
    case = Case.objects.select_for_update().get(pk=case.pk)
    if series is not None and series.case_id != case.pk:
        raise ValidationError("That series belongs to another case.")
    current = case.series.filter(selected=True).first()
    if (current != series) and case.readings.exists():  # type: ignore[attr-defined]
        raise ValidationError(
            "Readers have started reading this case: its reading series can no longer change."
        )
    now = timezone.now()
    case.series.update(
        selected=False, eligibility_overridden_by=None, override_reason="", overridden_at=None
    )
    marked = case.series.all() if series is None else case.series.filter(pk=series.pk)
    marked.update(eligibility_overridden_by=by, override_reason=reason[:500], overridden_at=now)
    if series is not None:
        Series.objects.filter(pk=series.pk).update(selected=True)


@transaction.atomic
def study_set_eligibility_ranges(*, study: Study, **ranges: float) -> bool:
    """Change the study's TR/TE ranges; return whether they changed.

    When they did, re-judging its series (:func:`study_rejudge_series`, the
    ``rejudge_study_series`` task) is recorded in the outbox with it and sent once it commits.
    """
    allowed = {"ingest_tr_min_ms", "ingest_tr_max_ms", "ingest_te_min_ms", "ingest_te_max_ms"}
    if set(ranges) - allowed:
        raise ValueError(f"not an eligibility range: {', '.join(sorted(set(ranges) - allowed))}")
    current = Study.objects.select_for_update().get(pk=study.pk)
    changed = [name for name, value in ranges.items() if getattr(current, name) != value]
    for name in changed:
        setattr(current, name, ranges[name])
    if changed:
        current.full_clean()
        current.save(update_fields=changed)
        job_request(REJUDGE_SERIES, key=f"rejudge:study:{study.pk}", study_id=study.pk)
    for name in ranges:
        setattr(study, name, getattr(current, name))
    return bool(changed)


def study_rejudge_series(*, study: Study) -> int:
    """Judge every series of the study again (its headers read back from storage) and re-pick
    the reading series of cases without a manager's choice. Returns the number of series."""
    study.refresh_from_db()
    count = 0
    for series in Series.objects.filter(case__study=study).select_related("case"):
        series_judge(
            series=series, headers=_stored_headers(series, exclude_upload=None), study=study
        )
        count += 1
    for case in Case.objects.filter(study=study):
        case_select_automatic(case=case)
    return count
