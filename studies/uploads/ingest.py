"""The ingest: untrusted files in, de-identified cases, series and instances out.

One code path for every way in (spec section 3: "the same code path serves uploads on the
site"): :func:`deidentified_sources` reads each source with :mod:`studies.ingest.untrusted` (bounded,
never trusting a header), de-identifies it with :mod:`studies.ingest.deid` and serialises it. Three
callers consume it:

* the Celery task ``studies.tasks.ingest_upload`` -> :func:`upload_ingest`, for uploads from the
  site (the bytes wait in the upload's temporary folder, deleted when the task ends);
* :func:`case_set_ingest_paths`, synchronously, for the demo command and tests;
* ``manage.py deidentify``, which writes the same bytes to a folder instead of the database.

What the database keeps: one :class:`~studies.models.Case` per de-identified patient + study
(labelled ``Case 001``, ``Case 002`` ... in order of arrival: a pseudonym, never a source
identifier), its series with their eligibility (every rule of
:func:`studies.ingest.untrusted.classify_series`, with the study's TR/TE ranges), the instances in Django's
storage under their new UIDs, and one :class:`~studies.models.UploadItem` per source: its
position, status and reason, never its name.

Failure policy ("nothing partial"): a rejected file stores nothing; a refused upload
(:class:`~studies.ingest.untrusted.IngestError`: a zip bomb's totals, too many entries), a cancel, a time
limit or an unexpected error removes every instance, series and case the upload had stored
(:func:`upload_discard_stored`). Instances are written one by one in short transactions (the
web process and the worker share SQLite), so "nothing partial" is enforced by this clean-up,
keyed by ``Instance.upload`` / ``Series.upload`` / the upload's case set.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydicom
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from pydicom.dataset import Dataset

from studies.ingest.deid import (
    DeidConfig,
    DeidResult,
    deidentified_bytes,
    deidentify_dataset,
    new_uid,
)
from studies.ingest.untrusted import (
    DEFAULT_LIMITS,
    IngestError,
    IngestLimits,
    classify_series,
    iter_sources,
    quiet_pydicom,
    read_untrusted,
)
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

logger = logging.getLogger(__name__)

PROGRESS_EVERY_FILES = 25
PROGRESS_EVERY_SECONDS = 1.0
MAX_ATTEMPTS = 2
"""A task that died (worker killed, hard time limit) is re-run once, then the upload fails."""

_CASE_LABEL = re.compile(r"^Case (\d+)$")

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


# --- configuration ------------------------------------------------------------------------------


def deid_config() -> DeidConfig:
    """The site's de-identification settings, the same for the command, the site and the demo.

    ``VBQ_DEID_SECRET`` when set, else ``SECRET_KEY``: it keys every HMAC, so it must stay
    constant for the site's lifetime or re-ingested files stop matching their earlier copies.
    """
    secret = getattr(settings, "VBQ_DEID_SECRET", None) or settings.SECRET_KEY
    return DeidConfig.from_text(str(secret))


def ingest_limits() -> IngestLimits:
    """The site's bounds on an upload: ``IngestLimits`` defaults, with ``VBQ_INGEST_LIMITS``
    (a dict of its fields) applied on top."""
    return IngestLimits(**getattr(settings, "VBQ_INGEST_LIMITS", {}))


def deid_uid(original: str) -> str:
    """The de-identified form of a source UID on this site (e.g. to remap a phantom's ROIs)."""
    return new_uid(original, deid_config().secret)


# --- the shared pipeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceOutcome:
    """One source after reading and de-identification: a result with its bytes, or a reason.

    ``position`` is 1-based over all ``paths``; ``path_index`` says which path it came from and
    ``member_index`` its place inside that path (a zip's member or a folder's file; None for a
    plain file). ``name`` is for an operator's eyes only (the command prints it): it may carry
    identifiers and is never stored.
    """

    position: int
    path_index: int
    member_index: int | None
    name: str
    deid: DeidResult | None = None
    data: bytes | None = field(default=None, repr=False)
    reason: str | None = None


def _expands(path: Path) -> bool:
    """A folder or a zip yields members; a plain file yields itself."""
    if path.is_dir():
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
    except OSError:
        return False


def _sources_of(path: Path, limits: IngestLimits, *, alone: bool) -> Iterator[Any]:
    """``iter_sources`` of one path. An empty plain file among others is a rejected source (that
    file's problem); ``alone``, it is an empty upload, refused (:class:`IngestError`)."""
    if not alone and path.is_file() and not _expands(path) and path.stat().st_size == 0:
        yield _EmptySource(path.name)
        return
    yield from iter_sources(path, limits)


@dataclass(frozen=True)
class _EmptySource:
    name: str
    size: int = 0
    reason: str | None = "the file is empty"

    def read(self, cap: int) -> bytes:
        return b""


def count_sources(paths: Sequence[Path], limits: IngestLimits = DEFAULT_LIMITS) -> int:
    """How many sources the paths hold, listing only (a zip's central directory is checked for
    bombs here, before anything is extracted or stored). Raises :class:`IngestError`."""
    total = 0
    for path in paths:
        total += sum(1 for _ in _sources_of(path, limits, alone=len(paths) == 1))
        if total > limits.max_files:
            raise IngestError(f"the upload holds more than {limits.max_files} files")
    return total


def deidentified_sources(
    paths: Sequence[Path], *, config: DeidConfig, limits: IngestLimits = DEFAULT_LIMITS
) -> Iterator[SourceOutcome]:
    """Read, check, de-identify and serialise every source of ``paths``, one at a time.

    Each path is a DICOM file, a zip (one level: a zip inside is rejected) or a folder. At most
    one file's bytes are held at a time. :class:`IngestError` (the whole upload refused)
    propagates; anything wrong with one file becomes that file's ``reason``.
    """
    position = 0
    total_bytes = 0
    for path_index, path in enumerate(paths):
        expands = _expands(path)
        for member_index, source in enumerate(_sources_of(path, limits, alone=len(paths) == 1)):
            position += 1
            where = {
                "position": position,
                "path_index": path_index,
                "member_index": member_index if expands else None,
                "name": source.name,
            }
            result = read_untrusted(source, limits)  # type: ignore[arg-type]
            if result.dataset is None:
                yield SourceOutcome(**where, reason=result.reason or "unreadable")
                continue
            try:
                with quiet_pydicom():
                    deid = deidentify_dataset(result.dataset, config=config)
                    data = deidentified_bytes(deid.dataset)
            except (MemoryError, RecursionError):
                yield SourceOutcome(**where, reason="the file cannot be de-identified safely")
                continue
            except Exception as error:  # a hostile file must not stop the upload
                yield SourceOutcome(
                    **where, reason=f"the file cannot be de-identified ({type(error).__name__})"
                )
                continue
            total_bytes += len(data)
            if total_bytes > limits.max_total_bytes:
                raise IngestError("the upload holds more data than the limit: refused")
            yield SourceOutcome(**where, deid=deid, data=data)


# --- storing ------------------------------------------------------------------------------------


class _Cancelled(Exception):
    """The upload was cancelled while the task ran."""


def _slim_header(ds: Dataset) -> Dataset:
    """The attributes series eligibility needs (after the bytes were written)."""
    slim = Dataset()
    for keyword in _CLASSIFY_KEYWORDS:
        if keyword in ds:
            with contextlib.suppress(Exception):
                slim[keyword] = ds[keyword]
    return slim


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _text(value: object, limit: int) -> str:
    return "" if value is None else str(value).strip()[:limit]


def _next_case_label(study: Study) -> str:
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
        existing = (
            Instance.objects.filter(sop_instance_uid=deid.sop_uid)
            .values_list("series__case__study_id", "series__case_id")
            .first()
        )
        if existing is not None:
            if existing[0] == self.study.pk:
                case = Case.objects.filter(pk=existing[1]).first()
                return (
                    ItemStatus.DUPLICATE,
                    "already stored (the same de-identified SOP Instance UID)",
                    deid.sop_uid,
                    case,
                )
            return (
                ItemStatus.DUPLICATE,
                "already stored in another study on this site (the same SOP Instance UID)",
                deid.sop_uid,
                None,
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
                        label=_next_case_label(self.study),
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
        """Write the pending report rows and counters; notice a cancel (0 rows updated)."""
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

    # -- after the last source

    def judge(self) -> None:
        """Eligibility of every series this upload touched, then each case's reading series."""
        for series_pk, new_headers in self.headers.items():
            series = Series.objects.select_related("case").get(pk=series_pk)
            headers = list(new_headers) + _stored_headers(series, exclude_upload=self.upload)
            series_judge(series=series, headers=headers, study=self.study)
        for case in Case.objects.filter(pk__in=self.touched_cases):
            case_select_automatic(case=case)


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


# --- eligibility and the reading series ----------------------------------------------------------


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


# --- running an ingest --------------------------------------------------------------------------


def upload_directory(upload: Upload | int) -> Path:
    """``VBQ_UPLOAD_ROOT/<id>/``: the upload's bytes, under server-chosen names only."""
    pk = upload if isinstance(upload, int) else upload.pk
    return Path(settings.VBQ_UPLOAD_ROOT) / str(int(pk))


REMOVING = ".removing-"
"""Infix of an upload folder being deleted (``.<id>.removing-<hex>``), see below."""


def upload_directory_remove(upload: Upload | int) -> None:
    """Delete an upload's folder for good: rename it out of its ``<id>`` name, then delete it.

    Deleting in place races with a request that arrives meanwhile: the upload lock opens
    ``<id>/.lock`` with ``O_CREAT``, so once ``rmtree`` has removed the old lock file but not yet
    the folder, such a request creates a new one there, ``rmtree``'s final ``rmdir`` fails (it
    ignores errors), and the folder stays behind (seen in the upload page's cancel test). After
    the atomic rename, a late request finds no folder and answers "no longer here". A deletion
    cut short leaves a ``.<id>.removing-*`` folder that the periodic clean-up removes.
    """
    directory = upload_directory(upload)
    doomed = directory.with_name(f".{directory.name}{REMOVING}{uuid.uuid4().hex}")
    try:
        os.rename(directory, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def upload_paths(upload: Upload) -> tuple[list[Path], list[int]]:
    """The received files in the browser's order, and each one's index in what it sent."""
    directory = upload_directory(upload) / "files"
    paths = sorted(directory.glob("*.bin")) if directory.is_dir() else []
    return paths, [int(p.stem) for p in paths]


def upload_discard_stored(*, upload: Upload) -> None:
    """Remove everything the upload stored: instances (and their files), the series and cases
    it created, its report rows. Cases it only added to are re-judged."""
    instances = Instance.objects.filter(upload=upload)
    for name in instances.values_list("file", flat=True):
        if name:
            with contextlib.suppress(Exception):
                Instance.file.field.storage.delete(name)
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


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(upload: Upload, store: _Store) -> tuple[str, str]:
    """(status, message) once every source was processed."""
    counts = store.counts
    total = counts["processed"]
    if store.stored == 0 and counts["duplicate"] == 0:
        return UploadStatus.FAILED, (
            f"Nothing was stored: none of the {_n(total, 'file')} is a usable MR image "
            "(each file's reason is listed below)."
        )
    if store.stored == 0:
        return UploadStatus.DONE, (
            f"Nothing new: {_n(counts['duplicate'], 'file')} already stored "
            f"({counts['rejected']} rejected)."
        )
    cases = Case.objects.filter(pk__in=store.touched_cases)
    parts = [
        f"{_n(total, 'file')} read (zip members counted): {_n(store.stored, 'instance')} stored "
        f"in {_n(cases.count(), 'case')} ({store.new_cases} new)"
    ]
    for key, label in (
        ("duplicate", "already stored"),
        ("rejected", "rejected"),
        ("quarantined", "quarantined (possible burned-in text)"),
    ):
        if counts[key]:
            parts.append(f"{counts[key]} {label}")
    message = "; ".join(parts) + "."
    without = cases.exclude(series__selected=True).count()
    if without and without == cases.count():
        message += (
            " No case has an eligible series: open each case's series page to see why, choose "
            "a reading series by hand, or check the study's TR/TE ranges."
        )
    elif without:
        message += f" {_n(without, 'case')} without an eligible series (see its series page)."
    return UploadStatus.DONE, message


def _run(upload: Upload, paths: Sequence[Path], file_indices: list[int] | None) -> None:
    """The ingest proper; raises on a refused upload, a cancel or an error."""
    limits = ingest_limits()
    total = count_sources(paths, limits)  # bomb checks before anything is stored
    if upload.case_set_id is None:
        upload.case_set = CaseSet.objects.create(
            study=upload.study, name=upload.name, created_by=upload.created_by
        )
        Upload.objects.filter(pk=upload.pk).update(case_set=upload.case_set)
    Upload.objects.filter(pk=upload.pk).update(sources_total=total)
    store = _Store(upload, file_indices)
    for outcome in deidentified_sources(paths, config=deid_config(), limits=limits):
        store.add(outcome)
    store.flush()
    store.judge()
    status, message = _summary(upload, store)
    if not store.new_cases and upload.case_set_id is not None:
        CaseSet.objects.filter(pk=upload.case_set_id, cases__isnull=True).delete()
    Upload.objects.filter(pk=upload.pk, status=UploadStatus.PROCESSING).update(
        status=status, message=message, finished_at=timezone.now()
    )


def _fail(upload: Upload, message: str) -> None:
    upload_discard_stored(upload=upload)
    Upload.objects.filter(pk=upload.pk, status=UploadStatus.PROCESSING).update(
        status=UploadStatus.FAILED, message=message, finished_at=timezone.now()
    )


def _guarded_run(
    upload: Upload,
    paths: Sequence[Path],
    file_indices: list[int] | None,
    *,
    reraise: bool = False,
) -> None:
    """Run, and turn every way it can end early into a clean state with nothing partial.

    ``reraise`` (the synchronous callers) raises the refusal or the error after cleaning up.
    """
    try:
        _run(upload, paths, file_indices)
    except IngestError as error:
        _fail(upload, f"The upload was refused and nothing was stored: {error}.")
        if reraise:
            raise
    except _Cancelled:
        upload_discard_stored(upload=upload)
    except SoftTimeLimitExceeded:
        _fail(
            upload,
            "The ingest took longer than the limit of "
            f"{settings.VBQ_INGEST_TIME_LIMIT} s and was stopped; nothing was stored. "
            "Split the case set into smaller uploads.",
        )
    except Exception:
        logger.exception("ingest of upload %s failed", upload.pk)
        _fail(upload, "The ingest failed with an internal error; nothing was stored.")
        if reraise:
            raise


def _claim(upload_id: int) -> bool:
    """queued -> processing, exactly once however often the task was sent."""
    now = timezone.now()
    return bool(
        Upload.objects.filter(pk=upload_id, status=UploadStatus.QUEUED).update(
            status=UploadStatus.PROCESSING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
    )


def upload_ingest(*, upload_id: int) -> str:
    """The Celery task's body: claim the upload, ingest its files, always delete them.

    Returns what happened (for the worker's log): ``"not claimed"`` when another delivery of
    the task got there first or the upload was cancelled.
    """
    if not _claim(upload_id):
        return "not claimed"
    upload = Upload.objects.select_related("study", "created_by").get(pk=upload_id)
    try:
        if upload.attempts > 1:  # an earlier run died (worker lost): start again from scratch
            upload_discard_stored(upload=upload)
        paths, indices = upload_paths(upload)
        if not paths:
            _fail(upload, "The uploaded files are gone (deleted before the ingest ran).")
        else:
            _guarded_run(upload, paths, indices)
    finally:
        upload_directory_remove(upload)
    upload.refresh_from_db(fields=["status"])
    return str(upload.status)


def case_set_ingest_paths(
    *,
    study: Study,
    paths: Iterable[Path],
    name: str,
    created_by: AbstractBaseUser | None = None,
) -> Upload:
    """Ingest files, folders or zips synchronously, through the site's ingest code path.

    For the demo command and tests: the caller's files are read, never moved or deleted. Each
    path's sources are reported with ``UploadItem.file_index`` = the path's index in ``paths``
    (so a caller can map its inputs to the cases created). Returns the finished upload
    (status ``done``, or ``failed`` with its ``message``); raises :class:`IngestError` when the
    whole set was refused.
    """
    path_list = [Path(p) for p in paths]
    size = sum(_size_of(p) for p in path_list)
    now = timezone.now()
    upload = Upload.objects.create(
        study=study,
        created_by=created_by,
        name=name,
        status=UploadStatus.PROCESSING,
        files_total_expected=len(path_list),
        files_received=len(path_list),
        bytes_total_expected=size,
        bytes_received=size,
        attempts=1,
        started_at=now,
        heartbeat_at=now,
        enqueued_at=None,
    )
    _guarded_run(upload, path_list, None, reraise=True)
    upload.refresh_from_db()
    return upload


def _size_of(path: Path) -> int:
    """Bytes under a file or folder (symbolic links not followed), for the report's figures."""
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return 0


def uploads_requeue_stale(*, now: Any = None) -> tuple[int, int]:
    """Uploads whose task died (no end after the hard time limit): run again, or fail.

    Returns (requeued, failed). Only after the hard limit has passed since the claim is the
    task certainly dead, so a slow but live ingest is never run twice.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.VBQ_INGEST_TIME_LIMIT + 60)
    stale = Upload.objects.filter(status=UploadStatus.PROCESSING, started_at__lt=cutoff)
    requeued = stale.filter(attempts__lt=MAX_ATTEMPTS).update(
        status=UploadStatus.QUEUED, dispatch_attempted_at=None, enqueued_at=None
    )
    failed = 0
    for upload in stale.filter(Q(attempts__gte=MAX_ATTEMPTS)):
        _fail(
            upload,
            f"The ingest was interrupted {upload.attempts} times (worker lost or time limit); "
            "nothing was stored.",
        )
        upload_directory_remove(upload)
        failed += 1
    return requeued, failed


@transaction.atomic
def study_set_eligibility_ranges(*, study: Study, **ranges: float) -> bool:
    """Change the study's TR/TE ranges; return whether they changed (then re-judge its series
    with :func:`study_rejudge_series`, e.g. through the ``rejudge_study_series`` task)."""
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
