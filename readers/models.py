"""Readings and their results.

A reading is one reader's measurement of one case in one session. Its ROI set is stored as the
spec's ``vbq.rois/1`` JSON, versioned: every save bumps ``roi_version``, and each result records
the version it was computed from. A late task for an old version therefore writes a result that
is simply not current, and can never overwrite the score of a newer edit.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from studies.models import Case


class Reading(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"

    # What URLs and the browser see instead of the sequential pk (issue 12): random, so that one
    # reading's address says nothing about how many others exist or where to find them.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="readings"
    )
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="readings")
    session = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    rois = models.JSONField(null=True, blank=True, help_text="The ROI set, spec vbq.rois/1.")
    roi_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Issue 13: the reader's active time (visible tab, input within the last minute) and the
    # quality warnings they confirmed at submit, kept with the reading for the downloads.
    active_seconds = models.FloatField(default=0.0)
    level_seconds = models.JSONField(
        default=dict, blank=True, help_text="Active seconds per label (L1…L4, CSF)."
    )
    quality_confirmed = models.JSONField(
        default=list,
        blank=True,
        help_text="The quality warnings shown before submit that the reader confirmed.",
    )

    class Meta:
        ordering = ["case", "session", "reader__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["reader", "case", "session"], name="reading_one_per_reader_case_session"
            ),
            models.CheckConstraint(condition=models.Q(session__gte=1), name="reading_session_ge_1"),
        ]

    def __str__(self) -> str:
        return f"{self.case} · {self.reader} · session {self.session}"

    @property
    def is_locked(self) -> bool:
        return self.status == self.Status.SUBMITTED

    def current_result(self) -> VbqResult | None:
        """The result computed from the ROI set as it is now; None while it is pending.

        The one definition of "current" for pages, exports, SR and the analysis. When the
        caller prefetched ``results`` (lists of readings), it is answered from that cache, so a
        list costs one query for all its results rather than one per reading.
        """
        cached = getattr(self, "_prefetched_objects_cache", {}).get("results")
        if cached is not None:
            current = [r for r in cached if r.roi_version == self.roi_version]
            return max(current, key=lambda r: r.computed_at, default=None)
        return self.results.filter(roi_version=self.roi_version).order_by("-computed_at").first()


class ReadingRevision(models.Model):
    """One saved version of a reading's ROI set, kept for good.

    ``Reading.rois`` holds only the current set; a study that allows edits after submission must
    still show what was submitted and what changed since (the issue: "later edits only where
    the study allows, with history kept"). Written by ``readers.services.reading_save_rois`` in
    the transaction that bumps ``roi_version``, so versions and revisions never disagree.
    """

    reading = models.ForeignKey(Reading, on_delete=models.CASCADE, related_name="revisions")
    roi_version = models.PositiveIntegerField()
    rois = models.JSONField(help_text="The ROI set as saved, spec vbq.rois/1.")
    saved_at = models.DateTimeField(auto_now_add=True)
    after_submit = models.BooleanField(
        default=False, help_text="Saved while the reading was already submitted."
    )

    class Meta:
        ordering = ["reading", "roi_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["reading", "roi_version"], name="readingrevision_one_per_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reading} · v{self.roi_version}"


class VbqResult(models.Model):
    """The server's computation of one reading at one ROI version.

    ``detail`` holds the full output of ``readers.measurement.measure.measure_vbq`` (every
    level's median, mean, sd, n and area), so downloads can reproduce either the median or the mean
    convention.
    """

    class Status(models.TextChoices):
        OK = "ok", "Computed"
        NOT_COMPUTED = "not_computed", "Not computed"
        ERROR = "error", "Error"

    reading = models.ForeignKey(Reading, on_delete=models.CASCADE, related_name="results")
    roi_version = models.PositiveIntegerField()
    algorithm_version = models.CharField(max_length=20)
    status = models.CharField(max_length=16, choices=Status.choices)
    vbq = models.FloatField(null=True, blank=True)
    numerator = models.FloatField(null=True, blank=True)
    csf_si = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True, help_text="Why the score is missing, when it is.")
    method = models.JSONField(default=dict)
    detail = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reading", "-roi_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["reading", "roi_version", "algorithm_version"],
                name="vbqresult_one_per_version",
            )
        ]

    def __str__(self) -> str:
        score = f"{self.vbq:.3f}" if self.vbq is not None else self.get_status_display()
        return f"{self.reading}: {score}"


class StudyAnalysis(models.Model):
    """The latest agreement analysis of a study, and the state of its recomputation.

    ``records`` are exactly the rows the statistics were computed from (one per submitted,
    scored reading) and ``analysis`` their summary (every figure but the per-pair ones, which
    :class:`StudyAnalysisDetail` holds), so that the page, the downloads and the report always
    show one consistent analysis, and ``fingerprint`` identifies them: when the study's
    readings no longer hash to it, the page says the figures are stale. ``claimed_at`` says a
    recomputation is on its way (set by a request, cleared by the computation that saw every
    request): the claim itself is the study's job in the outbox (``vbqweb.jobs``), which
    coalesces a burst of changes into
    one debounced run and runs one computation at a time.
    """

    study = models.OneToOneField("studies.Study", on_delete=models.CASCADE, related_name="analysis")
    claimed_at = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    records = models.JSONField(default=list)
    analysis = models.JSONField(default=dict)
    diagnostics = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "study analyses"

    def __str__(self) -> str:
        return f"analysis of {self.study}"


class StudyAnalysisDetail(models.Model):
    """The whole agreement document, per-pair detail included, for one set of analysed rows.

    Why apart: the pairs grow with readers² (1,225 pairs at 50 readers: ~3 s of CPU and ~13 MB
    of JSON for 50 × 20 readings), so the recomputation after submissions stores only the
    summary in ``StudyAnalysis.analysis``; this document is built from the stored ``records``
    when a manager first asks for it (page, report, download) and kept for that
    ``fingerprint``, so it is computed and written once per set of rows, never on every
    recomputation, and loading ``StudyAnalysis`` never drags it along.
    """

    state = models.OneToOneField(StudyAnalysis, on_delete=models.CASCADE, related_name="detail")
    fingerprint = models.CharField(max_length=64)
    document = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"agreement detail of {self.state.study}"


class StudyArtifact(models.Model):
    """A file built from a study's stored analysis in the worker and served at once (issue 13).

    Why: the agreement page's figures, the PDF report and the SR zip took seconds to tens of
    seconds to build on every request. The worker builds each once per analysis
    (``readers.analysis.artifacts``) and keeps it in the ``default`` storage (local disk or S3)
    under ``fingerprint``, the key of the analysis it shows; a view serves it only while that key
    is the current one. One row per study and kind: ``file`` is the last built version (shown
    "out of date" while a new one is built), ``building`` the key being built now, with its
    ``progress`` of ``total`` steps for the "preparing…" page.
    """

    class Kind(models.TextChoices):
        PAGE = "page", "agreement figures"
        REPORT = "report", "printable report"
        PDF = "pdf", "PDF report"
        SR_ZIP = "sr_zip", "DICOM SR zip"

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    fingerprint = models.CharField(max_length=64, blank=True)
    file = models.FileField(upload_to="generated/", max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    built_at = models.DateTimeField(null=True, blank=True)
    building = models.CharField(max_length=64, blank=True)
    progress = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "kind"], name="one_artifact_per_study_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.study}"


class Consensus(models.Model):
    """The adjudicated VBQ of one case in one session (issue 14, ``readers/adjudication``).

    Why stored, when the worklist is computed: the worklist can always be recomputed from the
    readings, but a decision cannot, so the decision is kept with its provenance. Either the
    adjudicator accepted one reader's reading (``accepted_reading``, shown to them as
    ``accepted_label``, e.g. "Reader B"; ``vbq`` is that reading's score at the moment of the
    decision), or measured anew: ``measured_reading`` is then a Reading owned by the
    adjudicator, scored by the normal pipeline, and never counted among the readers' readings
    in the agreement (``readers.analysis`` leaves out every reading linked here); its current
    score is the consensus VBQ once it is submitted. Defined here, not in ``readers/adjudication``,
    because a model module there would make ``readers.models`` and that package import each
    other (the ``acyclic_siblings`` import contract).
    """

    class Source(models.TextChoices):
        ACCEPTED = "accepted", "Accepted a reader's reading"
        MEASURED = "measured", "Measured anew by the adjudicator"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="consensuses")
    session = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    source = models.CharField(max_length=10, choices=Source.choices)
    accepted_reading = models.ForeignKey(
        Reading, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_label = models.CharField(max_length=20, blank=True)
    measured_reading = models.OneToOneField(
        Reading,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="adjudication_consensus",
    )
    vbq = models.FloatField(null=True, blank=True)
    roi_version = models.PositiveIntegerField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["case", "session"]
        verbose_name_plural = "consensuses"
        constraints = [
            models.UniqueConstraint(fields=["case", "session"], name="consensus_one_per_case")
        ]

    def __str__(self) -> str:
        return f"consensus {self.case} · session {self.session}"

    @property
    def provenance(self) -> str:
        """What a manager reads: "accepted Reader B's reading" or "measured anew"."""
        if self.source == self.Source.ACCEPTED:
            return f"accepted {self.accepted_label}'s reading"
        return "measured anew"

    def current_vbq(self) -> float | None:
        """The consensus VBQ: the accepted score, or the adjudicator's submitted measurement's
        current score (None while it is drafted or being scored)."""
        if self.source == self.Source.ACCEPTED:
            return self.vbq
        reading = self.measured_reading
        if reading is None or not reading.is_locked:
            return None
        result = reading.current_result()
        return result.vbq if result is not None else None
