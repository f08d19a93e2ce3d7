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

A 200-case set is ~2,800 instances and tens of seconds of copying, so the page only records
the request (:func:`case_set_attach_request`: a :class:`~studies.models.CaseSetAttach` row and its
job in the site's outbox, one transaction) and the worker copies
(:func:`case_set_attach_run`, the task ``studies.tasks.attach_case_set``), writing its progress
on that row after every case for the progress page.

Selectors and services here, the views in :mod:`studies.casesets_views`; every object comes
through :mod:`studies.access`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydicom
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from studies.access import AnyUser, studies_managed_by
from studies.models import AttachStatus, Case, CaseSet, CaseSetAttach, Instance, Series, Study
from studies.uploads.series import case_select_automatic, series_judge
from studies.uploads.store import next_case_label, stored_bytes_into_study, study_uid
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record
from vbqweb.jobs import current_job, job_for_key, job_heartbeat, job_request, pause_point
from vbqweb.models import Job
from vbqweb.tasks import ATTACH_CASE_SET

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


def case_set_attach(
    *,
    source: CaseSet,
    study: Study,
    by: AbstractBaseUser | None,
    into: CaseSet | None = None,
    after_case: Callable[[Attached], None] | None = None,
) -> Attached:
    """Copy ``source`` (a case set of another study) into ``study`` as a new case set (or into
    ``into``, the copy an interrupted run began).

    Each case is copied in its own transaction (a large set does not hold the database for
    minutes); a case ``study`` already holds (attached before, meanwhile, or uploaded under the
    same UIDs) is skipped, so attaching again after an interruption finishes the job. Files
    written for a case whose transaction fails are deleted again. ``after_case`` is told the
    counts so far after every case, copied or skipped (the background run's progress).
    """
    if source.study_id == study.pk:
        raise ValidationError("This case set is already in this study.")
    target: CaseSet | None = into
    cases = instances = skipped = written = 0
    for case in source.cases.order_by("label"):
        if after_case is not None and (cases or skipped):
            after_case(Attached(target, cases, instances, skipped, written))
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
    if target is not None and not target.cases.exists():  # every case was attached meanwhile
        target.delete()
        target = None
    done = Attached(target, cases, instances, skipped, written)
    if after_case is not None:
        after_case(done)
    return done


# -- in the background -----------------------------------------------------------------------


def attach_job_key(attach_id: int) -> str:
    return f"attach:case-set:{attach_id}"


def case_set_attach_request(
    *, source: CaseSet, study: Study, by: AbstractBaseUser | None
) -> CaseSetAttach:
    """Record the attach of ``source`` to ``study`` and its job, in one transaction; the worker
    copies. An attach of the same set into the same study still under way is returned instead
    of a second one (a double click, a reload of the POST)."""
    if source.study_id == study.pk:
        raise ValidationError("This case set is already in this study.")
    with transaction.atomic():
        Study.objects.select_for_update().filter(pk=study.pk).first()  # one open attach per set
        open_ = CaseSetAttach.objects.filter(
            study=study, source=source, status__in=[AttachStatus.QUEUED, AttachStatus.COPYING]
        ).first()
        if open_ is not None:
            return open_
        attach = CaseSetAttach.objects.create(
            study=study,
            source=source,
            name=source.name,
            created_by=by,
            cases_total=source.cases.count(),
        )
        job_request(ATTACH_CASE_SET, key=attach_job_key(attach.pk), attach_id=attach.pk)
    return attach


def case_set_attach_run(*, attach_id: int) -> str:
    """The worker's side: copy the attach's set, its progress written after every case.

    Idempotent: a run sent again (the worker died) continues into the copy begun before and
    skips the cases already copied; an attach already finished does nothing. A failure is
    tried again by the outbox (``ATTACH_CASE_SET.max_runs`` runs); the last one marks the
    attach failed with the error, for the page.
    """
    attach = (
        CaseSetAttach.objects.select_related("study", "source", "case_set", "created_by")
        .filter(pk=attach_id)
        .first()
    )
    if attach is None or attach.is_finished:
        return "nothing to do"
    mine = CaseSetAttach.objects.filter(pk=attach.pk)
    if attach.source is None:
        mine.update(
            status=AttachStatus.FAILED,
            message="The case set no longer exists.",
            finished_at=timezone.now(),
        )
        return "source gone"
    mine.update(status=AttachStatus.COPYING, message="")

    def progress(done: Attached) -> None:
        job_heartbeat()  # raises JobLost when this run was replaced: it stops here
        copied = done.case_set.cases.count() if done.case_set is not None else 0
        seen = done.cases + done.skipped
        fields: dict[str, Any] = {"cases_copied": copied, "cases_skipped": seen - copied}
        fields |= {"case_set": done.case_set}
        mine.update(**fields)
        pause_point("attach")  # tests only: the progress page seen between two cases

    try:
        done = case_set_attach(
            source=attach.source,
            study=attach.study,
            by=attach.created_by,
            into=attach.case_set,
            after_case=progress,
        )
    except Exception as error:
        lease = current_job()
        last = lease is None or lease.runs >= ATTACH_CASE_SET.max_runs
        message = f"{'Failed' if last else 'Will try again'}: {type(error).__name__}: {error}"
        fields = {"message": message[:500]}
        if last:
            fields |= {"status": AttachStatus.FAILED, "finished_at": timezone.now()}
        mine.update(**fields)
        raise
    attach.refresh_from_db()
    instances = 0
    if done.case_set is not None:
        instances = Instance.objects.filter(series__case__case_set=done.case_set).count()
    mine.update(status=AttachStatus.DONE, instances=instances, finished_at=timezone.now())
    if done.case_set is not None:
        record(
            Action.CASES_ATTACHED,
            actor=attach.created_by,
            obj=done.case_set,
            study=attach.study,
            detail={
                "from_case_set": attach.source_id,
                "from_study": attach.source.study_id,
                "cases": attach.cases_copied,
                "instances": instances,
                "skipped": attach.cases_skipped,
            },
        )
    return f"{attach.cases_copied} copied, {attach.cases_skipped} skipped"


def attach_status_payload(*, attach: CaseSetAttach) -> dict[str, Any]:
    """What the progress page shows and its script polls.

    An attach whose job the outbox gave up on (its worker lost ``max_runs`` times: no run was
    left to mark it) reads as failed with the outbox's reason, not as copying for ever.
    """
    done = attach.cases_copied + attach.cases_skipped
    status, message, finished = attach.status, attach.message, attach.is_finished
    if not finished:
        job = job_for_key(attach_job_key(attach.pk))
        if job is not None and job.state == Job.State.FAILED:
            status, message, finished = AttachStatus.FAILED, f"Failed: {job.error}", True
    return {
        "status": status,
        "status_display": AttachStatus(status).label,
        "finished": finished,
        "cases_total": attach.cases_total,
        "cases_done": done,
        "cases_copied": attach.cases_copied,
        "cases_skipped": attach.cases_skipped,
        "instances": attach.instances,
        "message": message,
        "text": f"{done} of {attach.cases_total} cases copied"
        + (f" ({attach.cases_skipped} already here)" if attach.cases_skipped else ""),
    }


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
