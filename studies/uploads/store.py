"""Storing an ingest: de-identified instances in, cases, series and a report row per source.

What the database keeps: one :class:`~studies.models.Case` per de-identified patient + study
(labelled ``Case 001``, ``Case 002`` ... in order of arrival: a pseudonym, never a source
identifier), its series with their eligibility (:mod:`studies.uploads.series`), the instances
in Django's storage under their new UIDs, and one :class:`~studies.models.UploadItem` per
source: its position, status and reason, never its name.

"Nothing partial": instances are written one by one in short transactions (the web process and
the worker share SQLite), so an upload that ends early is undone by :func:`upload_discard_stored`,
keyed by ``Instance.upload`` / ``Series.upload`` / the upload's case set. The store notices a
cancel when it writes its progress (:class:`_Cancelled`).

Its progress writes (at least every second while sources flow) are also the heartbeat of the
ingest's outbox job (:func:`vbqweb.jobs.job_heartbeat`): a run that was presumed dead and
replaced learns it there (:class:`~vbqweb.jobs.JobLost`) and writes nothing more; what it
stored in between is discarded by the new run, or found already stored (a SOP Instance UID is
stored once).

**One examination in two studies.** The de-identification derives UIDs with the site's secret,
so the same source file becomes the same SOP Instance UID in every study. An examination that
another study already holds is therefore stored here under UIDs *of this study*
(:func:`study_uid`: a keyed derivation of the site's UID and the study), as a new case: the
upload's report says "stored", exactly as for an examination no study holds, so that it tells
a manager nothing about studies they cannot see (issue 13). The same derivation is what a case
set attached from another study gets (:mod:`studies.casesets`), so the UIDs stay unique on the
site (DICOMweb finds one instance per UID) and a second upload of the same files into this
study is a duplicate, as it should be. docs/ingest.md, "One examination in two studies".
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from dataclasses import replace

import pydicom
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydicom.dataset import Dataset

from studies.ingest.deid_engine import DeidResult
from studies.ingest.deid_identity import new_uid
from studies.ingest.deid_writer import deidentified_bytes
from studies.ingest.untrusted import quiet_pydicom
from studies.models import (
    Case,
    CaseSet,
    Instance,
    ItemStatus,
    Series,
    Study,
    Upload,
    UploadItem,
    UploadStatus,
)
from studies.uploads.config import deid_config
from studies.uploads.pipeline import SourceOutcome
from studies.uploads.series import (
    _slim_header,
    _stored_headers,
    case_select_automatic,
    series_judge,
)
from vbqweb.jobs import job_heartbeat, pause_point
from vbqweb.storage import storage_unavailable

logger = logging.getLogger(__name__)

PROGRESS_EVERY_FILES = 25
PROGRESS_EVERY_SECONDS = 1.0

_CASE_LABEL = re.compile(r"^Case (\d+)$")


class _Cancelled(Exception):
    """The upload was cancelled while the task ran."""


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _text(value: object, limit: int) -> str:
    return "" if value is None else str(value).strip()[:limit]


def study_uid(uid: str, study: Study) -> str:
    """The UID that the site's de-identified ``uid`` takes in ``study`` when another study
    holds the same examination: an HMAC of both under the site secret, like every de-identified
    UID (``2.25.``, 44 characters), so it reveals neither the site's UID nor the source's."""
    return new_uid(f"study {study.pk}\x1f{uid}", deid_config().secret)


def _keeps_its_uid(keyword: str, value: str) -> bool:
    """Class and transfer-syntax UIDs name kinds of objects, not this patient's: they stay."""
    return keyword.endswith("ClassUID") or keyword == "TransferSyntaxUID" or not value


def dataset_into_study(ds: Dataset, study: Study) -> None:
    """Give every de-identified UID of ``ds`` (``2.25.``, nested sequences included) its
    :func:`study_uid` in ``study``, in place; the file meta follows the SOP Instance UID.

    Only ``2.25.`` values change: the de-identification replaced every other instance UID with
    one, and the standard's own UIDs (``1.2.840.10008.``) name classes and syntaxes.
    """
    cache: dict[str, str] = {}

    def mapped(value: str) -> str:
        value = str(value).strip().rstrip("\x00")
        if not value.startswith("2.25."):
            return value
        if value not in cache:
            cache[value] = study_uid(value, study)
        return cache[value]

    def walk(dataset: Dataset) -> None:
        for element in dataset:
            if element.VR == "SQ":
                for item in element.value or []:
                    walk(item)
            elif element.VR == "UI" and not _keeps_its_uid(element.keyword, element.value):
                if element.VM > 1:
                    element.value = [mapped(v) for v in element.value]
                else:
                    element.value = mapped(element.value)

    walk(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def stored_bytes_into_study(raw: bytes, study: Study) -> tuple[Dataset, bytes]:
    """A stored (de-identified) instance's bytes under ``study``'s UIDs: the dataset and its
    bytes as the ingest writes them (reusing a case set: :mod:`studies.casesets`)."""
    with quiet_pydicom():
        ds = pydicom.dcmread(io.BytesIO(raw))
        dataset_into_study(ds, study)
        return ds, deidentified_bytes(ds)


def next_case_label(study: Study) -> str:
    """``Case 001``, ``Case 002`` ...: the next label of the study (its numbering, whatever
    way the case comes in); call it holding the study row's lock."""
    numbers = [
        int(match.group(1))
        for label in Case.objects.filter(study=study).values_list("label", flat=True)
        if (match := _CASE_LABEL.match(label))
    ]
    return f"Case {max(numbers, default=0) + 1:03d}"


class _Store:
    """Writes one upload's de-identified instances and its per-source report rows."""

    def __init__(self, upload: Upload, file_indices: list[int] | None) -> None:
        self.upload = upload
        self.file_indices = file_indices
        self.study = upload.study
        self.cases: dict[tuple[str, str], Case] = {}
        self.site_uids: dict[str, bool] = {}  # site study UID → does it keep the site's UIDs?
        self.series: dict[str, Series] = {}
        self.headers: dict[int, list[tuple[Dataset, bool]]] = {}
        self.touched_cases: set[int] = set()
        self.items: list[UploadItem] = []
        self.counts = {"processed": 0, "rejected": 0, "duplicate": 0, "quarantined": 0}
        self.stored = 0
        self.new_cases = 0
        self._last_flush = time.monotonic()
        self._unflushed = 0

    # -- per source

    def add(self, outcome: SourceOutcome) -> None:
        status, reason, uid, case = self._store(outcome)
        self.counts["processed"] += 1
        if status == ItemStatus.REJECTED:
            self.counts["rejected"] += 1
        elif status == ItemStatus.DUPLICATE:
            self.counts["duplicate"] += 1
        else:
            self.stored += 1
            if status == ItemStatus.QUARANTINED:
                self.counts["quarantined"] += 1
        self.items.append(
            UploadItem(
                upload=self.upload,
                position=outcome.position,
                file_index=self._file_index(outcome),
                member_index=outcome.member_index,
                status=status,
                reason=(reason or "")[:500],
                sop_instance_uid=uid,
                case=case,
            )
        )
        self._unflushed += 1
        if (
            self._unflushed >= PROGRESS_EVERY_FILES
            or time.monotonic() - self._last_flush >= PROGRESS_EVERY_SECONDS
        ):
            self.flush()

    def _file_index(self, outcome: SourceOutcome) -> int:
        if self.file_indices is not None:
            return self.file_indices[outcome.path_index]
        return outcome.path_index

    def _store(self, outcome: SourceOutcome) -> tuple[str, str | None, str, Case | None]:
        deid, data = outcome.deid, outcome.data
        if deid is None or data is None:
            return ItemStatus.REJECTED, outcome.reason, "", None
        if deid.study_uid and not self._keeps_site_uids(deid):
            deid, data = self._into_this_study(deid)
        existing = (
            Instance.objects.filter(sop_instance_uid=deid.sop_uid)
            .values_list("series__case__study_id", "series__case_id")
            .first()
        )
        if existing is not None:
            # Another study's instance can only be here if it was stored meanwhile: the same
            # answer as a duplicate of this study, which names nothing of the other study.
            mine = existing[0] == self.study.pk
            case = Case.objects.filter(pk=existing[1]).first() if mine else None
            return (
                ItemStatus.DUPLICATE,
                "already stored (the same de-identified SOP Instance UID)",
                deid.sop_uid,
                case,
            )
        if not deid.study_uid or not deid.series_uid:
            return ItemStatus.REJECTED, "no Study or Series Instance UID", "", None
        case, problem = self._case(deid)
        if case is None:
            return ItemStatus.REJECTED, problem, "", None
        series, problem = self._series(case, deid)
        if series is None:
            return ItemStatus.REJECTED, problem, "", case
        ds = deid.dataset
        quarantined = deid.quarantine_reason is not None
        instance = Instance(
            series=series,
            upload=self.upload,
            sop_instance_uid=deid.sop_uid,
            sop_class_uid=_text(ds.get("SOPClassUID"), 64),
            instance_number=_int_or_none(ds.get("InstanceNumber")),
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            quarantined=quarantined,
            quarantine_reason=(deid.quarantine_reason or "")[:200],
        )
        instance.file.save(deid.relative_path, ContentFile(data), save=False)
        try:
            instance.save()
        except IntegrityError:  # stored meanwhile by a concurrent ingest
            instance.file.storage.delete(instance.file.name)
            return ItemStatus.DUPLICATE, "already stored (stored meanwhile)", deid.sop_uid, case
        except BaseException:
            instance.file.storage.delete(instance.file.name)
            raise
        self.headers.setdefault(series.pk, []).append((_slim_header(ds), quarantined))
        self.touched_cases.add(case.pk)
        if quarantined:
            return ItemStatus.QUARANTINED, deid.quarantine_reason, deid.sop_uid, case
        return ItemStatus.ACCEPTED, None, deid.sop_uid, case

    def _keeps_site_uids(self, deid: DeidResult) -> bool:
        """Whether the examination keeps the site's UIDs here: yes unless another study holds
        it (its case, series or instance) and this study does not under the site's UIDs.
        Decided once per examination and upload, so its instances stay together."""
        site_uid = deid.study_uid
        if site_uid in self.site_uids:
            return self.site_uids[site_uid]
        here = Case.objects.filter(study=self.study)
        if here.filter(study_instance_uid=study_uid(site_uid, self.study)).exists():
            keeps = False
        elif here.filter(study_instance_uid=site_uid).exists():
            keeps = True
        else:
            keeps = not (
                Case.objects.filter(study_instance_uid=site_uid).exists()
                or Series.objects.filter(series_instance_uid=deid.series_uid).exists()
                or Instance.objects.filter(sop_instance_uid=deid.sop_uid).exists()
            )
        self.site_uids[site_uid] = keeps
        return keeps

    def _into_this_study(self, deid: DeidResult) -> tuple[DeidResult, bytes]:
        """The instance under this study's UIDs (:func:`dataset_into_study`), re-serialised."""
        ds = deid.dataset
        with quiet_pydicom():
            dataset_into_study(ds, self.study)
            data = deidentified_bytes(ds)
        moved = replace(
            deid,
            study_uid=str(ds.StudyInstanceUID),
            series_uid=str(ds.get("SeriesInstanceUID", "")),
            sop_uid=str(ds.SOPInstanceUID),
        )
        return moved, data

    def _case(self, deid: DeidResult) -> tuple[Case | None, str | None]:
        key = (deid.patient_key, deid.study_uid)
        if key in self.cases:
            return self.cases[key], None
        case = Case.objects.filter(study=self.study, study_instance_uid=deid.study_uid).first()
        if case is None:
            case = self._create_case(deid)
        if case.patient_pseudonym and case.patient_pseudonym != deid.patient_key:
            return None, "its Study Instance UID is another patient's study: inconsistent source"
        if not case.patient_pseudonym:
            case.patient_pseudonym = deid.patient_key
            case.save(update_fields=["patient_pseudonym"])
        self.cases[key] = case
        return case, None

    def _create_case(self, deid: DeidResult) -> Case:
        """A new case with the next free label; serialised on the study row."""
        for _ in range(5):
            try:
                with transaction.atomic():
                    Study.objects.select_for_update().filter(pk=self.study.pk).first()
                    found = Case.objects.filter(
                        study=self.study, study_instance_uid=deid.study_uid
                    ).first()
                    if found is not None:
                        return found
                    case = Case.objects.create(
                        study=self.study,
                        case_set=self.upload.case_set,
                        label=next_case_label(self.study),
                        study_instance_uid=deid.study_uid,
                        patient_pseudonym=deid.patient_key,
                    )
            except IntegrityError:
                continue
            self.new_cases += 1
            return case
        raise RuntimeError("could not allocate a case label")

    def _series(self, case: Case, deid: DeidResult) -> tuple[Series | None, str | None]:
        series = self.series.get(deid.series_uid)
        if series is None:
            ds = deid.dataset
            series, created = Series.objects.get_or_create(
                series_instance_uid=deid.series_uid,
                defaults={
                    "case": case,
                    "upload": self.upload,
                    "modality": _text(ds.get("Modality"), 16) or "MR",
                    "description": _text(ds.get("SeriesDescription"), 200),
                },
            )
            if not created and series.case_id != case.pk:
                return None, "its Series Instance UID belongs to another case: inconsistent source"
            self.series[deid.series_uid] = series
        return series, None

    # -- progress

    def flush(self) -> None:
        """Write the pending report rows and counters; notice a cancel (0 rows updated).

        The job's heartbeat comes first: a replaced run stops before it writes anything.
        """
        job_heartbeat()
        if self.items:
            UploadItem.objects.bulk_create(self.items)
            self.items = []
        updated = Upload.objects.filter(pk=self.upload.pk, status=UploadStatus.PROCESSING).update(
            files_processed=self.counts["processed"],
            files_rejected=self.counts["rejected"],
            files_duplicate=self.counts["duplicate"],
            files_quarantined=self.counts["quarantined"],
            instances_stored=self.stored,
            cases_created=self.new_cases,
            heartbeat_at=timezone.now(),
        )
        self._unflushed = 0
        self._last_flush = time.monotonic()
        if not updated:
            raise _Cancelled
        if self.stored:
            pause_point("ingest")  # the fault tests kill a worker here, mid-ingest

    # -- after the last source

    def judge(self) -> None:
        """Eligibility of every series this upload touched, then each case's reading series."""
        for series_pk, new_headers in self.headers.items():
            job_heartbeat()  # reading a series' stored headers back may take a while
            series = Series.objects.select_related("case").get(pk=series_pk)
            headers = list(new_headers) + _stored_headers(series, exclude_upload=self.upload)
            series_judge(series=series, headers=headers, study=self.study)
        for case in Case.objects.filter(pk__in=self.touched_cases):
            case_select_automatic(case=case)


def upload_discard_stored(*, upload: Upload) -> None:
    """Remove everything the upload stored: instances (and their files), the series and cases
    it created, its report rows. Cases it only added to are re-judged.

    Files first: an object store that cannot be reached raises here, before any row is
    deleted, so that the next attempt finds (and deletes) them all; any other error deleting
    one file is logged and leaves that file behind.
    """
    instances = Instance.objects.filter(upload=upload)
    for name in instances.values_list("file", flat=True):
        if name:
            try:
                Instance.file.field.storage.delete(name)
            except Exception as error:
                if storage_unavailable(error):
                    raise
                logger.warning("upload %s: stored file %s not deleted", upload.pk, name)
    touched = set(instances.values_list("series__case_id", flat=True))
    instances.delete()
    Series.objects.filter(upload=upload, instances__isnull=True).delete()
    if upload.case_set_id is not None:
        Case.objects.filter(case_set_id=upload.case_set_id, series__isnull=True).delete()
        CaseSet.objects.filter(pk=upload.case_set_id, cases__isnull=True).delete()
    UploadItem.objects.filter(upload=upload).delete()
    for case in Case.objects.filter(pk__in=touched):
        case_select_automatic(case=case)
    Upload.objects.filter(pk=upload.pk).update(
        instances_stored=0,
        cases_created=0,
        files_processed=0,
        files_rejected=0,
        files_duplicate=0,
        files_quarantined=0,
    )
