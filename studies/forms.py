"""Forms of the study managers' pages: they validate; services write (``studies.services``)."""

from __future__ import annotations

import math
import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import MinValueValidator

from studies.models import Assignment, Case, Role, Study
from studies.selectors import assignment_candidates, study_sessions_problem
from studies.services import DESIGN_FIELDS
from studies.stats.reference_csv import ReferenceCsvError, ReferenceRow, parse_reference_csv

LITERATURE_THRESHOLDS = [
    {"name": "screening", "value": 2.95},
    {"name": "osteoporosis", "value": 3.0},
    {"name": "fracture", "value": 3.05},
]
"""Offered, editable, on the create form only (spec §1: seeds' screening cut-off 2.95–3.06,
osteoporosis ≥ 3.0, fragility-fracture risk ≥ 3.05). Nothing else reads these numbers: a study's
thresholds are its own data."""

REFERENCE_CSV_MAX_BYTES = 2 * 1024 * 1024


class StudyForm(forms.ModelForm):
    """A study's design. Used for validation only: ``study_create_with_manager`` and
    ``study_update`` write (the form is never ``save()``d)."""

    class Meta:
        model = Study
        fields = list(DESIGN_FIELDS)
        widgets = {
            "name": forms.TextInput(attrs={"autofocus": True}),
            "description": forms.Textarea(attrs={"rows": 3}),
            "min_levels": forms.NumberInput(attrs={"min": 1, "max": 4}),
            "sessions": forms.NumberInput(attrs={"min": 1, "max": 10}),
            "washout_days": forms.NumberInput(attrs={"min": 0}),
            "min_bone_roi_area_mm2": forms.NumberInput(attrs={"min": 0, "step": 1}),
            "plausible_vbq_min": forms.NumberInput(attrs={"min": 0, "step": 0.1}),
            "plausible_vbq_max": forms.NumberInput(attrs={"min": 0, "step": 0.1}),
            "planned_icc": forms.NumberInput(attrs={"min": 0.01, "max": 0.99, "step": 0.01}),
            "target_ci_width": forms.NumberInput(attrs={"min": 0.01, "max": 0.99, "step": 0.01}),
        }
        labels = {
            "roi_statistic": "ROI statistic",
            "min_levels": "Minimum levels",
            "washout_days": "Wash-out (days)",
            "allow_edit_after_submit": "Readers may edit a reading after submitting it",
            "randomise_order": "Randomise each reader's case order (new in every session)",
            "score_visibility": "Readers see their own VBQ",
            "min_bone_roi_area_mm2": "Smallest bone ROI (mm²)",
            "plausible_vbq_min": "Plausible VBQ from",
            "plausible_vbq_max": "Plausible VBQ up to",
            "adjudication": "Adjudicate disagreeing cases",
            "adjudication_threshold": "Disagreement at threshold",
            "adjudication_use_sdc": "Also when the readers' VBQ range exceeds the SDC",
            "planned_icc": "Expected inter-reader ICC",
            "target_ci_width": "Target width of the ICC's 95 % CI",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Adjudication (issue 14): only this study's own thresholds (none before it has any).
        for name in self.QUALITY_LIMITS:
            self.fields[name].required = False
        # Score visibility (issue 13): a post without it (a script's) keeps the study's setting.
        self.fields["score_visibility"].required = False
        for name in self.PLANNING:  # issue 14 item 4: left out, they keep the study's values
            self.fields[name].required = False
        field = self.fields["adjudication_threshold"]
        pk = self.instance.pk
        field.queryset = field.queryset.filter(study_id=pk) if pk else field.queryset.none()  # type: ignore[attr-defined]

    QUALITY_LIMITS = ("min_bone_roi_area_mm2", "plausible_vbq_min", "plausible_vbq_max")
    """Issue 13's quality-check limits: left empty, a limit keeps its value (or default)."""
    PLANNING = ("planned_icc", "target_ci_width")
    """Issue 14's planning values (Bonett 2002): left empty, they keep their value (or default)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in (*self.QUALITY_LIMITS, *self.PLANNING):
            if cleaned.get(name) is None and name not in self.errors:
                cleaned[name] = getattr(self.instance, name)
        if not cleaned.get("score_visibility") and "score_visibility" not in self.errors:
            cleaned["score_visibility"] = self.instance.score_visibility
        low, high = cleaned.get("plausible_vbq_min"), cleaned.get("plausible_vbq_max")
        if low is not None and high is not None and low >= high:
            self.add_error(
                "plausible_vbq_max", "The plausible range needs its upper end above its lower end."
            )
        if (
            cleaned.get("adjudication")
            and cleaned.get("adjudication_threshold") is None
            and not cleaned.get("adjudication_use_sdc")
        ):
            self.add_error(
                "adjudication_threshold",
                "Adjudication needs a rule: choose a threshold, or the SDC rule, or both.",
            )
        return cleaned

    def clean_sessions(self) -> int:
        sessions: int = self.cleaned_data["sessions"]
        if self.instance.pk is not None and (
            problem := study_sessions_problem(study=self.instance, sessions=sessions)
        ):
            raise forms.ValidationError(problem)
        return sessions

    def settings(self) -> dict[str, Any]:
        """The cleaned design fields, as keyword arguments of the services."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class ThresholdForm(forms.Form):
    name = forms.SlugField(
        max_length=50, help_text="Letters, digits, hyphens, underscores: e.g. fracture-risk."
    )
    value = forms.FloatField(
        validators=[MinValueValidator(0.0)],
        widget=forms.NumberInput(attrs={"step": "any", "min": 0}),
        help_text="A reading is in the category when VBQ ≥ this value.",
    )


THRESHOLDS_MAX = 20
"""At most this many thresholds per study (the formset's ``max_num``, the list's too)."""

THRESHOLD_VALUE_MAX = 20.0
"""A value in a typed list above this is refused: VBQ lies between about 1 and 6, so ``95`` is
a decimal comma read as a separator (``2,95``), not a threshold."""

_THRESHOLD_SEPARATORS = re.compile(r"[,;\n]")
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
_THRESHOLD_ENTRY = re.compile(r"^(?:(?P<name>[-\w]+)\s*[=:\s]\s*)?(?P<value>\S+)$")


def threshold_name_for(value: float) -> str:
    """The name a threshold typed without one gets: ``2.95`` → ``vbq-2-95`` (names are slugs)."""
    return f"vbq-{value:g}".replace(".", "-")


def parse_threshold_list(text: str) -> dict[str, float]:
    """Several thresholds typed at once (issue 13): ``2.95, 3.0, 3.05`` or
    ``screening 2.95; fracture=3.05``, one per comma, semicolon or line.

    Validated as a whole: every bad entry is named in one ``ValidationError`` (so nothing is
    saved while any is bad); a value or a name given twice is refused.
    """
    errors: list[str] = []
    parsed: dict[str, float] = {}
    by_value: dict[float, str] = {}
    for raw in _THRESHOLD_SEPARATORS.split(text):
        entry = raw.strip()
        if not entry:
            continue
        match = _THRESHOLD_ENTRY.match(entry)
        if match is None:
            errors.append(
                f"“{entry}” is not a threshold: write a value (2.95) or a name and a value "
                "(screening 2.95)."
            )
            continue
        try:
            value = float(match["value"])
        except ValueError:
            errors.append(f"“{match['value']}” is not a number.")
            continue
        if not math.isfinite(value) or not 0 < value <= THRESHOLD_VALUE_MAX:
            errors.append(
                f"“{match['value']}” is not a VBQ threshold (above 0, at most "
                f"{THRESHOLD_VALUE_MAX:g}; decimals take a point: 2.95)."
            )
            continue
        name = match["name"] or threshold_name_for(value)
        if len(name) > 50 or not _SLUG.match(name):
            errors.append(f"“{name}” is not a name: letters, digits, hyphens and underscores.")
        elif value in by_value:
            errors.append(f"The value {value:g} is given twice.")
        elif name in parsed:
            errors.append(f"The name “{name}” is given twice.")
        else:
            parsed[name] = value
            by_value[value] = name
    if errors:
        raise forms.ValidationError(errors)
    return parsed


class BaseThresholdFormSet(forms.BaseFormSet):
    """The threshold rows, plus a text field that adds several at once (``parse_threshold_list``).

    The text field belongs to the formset (``<prefix>-several``), so both pages that use it
    (create and edit) save the typed thresholds with the rows, through the same service, or,
    when anything in either is wrong, save nothing.
    """

    several_field = "several"

    @property
    def several_name(self) -> str:
        return self.add_prefix(self.several_field)  # type: ignore[arg-type]

    @property
    def several_text(self) -> str:
        """What was typed, to show again with the errors."""
        return str(self.data.get(self.several_name, "")) if self.is_bound else ""

    def clean(self) -> None:
        super().clean()
        self._several: dict[str, float] = {}
        if any(self.errors):
            return
        seen: set[str] = set()
        for form in self.forms:
            if self._should_delete_form(form) or not form.cleaned_data:
                continue
            name = form.cleaned_data["name"]
            if name in seen:
                raise forms.ValidationError(f"Two thresholds are named {name!r}.")
            seen.add(name)
        several = parse_threshold_list(self.several_text)
        rows = self._rows()
        values = {value: name for name, value in rows.items()}
        clashes = [
            f"“{name}” is already a threshold above."
            if name in rows
            else f"{value:g} is already a threshold above ({values[value]})."
            for name, value in several.items()
            if name in rows or value in values
        ]
        if clashes:
            raise forms.ValidationError(clashes)
        if len(rows) + len(several) > THRESHOLDS_MAX:
            raise forms.ValidationError(f"A study has at most {THRESHOLDS_MAX} thresholds.")
        self._several = several

    def _rows(self) -> dict[str, float]:
        return {
            form.cleaned_data["name"]: form.cleaned_data["value"]
            for form in self.forms
            if form.cleaned_data and not self._should_delete_form(form)
        }

    def thresholds(self) -> dict[str, float]:
        """Name → value of the rows that are filled in and not marked for deletion, and of the
        thresholds typed in the text field."""
        return self._rows() | self._several


ThresholdFormSet = forms.formset_factory(
    ThresholdForm,
    formset=BaseThresholdFormSet,
    extra=1,
    can_delete=True,
    max_num=THRESHOLDS_MAX,
    validate_max=True,
)


class _CandidateField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        full = obj.get_full_name() if hasattr(obj, "get_full_name") else ""
        return f"{obj.get_username()} ({full})" if full else obj.get_username()


class AssignmentForm(forms.Form):
    """Add people to a study with one role: picked from the users the manager already knows
    (``selectors.assignment_candidates``), and/or one typed by username."""

    users = _CandidateField(
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Pick people",
    )
    username = forms.CharField(max_length=150, required=False, label="Or add by username")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.READER)

    def __init__(self, *args: Any, study: Study, manager: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.study = study
        field = self.fields["users"]
        if manager is not None:
            field.queryset = assignment_candidates(study=study, user=manager)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        people = list(data.get("users") or [])
        if data.get("user") is not None and data["user"] not in people:
            people.append(data["user"])
        if not people and not self.errors:
            self.add_error(
                "username",
                "This field is required: type a username, or pick people from the list.",
            )
        data["people"] = people
        return data

    def clean_username(self) -> Any:
        username = self.cleaned_data["username"].strip()
        if not username:
            return username
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"There is no active user named {username!r}.")
        existing = Assignment.objects.filter(study=self.study, user=user).first()
        if existing is not None:
            raise forms.ValidationError(
                f"{username} is already {existing.get_role_display().lower()} of this study; "
                "remove them first to change their role."
            )
        self.cleaned_data["user"] = user
        return username


class ReferenceUploadForm(forms.Form):
    """A reference-standard CSV; valid only when every line of it is (see ``reference_csv``)."""

    file = forms.FileField(label="CSV file")

    def __init__(self, *args: Any, known_cases: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.known_cases = known_cases

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > REFERENCE_CSV_MAX_BYTES:
            raise forms.ValidationError("The file is larger than 2 MB; is it the right one?")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(
                "The file is not UTF-8 text; save it as “CSV UTF-8” and upload it again."
            ) from None
        try:
            self.cleaned_data["rows"] = parse_reference_csv(text, self.known_cases)
        except ReferenceCsvError as exc:
            raise forms.ValidationError(exc.messages()) from None
        return upload

    def rows(self) -> dict[str, ReferenceRow]:
        return self.cleaned_data["rows"]


class UploadCreateForm(forms.Form):
    """What the browser announces before it sends a byte (validated, then ``upload_create``)."""

    name = forms.CharField(max_length=200, required=False)
    files = forms.IntegerField(min_value=0)
    bytes = forms.IntegerField(min_value=0)


class EligibilityRangesForm(forms.ModelForm):
    """The study's T1 spin-echo TR/TE ranges, which decide series eligibility."""

    class Meta:
        model = Study
        fields = ["ingest_tr_min_ms", "ingest_tr_max_ms", "ingest_te_min_ms", "ingest_te_max_ms"]
        widgets = {
            name: forms.NumberInput(attrs={"step": "any", "min": 0})
            for name in [
                "ingest_tr_min_ms",
                "ingest_tr_max_ms",
                "ingest_te_min_ms",
                "ingest_te_max_ms",
            ]
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for lo, hi, label in (
            ("ingest_tr_min_ms", "ingest_tr_max_ms", "TR"),
            ("ingest_te_min_ms", "ingest_te_max_ms", "TE"),
        ):
            if data.get(lo) is not None and data.get(hi) is not None and data[lo] > data[hi]:
                raise forms.ValidationError(f"The {label} range is upside down.")
        return data

    def ranges(self) -> dict[str, float]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


def _series_label(series: Any) -> str:
    """What tells two series apart in the override form (descriptions repeat)."""
    facts = [series.orientation or "orientation unknown", f"TR/TE {series.tr_te_label} ms"]
    facts.append(f"{series.n_instances} instances")
    if series.eligible is not None:
        facts.append("eligible" if series.eligible else "not eligible")
    return f"{series.description or '(no description)'} — {', '.join(facts)}"


class SeriesChoiceForm(forms.Form):
    """A manager's override of the reading series: one series, none, or back to automatic."""

    AUTOMATIC = "auto"
    NONE = "none"

    choice = forms.ChoiceField(widget=forms.RadioSelect)
    reason = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. only sagittal T1 available; TR 1100 ms accepted"}
        ),
    )

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.case = case
        self.series_by_pk = {str(s.pk): s for s in case.series.all()}
        self.fields["choice"].choices = [
            (self.AUTOMATIC, "Automatic: the best eligible series"),
            *((pk, _series_label(s)) for pk, s in self.series_by_pk.items()),
            (self.NONE, "No series: this case cannot be read"),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("choice") not in (None, self.AUTOMATIC) and not data.get("reason", "").strip():
            self.add_error("reason", "Say why: the reason is kept with the choice.")
        return data
