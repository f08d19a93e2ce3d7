"""Writes on the study side: studies, roles, thresholds and cases.

Keyword-only functions named ``<entity>_<action>``; views and tasks call these, never the ORM
directly for writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pydicom
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction

from studies.models import Assignment, Case, CaseSet, Instance, Role, Series, Study, Threshold


@transaction.atomic
def study_create(
    *,
    name: str,
    created_by: AbstractBaseUser | None = None,
    thresholds: dict[str, float] | None = None,
    **settings: object,
) -> Study:
    """Create a study with its measurement settings and named thresholds."""
    study = Study(name=name, created_by=created_by, **settings)
    study.full_clean()
    study.save()
    for threshold_name, value in (thresholds or {}).items():
        Threshold.objects.create(study=study, name=threshold_name, value=value)
    return study


@transaction.atomic
def assignment_set(*, study: Study, user: AbstractBaseUser, role: str) -> Assignment:
    """Give ``user`` exactly one role in ``study`` (replacing any other role they had)."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    assignment, _ = Assignment.objects.update_or_create(
        study=study, user=user, defaults={"role": role}
    )
    return assignment


def assignment_remove(*, study: Study, user: AbstractBaseUser) -> None:
    Assignment.objects.filter(study=study, user=user).delete()


@transaction.atomic
def case_set_import_trusted_files(
    *, study: Study, name: str, cases: Iterable[tuple[str, Iterable[Path]]]
) -> CaseSet:
    """Import already de-identified DICOM files as cases, one series per case.

    For the demo and tests only: the files (the project's own phantom) are trusted and already
    carry no real identifiers. Uploads from users go through the de-identifying ingest instead.
    Importing the same files twice is a no-op for the instances that exist already.
    """
    case_set = CaseSet.objects.create(study=study, name=name)
    for label, paths in cases:
        case: Case | None = None
        series: Series | None = None
        for path in sorted(paths):
            data = path.read_bytes()
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if case is None:
                case, _ = Case.objects.get_or_create(
                    study=study,
                    study_instance_uid=str(ds.StudyInstanceUID),
                    defaults={"label": label, "case_set": case_set},
                )
            if series is None:
                series, _ = Series.objects.get_or_create(
                    series_instance_uid=str(ds.SeriesInstanceUID),
                    defaults={
                        "case": case,
                        "modality": str(ds.get("Modality", "MR")),
                        "description": str(ds.get("SeriesDescription", "")),
                        "manufacturer": str(ds.get("Manufacturer", "")),
                        "model_name": str(ds.get("ManufacturerModelName", "")),
                        "field_strength_t": _float_or_none(ds.get("MagneticFieldStrength")),
                        "repetition_time_ms": _float_or_none(ds.get("RepetitionTime")),
                        "echo_time_ms": _float_or_none(ds.get("EchoTime")),
                        "selected": True,
                    },
                )
            if Instance.objects.filter(sop_instance_uid=str(ds.SOPInstanceUID)).exists():
                continue
            instance = Instance(
                series=series,
                sop_instance_uid=str(ds.SOPInstanceUID),
                sop_class_uid=str(ds.SOPClassUID),
                instance_number=_int_or_none(ds.get("InstanceNumber")),
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            instance.file.save(f"{ds.SOPInstanceUID}.dcm", ContentFile(data), save=False)
            instance.save()
    return case_set


def _float_or_none(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
