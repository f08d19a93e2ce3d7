"""Reusing cases: attach a case set of one study to another study (issue 13).

A second reader cohort or a re-read study needs the same examinations again, without uploading
them again. A manager of *both* studies picks one of the other study's case sets; the set is
copied into this study as a new case set: cases labelled in this study's own numbering, their
series and instances under this study's UIDs (:func:`studies.uploads.store.study_uid`, the
derivation an upload of the same files into this study uses), the files rewritten with those
UIDs and stored once more. Readings, reference values and choices of a reading series by hand
stay with the first study: the copy's series are judged against this study's TR/TE ranges.

Why copies and not shared files: a stored file carries its UIDs in its header, and DICOMweb
serves those bytes as they are; sharing a file would mean sharing its UIDs between two studies
(one UID naming two instances that different people may see, and a purge of one study deleting
the other's images) or rewriting every retrieval on the fly. A lumbar MRI case is a few MB, so
the copy costs disk, not correctness (measured in docs/ingest.md, "One examination in two
studies").

Selector and service here, the view in :mod:`studies.casesets_views`; every object comes through
:mod:`studies.access`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import pydicom
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet

from studies.access import AnyUser, studies_managed_by
from studies.models import Case, CaseSet, Instance, Series, Study
from studies.uploads.series import case_select_automatic, series_judge
from studies.uploads.store import next_case_label, stored_bytes_into_study, study_uid

logger = logging.getLogger(__name__)


def case_sets_to_attach(*, user: AnyUser, study: Study) -> QuerySet[CaseSet]:
    """The case sets the user may attach to ``study``: those of the *other* studies they
    manage (a site admin: every other study's), each with ``n_cases``; never a study the user
    does not manage, so the page names nothing they could not open anyway."""
    return (
        CaseSet.objects.filter(study__in=studies_managed_by(user))
        .exclude(study=study)
        .select_related("study")
        .annotate(n_cases=Count("cases"))
        .filter(n_cases__gt=0)
        .order_by("study__name", "created_at")
    )


@dataclass(frozen=True)
class Attached:
    """What an attach did: the new case set (None when nothing was new), its counts."""

    case_set: CaseSet | None
    cases: int
    instances: int
    skipped: int
    bytes_written: int


def case_set_attach(*, source: CaseSet, study: Study, by: AbstractBaseUser | None) -> Attached:
    """Copy ``source`` (a case set of another study) into ``study`` as a new case set.

    Each case is copied in its own transaction (a large set does not hold the database for
    minutes); a case ``study`` already holds (attached before, meanwhile, or uploaded under the
    same UIDs) is skipped, so attaching again after an interruption finishes the job. Files
    written for a case whose transaction fails are deleted again.
    """
    if source.study_id == study.pk:
        raise ValidationError("This case set is already in this study.")
    target: CaseSet | None = None
    cases = instances = skipped = written = 0
    for case in source.cases.order_by("label"):
        uids = (case.study_instance_uid, study_uid(case.study_instance_uid, study))
        if Case.objects.filter(study=study, study_instance_uid__in=uids).exists():
            skipped += 1
            continue
        if target is None:
            name = source.name  # not the other study's name: not every manager here knows it
            target = CaseSet.objects.create(study=study, name=name, created_by=by)
        try:
            n, size = _case_copy(case=case, study=study, case_set=target)
        except IntegrityError:  # attached meanwhile (a second click, a second manager)
            skipped += 1
            continue
        except BaseException:
            CaseSet.objects.filter(pk=target.pk, cases__isnull=True).delete()
            raise
        cases, instances, written = cases + 1, instances + n, written + size
    if target is not None and not cases:  # every case was attached meanwhile
        target.delete()
        target = None
    return Attached(target, cases, instances, skipped, written)


def _case_copy(*, case: Case, study: Study, case_set: CaseSet) -> tuple[int, int]:
    """One case into ``study``: (instances, bytes written)."""
    names: list[str] = []
    try:
        with transaction.atomic():
            Study.objects.select_for_update().filter(pk=study.pk).first()  # labels in turn
            copy = Case.objects.create(
                study=study,
                case_set=case_set,
                label=next_case_label(study),
                study_instance_uid=study_uid(case.study_instance_uid, study),
                patient_pseudonym=case.patient_pseudonym,
            )
            n = size = 0
            for series in case.series.order_by("series_instance_uid"):
                new, headers, written = _series_copy(series=series, case=copy, names=names)
                series_judge(series=new, headers=headers, study=study)
                n, size = n + len(headers), size + written
            case_select_automatic(case=copy)
    except BaseException:
        for name in names:
            try:
                Instance.file.field.storage.delete(name)
            except Exception:
                logger.warning("attach: written file %s not deleted", name)
        raise
    return n, size


def _series_copy(
    *, series: Series, case: Case, names: list[str]
) -> tuple[Series, list[tuple[pydicom.Dataset, bool]], int]:
    """One series into ``case`` (its study's UIDs), every instance rewritten and stored;
    the written names are appended to ``names`` as they are written (for the clean-up)."""
    study = case.study
    new = Series.objects.create(
        case=case,
        series_instance_uid=study_uid(series.series_instance_uid, study),
        modality=series.modality,
        description=series.description,
    )
    headers: list[tuple[pydicom.Dataset, bool]] = []
    written = 0
    for instance in series.instances.order_by("instance_number", "sop_instance_uid"):
        with instance.file.open("rb") as handle:
            ds, data = stored_bytes_into_study(handle.read(), study)
        copy = Instance(
            series=new,
            sop_instance_uid=str(ds.SOPInstanceUID),
            sop_class_uid=instance.sop_class_uid,
            instance_number=instance.instance_number,
            rows=instance.rows,
            columns=instance.columns,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            quarantined=instance.quarantined,
            quarantine_reason=instance.quarantine_reason,
        )
        copy.file.save("instance.dcm", ContentFile(data), save=False)
        names.append(copy.file.name)
        copy.save()
        del ds.PixelData  # the judge reads headers only: hold no series' pixels
        headers.append((ds, instance.quarantined))
        written += len(data)
    return new, headers, written
