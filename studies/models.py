"""Studies, their roles, cases and de-identified images.

A study holds its measurement settings (spec §1): they are data, never constants in code, so
that two studies on one site can measure differently and the method is stored with the results.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Literal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Statistic(models.TextChoices):
    MEDIAN = "median", "Median"
    MEAN = "mean", "Mean"


def _eligibility_limit(
    parameter: Literal["TR", "TE"], end: Literal["lower", "upper"], default: float
) -> models.FloatField:
    """One end of the T1 spin-echo TR or TE range a series must be in to be eligible (ms).

    Why a function: the study's four range fields differ only in the parameter, the end and the
    default. It passes the same arguments the fields had when written out, so their
    deconstruction, and with it the migration state, is unchanged.
    """
    return models.FloatField(
        default=default,
        validators=[MinValueValidator(0.0)],
        verbose_name=f"{parameter} {'from' if end == 'lower' else 'to'} (ms)",
        help_text=f"Series eligibility: the T1 spin-echo {parameter} range, {end} end.",
    )


AE_TITLE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Upper-case letters and digits without look-alikes (I/1, O/0): read off a page into a PACS."""


def new_ae_title() -> str:
    """A study's called AE title for the DICOM receiver: ``VBQ`` + 10 random characters.

    Random rather than derived from the study's id, so that a sender cannot reach another study
    by counting (DICOM networking has no passwords: the AE title and the network are what a
    PACS operator configures). 13 characters: within the 16 an AE title allows.
    """
    return "VBQ" + "".join(secrets.choice(AE_TITLE_ALPHABET) for _ in range(10))


class ScoreVisibility(models.TextChoices):
    """When a reader sees the VBQ of their own reading (issue 13)."""

    HIDDEN = "hidden", "Hidden from readers"
    AFTER_SUBMIT = "after_submit", "Shown after submit"
    LIVE = "live", "Live while drafting"


class Study(models.Model):
    """A reader study: a set of cases read by several blinded readers in one or more sessions."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    roi_statistic = models.CharField(
        max_length=10,
        choices=Statistic.choices,
        default=Statistic.MEDIAN,
        help_text="How one ROI's pixels become its signal intensity.",
    )
    level_aggregate = models.CharField(
        max_length=10,
        choices=Statistic.choices,
        default=Statistic.MEDIAN,
        help_text="How the L1–L4 signal intensities are combined into the numerator.",
    )
    min_levels = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(4)],
        help_text="Fewer measured (non-excluded) levels than this: the score is not computed.",
    )
    sessions = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Number of reading sessions per reader (2 or more for intra-reader agreement).",
    )
    washout_days = models.PositiveSmallIntegerField(
        default=28, help_text="Days between the end of a reader's session and the next."
    )
    allow_edit_after_submit = models.BooleanField(
        default=False, help_text="Whether readers may change a reading after submitting it."
    )
    randomise_order = models.BooleanField(
        default=True,
        help_text="Show each reader the cases in their own random order, new in every session.",
    )
    # Issue 13: what a reader sees of the score, and the quality checks before submit.
    score_visibility = models.CharField(
        max_length=16,
        choices=ScoreVisibility.choices,
        default=ScoreVisibility.AFTER_SUBMIT,
        help_text="When readers see their own VBQ: a live score lets a reader nudge ROIs across "
        "a threshold, so by default it shows only once the reading is submitted.",
    )
    min_bone_roi_area_mm2 = models.FloatField(
        default=50.0,
        validators=[MinValueValidator(0.0)],
        help_text="Before submit, a vertebral-body ROI smaller than this (mm²) is questioned.",
    )
    plausible_vbq_min = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0)],
        help_text="Before submit, a VBQ below this is questioned.",
    )
    plausible_vbq_max = models.FloatField(
        default=6.0,
        validators=[MinValueValidator(0.0)],
        help_text="Before submit, a VBQ above this is questioned.",
    )
    # Issue 14: adjudication of disagreeing readings (off by default) and the planned precision.
    adjudication = models.BooleanField(
        default=False,
        help_text="Send a case to an adjudicator once every reader of a session has submitted "
        "it and the readers disagree.",
    )
    adjudication_threshold = models.ForeignKey(
        "Threshold",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Readers whose categories differ at this threshold disagree.",
    )
    adjudication_use_sdc = models.BooleanField(
        default=True,
        help_text="Readers also disagree when their VBQ range exceeds the smallest detectable "
        "change (inter-reader SDC of agreement).",
    )
    planned_icc = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
        help_text="The inter-reader ICC the study expects (for planning, Bonett 2002).",
    )
    target_ci_width = models.FloatField(
        default=0.2,
        validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
        help_text="The width of the ICC's 95 % confidence interval the study aims for.",
    )
    # Issue 15: the called AE title a PACS sends this study's cases to (studies.receiver).
    ae_title = models.CharField(
        "called AE title",
        max_length=16,
        unique=True,
        default=new_ae_title,
        editable=False,
        help_text="The AE title a PACS sends this study's cases to (the DICOM receiver).",
    )
    ingest_tr_min_ms = _eligibility_limit("TR", "lower", 300.0)
    ingest_tr_max_ms = _eligibility_limit("TR", "upper", 1000.0)
    ingest_te_min_ms = _eligibility_limit("TE", "lower", 5.0)
    ingest_te_max_ms = _eligibility_limit("TE", "upper", 30.0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_levels__gte=1, min_levels__lte=4),
                name="study_min_levels_1_to_4",
            ),
            models.CheckConstraint(condition=models.Q(sessions__gte=1), name="study_sessions_ge_1"),
            models.CheckConstraint(
                condition=models.Q(ingest_tr_min_ms__lte=models.F("ingest_tr_max_ms"))
                & models.Q(ingest_te_min_ms__lte=models.F("ingest_te_max_ms")),
                name="study_ingest_ranges_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def eligibility_settings(self) -> dict[str, tuple[float, float]]:
        """Keyword arguments of ``studies.ingest.eligibility.classify_series`` for this study."""
        return {
            "tr_range_ms": (self.ingest_tr_min_ms, self.ingest_tr_max_ms),
            "te_range_ms": (self.ingest_te_min_ms, self.ingest_te_max_ms),
        }

    def measurement_settings(self) -> dict[str, object]:
        """The keyword arguments of ``readers.measurement.measure.measure_vbq`` for this study."""
        return {
            "roi_statistic": self.roi_statistic,
            "level_aggregate": self.level_aggregate,
            "min_levels": self.min_levels,
        }


class Threshold(models.Model):
    """A named VBQ cut-off; a reading's category is ``vbq >= value`` (spec §1 and §3)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="thresholds")
    name = models.SlugField(max_length=50, help_text="e.g. 'screening' or 'fracture-risk'.")
    value = models.FloatField(validators=[MinValueValidator(0.0)])
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["study", "value", "name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="threshold_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ≥ {self.value:g}"


def new_order_seed() -> int:
    return secrets.randbits(31)


class Role(models.TextChoices):
    MANAGER = "manager", "Study manager"
    READER = "reader", "Reader"
    ADJUDICATOR = "adjudicator", "Adjudicator"


class Assignment(models.Model):
    """A user's role in one study: the single source of truth for who may see what.

    A user holds at most one role per study: a manager sees every reader's scores and the
    agreement, so a manager who also read would not be blind.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_assignments"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    order_seed = models.PositiveIntegerField(
        default=new_order_seed,
        help_text="Seeds this reader's case order (a new order per session, reproducibly).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "role", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="assignment_one_role_per_study")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.study}"


class CaseSet(models.Model):
    """One batch of cases brought into a study (an upload, or the demo's phantom)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="case_sets")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["study", "created_at"]

    def __str__(self) -> str:
        return self.name


class Case(models.Model):
    """One de-identified patient examination in a study.

    ``label`` is what readers see; it is a pseudonym, never a source identifier.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="cases")
    case_set = models.ForeignKey(
        CaseSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases"
    )
    label = models.CharField(max_length=64)
    study_instance_uid = models.CharField(max_length=64, help_text="De-identified (2.25.…).")
    patient_pseudonym = models.CharField(
        max_length=64,
        blank=True,
        help_text="The de-identified Patient ID (an HMAC pseudonym), never the source ID.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "label"]
        constraints = [
            models.UniqueConstraint(fields=["study", "label"], name="case_unique_label"),
            models.UniqueConstraint(
                fields=["study", "study_instance_uid"], name="case_unique_study_uid"
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def reading_series(self) -> Series | None:
        """The series readers measure on (the selected eligible one), if any."""
        return self.series.filter(selected=True).first()


class Series(models.Model):
    """A de-identified series, with what eligibility and analysis need from its headers.

    Field strength, TR/TE and vendor are kept because VBQ differs markedly between them.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64, unique=True)
    modality = models.CharField(max_length=16, default="MR")
    description = models.CharField(max_length=200, blank=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    model_name = models.CharField(max_length=128, blank=True)
    field_strength_t = models.FloatField(null=True, blank=True)
    repetition_time_ms = models.FloatField(null=True, blank=True)
    echo_time_ms = models.FloatField(null=True, blank=True)
    selected = models.BooleanField(
        default=False, help_text="The series readers measure on (one per case)."
    )
    upload = models.ForeignKey(
        "Upload",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="series_created",
        help_text="The upload that created it (what a failed ingest removes again).",
    )
    orientation = models.CharField(max_length=16, blank=True)
    n_instances = models.PositiveIntegerField(default=0)
    eligible = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether the series can be read for VBQ (None: not judged).",
    )
    eligibility = models.JSONField(
        default=dict,
        blank=True,
        help_text="Every rule, passed and failed, with its reason (classify_series().to_dict()).",
    )
    eligibility_overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    override_reason = models.CharField(max_length=500, blank=True)
    overridden_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case", "series_instance_uid"]
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(selected=True),
                name="series_one_selected_per_case",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case} / {self.description or self.series_instance_uid}"

    @property
    def tr_te_label(self) -> str:
        """``TR / TE`` in ms as a person writes them (``551 / 14.9``), ``—`` when unknown."""

        def ms(value: float | None) -> str:
            return "—" if value is None else f"{round(value, 2):g}"

        return f"{ms(self.repetition_time_ms)} / {ms(self.echo_time_ms)}"


def instance_upload_to(instance: Instance, filename: str) -> str:
    """Store by de-identified UIDs only: no source file or folder name ever reaches storage."""
    series = instance.series
    return (
        f"instances/{series.case.study_id}/{series.series_instance_uid}/"
        f"{instance.sop_instance_uid}.dcm"
    )


class InstanceQuerySet(models.QuerySet["Instance"]):
    def readable(self) -> InstanceQuerySet:
        """What readers may see: never a quarantined instance (possible burned-in text)."""
        return self.filter(quarantined=False)


class Instance(models.Model):
    """One de-identified DICOM file, stored through Django's storage API.

    A *quarantined* instance (declared or suspected burned-in annotation) is stored for a site
    admin but never shown to readers: use ``series.instances.readable()`` for them.
    """

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    upload = models.ForeignKey(
        "Upload",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="instances",
        help_text="The upload that stored it (what a failed ingest removes again).",
    )
    quarantined = models.BooleanField(default=False)
    quarantine_reason = models.CharField(max_length=200, blank=True)
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    file = models.FileField(upload_to=instance_upload_to, max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)

    objects = InstanceQuerySet.as_manager()

    class Meta:
        ordering = ["series", "instance_number", "sop_instance_uid"]

    def __str__(self) -> str:
        return self.sop_instance_uid


class ReferenceStandard(models.Model):
    """A case's optional reference values, for the diagnostic analysis (spec §1)."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="reference")
    dxa_t_score = models.FloatField(null=True, blank=True, verbose_name="DXA T-score")
    qct_bmd = models.FloatField(null=True, blank=True, verbose_name="QCT BMD (mg/cm³)")
    fragility_fracture = models.BooleanField(null=True, blank=True)
    attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text="Other case attributes imported with the reference standard (name → text), "
        "by which the agreement is stratified.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"reference of {self.case}"


class UploadStatus(models.TextChoices):
    RECEIVING = "receiving", "Receiving files"
    QUEUED = "queued", "Waiting for the worker"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Upload(models.Model):
    """A case set on its way in: the transfer, the queued ingest, and its report.

    "Finish" commits ``status = queued`` together with the ingest's job in the site's outbox
    (:mod:`vbqweb.jobs`, which sends it, sends it again and records where it is), so a broker
    that is down or hung loses nothing; the task claims the row with a conditional UPDATE, so
    it runs once however often it is sent. Nothing here holds a source file or folder name:
    the bytes wait in the ``staging`` storage (``VBQ_UPLOAD_ROOT`` on local disk, ``staging/`` in
    the S3 bucket) under ``<id>/`` and server-chosen names (:mod:`studies.uploads.staging`).
    """

    # What URLs and the browser see instead of the sequential pk (issue 12): not guessable.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(
        max_length=200, help_text="The case set's name, typed by the manager (not a file name)."
    )
    case_set = models.ForeignKey(
        CaseSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    status = models.CharField(
        max_length=12, choices=UploadStatus.choices, default=UploadStatus.RECEIVING
    )
    # Transfer (browser -> server).
    files_total_expected = models.PositiveIntegerField(default=0)
    bytes_total_expected = models.PositiveBigIntegerField(default=0)
    files_received = models.PositiveIntegerField(default=0)
    bytes_received = models.PositiveBigIntegerField(default=0)
    # Processing (worker): sources are files and zip members.
    sources_total = models.PositiveIntegerField(default=0)
    files_processed = models.PositiveIntegerField(default=0)
    files_rejected = models.PositiveIntegerField(default=0)
    files_duplicate = models.PositiveIntegerField(default=0)
    files_quarantined = models.PositiveIntegerField(default=0)
    instances_stored = models.PositiveIntegerField(default=0)
    cases_created = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    # The ingest's runs (its sending is the outbox job's: studies.uploads.outbox).
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times the task claimed it.")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="upload_status_heartbeat")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display().lower()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (UploadStatus.DONE, UploadStatus.FAILED, UploadStatus.CANCELLED)


class ItemStatus(models.TextChoices):
    ACCEPTED = "accepted", "Stored"
    QUARANTINED = "quarantined", "Quarantined"
    DUPLICATE = "duplicate", "Duplicate"
    REJECTED = "rejected", "Rejected"


class UploadItem(models.Model):
    """What became of one source (a file, or a zip member) of an upload.

    Identified by positions only: ``file_index`` is the file's place in what the browser sent
    (the page maps it back to a name while it still holds the files), ``member_index`` its place
    in a zip. The source's name is never stored: names carry identifiers.
    """

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(help_text="1-based, in processing order.")
    file_index = models.PositiveIntegerField()
    member_index = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ItemStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True, help_text="The new UID.")
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["upload", "position"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "position"], name="upload_item_position")
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.status}"


class AttachStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for the worker"
    COPYING = "copying", "Copying"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class CaseSetAttach(models.Model):
    """A case set of another study being copied into this one by the worker, with its progress
    (``studies.casesets``; why not an :class:`Upload`: docs/ingest.md, "One examination in two
    studies"). ``case_set`` is the copy, set once its first case is copied."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="case_set_attaches")
    source = models.ForeignKey(CaseSet, null=True, on_delete=models.SET_NULL, related_name="+")
    case_set = models.ForeignKey(CaseSet, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200, help_text="The source set's name (the copy's).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=12, choices=AttachStatus, default=AttachStatus.QUEUED)
    cases_total = models.PositiveIntegerField(default=0)
    cases_copied = models.PositiveIntegerField(default=0)
    cases_skipped = models.PositiveIntegerField(default=0)
    instances = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"attach {self.name} ({self.get_status_display().lower()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (AttachStatus.DONE, AttachStatus.FAILED)
