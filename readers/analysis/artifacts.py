"""A study's generated files: built once per analysis in the worker, served at once (issue 13).

Why: the agreement page's figures (~430 KB of HTML), the PDF report and the DICOM SR zip took
about 5 s, 11.5 s and 22.5 s to build on every request, with no feedback. Each depends only on
the stored analysis (and, for the SR zip, the scored readings it was computed from), so the
worker builds them right after the analysis (:func:`readers.analysis.services.analysis_compute`
requests :data:`~vbqweb.tasks.BUILD_STUDY_FILES` through the outbox with
:func:`~readers.analysis.services.files_request`) and keeps them in the ``default`` storage
(local disk or S3, like the instances) as :class:`StudyArtifact` rows.

- **The key** (:func:`files_key`) ties a file to what it shows: the analysis' fingerprint and
  time, the study's name and settings, and :data:`FORMAT` (bump it when a template or a builder
  changes what a file holds). A file whose key is not the current one is never served as
  current: the page may show the last built figures marked "out of date" while the new ones are
  built; a download waits on a "preparing… N of M" page.
- **A build that gives up is said**: once the files job ran out of runs, the status JSON, the
  "preparing…" page and the agreement page say the file could not be built and offer a
  recomputation (which asks for the build again) instead of waiting for ever.
- **Idempotent**: a run builds only the kinds whose file is not built for the current key; a
  second delivery finds them built and does nothing.
- **Outside transactions**: the build reads and renders with autocommit (progress and the job's
  heartbeat are written as it goes, so a long SR zip is not presumed dead); only the final
  UPDATE of each file is in a transaction with the heartbeat, after checking that the analysis
  has not changed meanwhile (then the file is dropped: the next run, requested by the new
  analysis, builds the new one). A replaced file is deleted after the commit.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Final

from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from readers.analysis import services as analytics
from readers.analysis.report_tables import ICC_MODELS, REFERENCE_NAMES
from readers.analysis.sr_export import SrCache, study_sr_count, study_sr_members
from readers.models import StudyAnalysis, StudyArtifact
from studies.models import Study
from vbqweb.jobs import job_for_key, job_heartbeat
from vbqweb.models import Job
from vbqweb.storage import storage_delete_tree

logger = logging.getLogger(__name__)

Kind = StudyArtifact.Kind
FORMAT: Final = 1
"""Part of every file's key: bump it when a template or a builder changes what a file holds, so
that files built by the previous code are rebuilt instead of served."""
FIGURES_TEMPLATE: Final = "analytics/_agreement_figures.html"
NONCE_PLACEHOLDER: Final = "vbq-style-nonce-placeholder"
"""The stored printable report's ``<style nonce>``: each response puts its own nonce there."""
EXTENSIONS: Final = {Kind.PAGE: "html", Kind.REPORT: "html", Kind.PDF: "pdf", Kind.SR_ZIP: "zip"}
STEPS: Final = {Kind.PAGE: 2, Kind.REPORT: 2, Kind.PDF: 3}
"""Steps of each file for its progress (the SR zip counts its readings): the report's figures
drawn, then the file rendered (the PDF: its HTML, then WeasyPrint)."""
PROGRESS_EVERY: Final = 0.5
"""Seconds between two writes of the progress (each also the job's heartbeat)."""


def kinds_for(state: StudyAnalysis) -> tuple[str, ...]:
    """The files an analysis has: none before the first one; the SR zip once one was computed
    (even with fewer than two readers); the figures and the reports when it has figures."""
    if state.computed_at is None:
        return ()
    if not state.analysis:
        return (Kind.SR_ZIP,)
    return (Kind.PAGE, Kind.REPORT, Kind.PDF, Kind.SR_ZIP)


def files_key(*, study: Study, state: StudyAnalysis) -> str:
    """What the files of ``state`` depend on, hashed: a different key, a different file."""
    computed = state.computed_at.isoformat() if state.computed_at else None
    inputs = [FORMAT, state.fingerprint, computed, analytics.study_summary(study=study)]
    return hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class FileStatus:
    """Where one file of a study stands, for a view and the status JSON."""

    kind: str
    applies: bool
    """The current analysis has such a file (no figures before two readers' readings)."""
    ready: bool
    """Built for the current analysis: serve ``name`` as it is."""
    name: str
    """The storage name of the last built version, current or not ("" when none)."""
    building: bool
    """A worker is building it for the current analysis now."""
    progress: int
    total: int
    failed: bool = False
    """Not built, and the build has given up (its job ran out of runs): the pages say so and
    offer a recomputation, instead of "preparing…" for ever."""
    asked: bool = False
    """The study's build is on its way or has given up (its job is not done): a page does not
    ask for it again (:func:`files_ensure`)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "applies": self.applies,
            "ready": self.ready,
            "building": self.building,
            "progress": self.progress,
            "total": self.total,
            "failed": self.failed,
        }


def files_status(*, study: Study, state: StudyAnalysis) -> dict[str, FileStatus]:
    """Every kind's status for the stored analysis (one query for the rows, one for the job)."""
    applicable = kinds_for(state)
    key = files_key(study=study, state=state) if applicable else ""
    rows = {row.kind: row for row in StudyArtifact.objects.filter(study=study)}
    job = job_for_key(analytics.files_job_key(study.pk)) if applicable else None
    asked = job is not None and job.state != Job.State.DONE
    gave_up = job is not None and job.state == Job.State.FAILED
    status = {}
    for kind in Kind.values:
        row = rows.get(kind)
        applies = kind in applicable
        ready = bool(applies and row and row.file and row.fingerprint == key)
        building = bool(applies and row and not ready and row.building == key)
        status[kind] = FileStatus(
            kind=kind,
            applies=applies,
            ready=ready,
            name=row.file.name if row and row.file else "",
            building=building,
            progress=row.progress if building and row else 0,
            total=row.total if building and row else STEPS.get(kind, 0),
            failed=bool(gave_up and applies and not ready),
            asked=asked,
        )
    return status


def files_ensure(*, study: Study, status: dict[str, FileStatus]) -> None:
    """Request the build when a file the analysis has is missing and no job is on its way (a
    study analysed before this feature, or renamed since its files were built). Not after a
    failed build: a page polled every second must not make the worker fail every second (the
    next analysis, or a recomputation asked for on the page, tries again)."""
    if all(s.ready or not s.applies for s in status.values()):
        return
    if not any(s.asked for s in status.values()):
        analytics.files_request(study_pk=study.pk)


def file_storage() -> Storage:
    storage: Storage = StudyArtifact._meta.get_field("file").storage
    return storage


def study_folder(study_pk: int) -> str:
    """Where every file built for the study is stored (its figures, reports, SRs)."""
    return f"generated/study-{study_pk}"


def files_erase(*, study_pk: int) -> None:
    """Delete every file built for a deleted study.

    Why: they hold the study's readings (reports, SRs), and deleting the study's rows leaves
    files behind (the per-reading SRs have no row at all). Called after the deletion commits
    (``readers.signals``), and again by a build that finds its study deleted meanwhile
    (:func:`files_build`: it may have stored SRs after the first erasure). Never raises: a
    file left behind is logged.
    """
    try:
        storage_delete_tree(file_storage(), study_folder(study_pk))
    except Exception:
        logger.warning("study %s: its built files not all deleted", study_pk, exc_info=True)


def file_open(status: FileStatus) -> IO[bytes]:
    """The stored file, open for reading (served as it is)."""
    return file_storage().open(status.name, "rb")


# --- building (the worker) -----------------------------------------------------------------


class _Superseded(Exception):
    """The analysis changed while a file was built: the file shows the old one; drop it."""


class _Progress:
    """Writes a row's progress (and the job's heartbeat) at most every :data:`PROGRESS_EVERY`."""

    def __init__(self, pk: int) -> None:
        self.pk = pk
        self.written = 0.0

    def __call__(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.written >= PROGRESS_EVERY:
            job_heartbeat()
            StudyArtifact.objects.filter(pk=self.pk).update(progress=done)
            self.written = now


def report_context_for(*, study: Study, state: StudyAnalysis, document: dict) -> dict[str, Any]:
    """The printable report's context (figures drawn): the costly part of the page and PDF."""
    from readers.analysis.report import report_context

    return report_context(
        study=analytics.study_summary(study=study),
        records=state.records,
        analysis=document,
        diagnostics=state.diagnostics,
        generated_at=state.computed_at or timezone.now(),
    )


def figures_html(*, state: StudyAnalysis, document: dict, report: dict[str, Any]) -> str:
    """The agreement page's heavy fragment (every table and figure), without a request."""
    html: str = render_to_string(
        FIGURES_TEMPLATE,
        {
            "analysis": document,
            "report": report,
            "diagnostics": state.diagnostics,
            "icc_models": ICC_MODELS,
            "reference_names": REFERENCE_NAMES,
        },
    )
    return html


def sr_zip_write(
    study: Study,
    target: IO[bytes],
    *,
    tick: Callable[[int], None] | None = None,
    cache: SrCache | None = None,
) -> int:
    """Write the study's SR files into ``target`` as a zip; return how many."""
    count = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in study_sr_members(study=study, cache=cache):
            archive.writestr(name, data)
            count += 1
            if tick is not None:
                tick(count)
    return count


class _StoredSrs:
    """Each reading's SR kept in the store (``generated/study-<pk>/sr/``) under its identity,
    so that the next SR zip builds only the SRs of new or changed readings; :meth:`prune`
    deletes the ones this build did not use."""

    def __init__(self, study: Study) -> None:
        self.storage = file_storage()
        self.folder = f"{study_folder(study.pk)}/sr"
        self.used: set[str] = set()

    def __call__(self, identity: str, build: Callable[[], bytes]) -> bytes:
        name = f"{self.folder}/{identity}.dcm"
        self.used.add(name.rsplit("/", 1)[1])
        if self.storage.exists(name):
            with self.storage.open(name, "rb") as fh:
                data: bytes = fh.read()
            return data
        data = build()
        self.storage.save(name, io.BytesIO(data))
        return data

    def prune(self) -> None:
        try:
            _, files = self.storage.listdir(self.folder)
        except FileNotFoundError:
            return
        for stale in set(files) - self.used:
            _delete(self.storage, f"{self.folder}/{stale}")


def files_build(*, study_pk: int) -> list[str]:
    """Build every file of the study's stored analysis that is not built for it; return the
    kinds built. Idempotent; run by the worker (``readers.tasks.build_study_files``)."""
    study = Study.objects.filter(pk=study_pk).first()
    if study is None:
        return []
    state = analytics.analysis_state(study=study)
    key = files_key(study=study, state=state)
    status = files_status(study=study, state=state)
    todo = [kind for kind in kinds_for(state) if not status[kind].ready]
    if not todo:
        return []
    rows: dict[str, int] = {}
    for kind in todo:
        row, _ = StudyArtifact.objects.get_or_create(study=study, kind=kind)
        total = STEPS[kind] if kind in STEPS else study_sr_count(study=study)
        StudyArtifact.objects.filter(pk=row.pk).update(
            building=key, progress=0, total=total, started_at=timezone.now()
        )
        rows[kind] = row.pk
    built: list[str] = []
    try:
        _build_documents(study, state, key, todo, rows, built)
        if Kind.SR_ZIP in todo:
            tick = _Progress(rows[Kind.SR_ZIP])
            stored = _StoredSrs(study)
            with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as spool:
                count = sr_zip_write(study, spool, tick=tick, cache=stored)
                tick(count, force=True)
                spool.seek(0)
                _store(study, key, Kind.SR_ZIP, rows[Kind.SR_ZIP], spool)
            built.append(Kind.SR_ZIP)
            stored.prune()
    except _Superseded:
        logger.info("study %s: the analysis changed while its files were built", study.pk)
    except Study.DoesNotExist:
        # Deleted while built: the erasure after its deletion ran before this run stored the
        # rest (the per-reading SRs), so what is left goes now.
        logger.info("study %s was deleted while its files were built", study_pk)
        files_erase(study_pk=study_pk)
        return []
    return built


def _build_documents(
    study: Study,
    state: StudyAnalysis,
    key: str,
    todo: list[str],
    rows: dict[str, int],
    built: list[str],
) -> None:
    """The figures fragment, the printable report and its PDF, sharing one drawn context."""
    documents = [kind for kind in (Kind.PAGE, Kind.REPORT, Kind.PDF) if kind in todo]
    if not documents:
        return
    from readers.analysis.report import render_report_html, render_report_pdf

    document = analytics.analysis_document(state=state)
    report = report_context_for(study=study, state=state, document=document)
    ticks = {kind: _Progress(rows[kind]) for kind in documents}
    for tick in ticks.values():
        tick(1, force=True)
    if Kind.PAGE in ticks:
        html = figures_html(state=state, document=document, report=report)
        _store(study, key, Kind.PAGE, rows[Kind.PAGE], io.BytesIO(html.encode()))
        built.append(Kind.PAGE)
    if Kind.REPORT in ticks or Kind.PDF in ticks:
        html = render_report_html(report | {"style_nonce": NONCE_PLACEHOLDER})
        if Kind.REPORT in ticks:
            _store(study, key, Kind.REPORT, rows[Kind.REPORT], io.BytesIO(html.encode()))
            built.append(Kind.REPORT)
        if Kind.PDF in ticks:
            ticks[Kind.PDF](2, force=True)
            pdf = render_report_pdf(html.replace(f' nonce="{NONCE_PLACEHOLDER}"', "", 1))
            _store(study, key, Kind.PDF, rows[Kind.PDF], io.BytesIO(pdf))
            built.append(Kind.PDF)


def _store(study: Study, key: str, kind: str, pk: int, content: IO[bytes]) -> None:
    """Save the file, then point the row at it if the analysis is still the one it shows."""
    storage = file_storage()
    content.seek(0, io.SEEK_END)
    size = content.tell()
    content.seek(0)
    name = storage.save(
        f"{study_folder(study.pk)}/{kind}-{key[:16]}.{EXTENSIONS[kind]}", File(content)
    )
    try:
        with transaction.atomic():
            job_heartbeat()  # still this run's job: a replaced run writes nothing
            fresh = Study.objects.get(pk=study.pk)
            state = analytics.analysis_state(study=fresh)
            if files_key(study=fresh, state=state) != key:
                raise _Superseded
            row = StudyArtifact.objects.select_for_update().get(pk=pk)
            old = row.file.name if row.file else ""
            StudyArtifact.objects.filter(pk=pk).update(
                fingerprint=key,
                file=name,
                size=size,
                built_at=timezone.now(),
                building="",
                progress=F("total"),
            )
            if old and old != name:
                transaction.on_commit(lambda: _delete(storage, old))
    except BaseException:
        _delete(storage, name)
        raise


def _delete(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception:  # a file left behind costs space, never a wrong answer
        logger.warning("could not delete the replaced file %s", name, exc_info=True)
