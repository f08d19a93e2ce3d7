"""Writes on the study side: studies, roles, thresholds and cases.

Keyword-only functions named ``<entity>_<action>``; views and tasks call these, never the ORM
directly for writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from studies.models import (
    Assignment,
    ReferenceStandard,
    Role,
    Study,
    Threshold,
)
from studies.selectors import study_sessions_problem
from studies.signals import analysis_inputs_changed, measurement_settings_changed
from studies.stats.reference_csv import ReferenceRow


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


# --- Study design (managers' pages) -----------------------------------------------------------

MEASUREMENT_FIELDS = frozenset({"roi_statistic", "level_aggregate", "min_levels"})
"""The settings a VBQ score depends on: changing one rescores the study's readings."""

DESIGN_FIELDS = (
    "name",
    "description",
    "roi_statistic",
    "level_aggregate",
    "min_levels",
    "sessions",
    "washout_days",
    "allow_edit_after_submit",
    "randomise_order",
    "score_visibility",
    "min_bone_roi_area_mm2",
    "plausible_vbq_min",
    "plausible_vbq_max",
    "adjudication",
    "adjudication_threshold",
    "adjudication_use_sdc",
    "planned_icc",
    "target_ci_width",
)
"""What a study manager may change on a study (not who created it, nor when), in the order
the design page shows it (``studies.forms.StudyForm`` takes its fields from here)."""


@transaction.atomic
def study_create_with_manager(
    *,
    manager: AbstractBaseUser,
    name: str,
    thresholds: Mapping[str, float] | None = None,
    **settings: object,
) -> Study:
    """Create a study and make its creator its first manager, in one transaction.

    A study without a manager could only be reached by site admins.
    """
    study = study_create(
        name=name, created_by=manager, thresholds=dict(thresholds or {}), **settings
    )
    assignment_set(study=study, user=manager, role=Role.MANAGER)
    return study


@transaction.atomic
def study_update(
    *, study: Study, thresholds: Mapping[str, float] | None = None, **settings: object
) -> frozenset[str]:
    """Change a study's design; return the names of what changed (``"thresholds"`` included).

    Compares with the stored row, not with ``study`` (a bound ModelForm has already written the
    new values onto its instance). Changing a measurement setting sends
    ``measurement_settings_changed`` so that existing readings are rescored.
    """
    unknown = set(settings) - set(DESIGN_FIELDS)
    if unknown:
        raise ValueError(f"not a design field: {', '.join(sorted(unknown))}")
    current = Study.objects.select_for_update().get(pk=study.pk)
    changed = {name for name, value in settings.items() if getattr(current, name) != value}
    if "sessions" in changed and (
        problem := study_sessions_problem(
            study=current,
            sessions=int(settings["sessions"]),  # type: ignore[call-overload]
        )
    ):
        raise ValidationError(problem)
    for name in changed:
        setattr(current, name, settings[name])
    if changed:
        current.full_clean()
        current.save(update_fields=sorted(changed))
    if thresholds is not None and thresholds_replace(study=current, thresholds=thresholds):
        changed.add("thresholds")
    if changed & MEASUREMENT_FIELDS:
        on_measurement_settings_changed(
            study=current, changed=frozenset(changed & MEASUREMENT_FIELDS)
        )
    for name in settings:
        setattr(study, name, getattr(current, name))
    return frozenset(changed)


def on_measurement_settings_changed(*, study: Study, changed: frozenset[str] = frozenset()) -> None:
    """The hook for "this study now measures differently": the readers side rescores.

    Nothing happens here by default; ``readers`` connects to the signal (studies may not import
    readers).
    """
    measurement_settings_changed.send(sender=Study, study=study, changed=changed)


@transaction.atomic
def thresholds_replace(*, study: Study, thresholds: Mapping[str, float]) -> bool:
    """Make the study's named thresholds exactly ``thresholds``; return whether anything changed.

    Thresholds kept by name keep their description; the others are deleted or created.
    """
    existing = {t.name: t for t in study.thresholds.select_for_update()}
    changed = False
    for name, threshold in existing.items():
        if name not in thresholds:
            threshold.delete()
            changed = True
        elif threshold.value != thresholds[name]:
            threshold.value = thresholds[name]
            threshold.full_clean()
            threshold.save(update_fields=["value"])
            changed = True
    for name, value in thresholds.items():
        if name not in existing:
            threshold = Threshold(study=study, name=name, value=value)
            threshold.full_clean()
            threshold.save()
            changed = True
    if changed:
        analysis_inputs_changed.send(sender=Study, study=study, what="thresholds")
    return changed


@transaction.atomic
def assignment_add(*, study: Study, user: AbstractBaseUser, role: str) -> Assignment:
    """Give a user who has no role in the study yet the given one.

    Unlike :func:`assignment_set`, this never changes an existing role: a manager who has seen
    the readers' scores must not become a (no longer blind) reader by a slip of the form.
    """
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    existing = Assignment.objects.filter(study=study, user=user).first()
    if existing is not None:
        raise ValidationError(
            f"{user.get_username()} is already {existing.get_role_display().lower()} of this "
            "study; remove them first to change their role."
        )
    return Assignment.objects.create(study=study, user=user, role=role)


@transaction.atomic
def assignments_add(
    *, study: Study, users: Iterable[AbstractBaseUser], role: str
) -> list[Assignment]:
    """Give several users who have no role in the study yet the same role, all or none
    (issue 13: a manager picks the readers of a study at once).

    One :func:`assignment_add` per user, in one transaction: if any of them already has a role,
    nobody is added and the error names them.
    """
    return [assignment_add(study=study, user=user, role=role) for user in users]


@transaction.atomic
def assignment_revoke(*, assignment: Assignment) -> None:
    """Take a user's role in a study away; a study always keeps at least one manager.

    A reader's readings stay in the database (for the record and the analysis); without the
    assignment they are no longer shown to that reader.
    """
    if assignment.role == Role.MANAGER:
        managers = list(
            Assignment.objects.select_for_update()
            .filter(study_id=assignment.study_id, role=Role.MANAGER)
            .values_list("pk", flat=True)
        )
        if managers == [assignment.pk]:
            raise ValidationError(
                f"{assignment.user.get_username()} is the study's last manager: "
                "add another manager first."
            )
    assignment.delete()


@transaction.atomic
def reference_standard_import(*, study: Study, rows: Mapping[str, ReferenceRow]) -> int:
    """Store parsed reference values per case (all or nothing); return how many cases.

    Only the columns the file had are written; cases not in the file keep their values.
    """
    cases = {case.label: case for case in study.cases.filter(label__in=list(rows))}
    missing = sorted(set(rows) - set(cases))
    if missing:
        raise ValidationError(f"No such case in this study: {', '.join(missing)}.")
    stored = dict(
        ReferenceStandard.objects.filter(case__in=cases.values()).values_list("case", "attributes")
    )
    for label, row in rows.items():
        # Attributes (strata, issue 14) merge into the stored ones; see ReferenceRow.updates.
        defaults = row.updates(stored.get(cases[label].pk) or {})
        ReferenceStandard.objects.update_or_create(case=cases[label], defaults=defaults)
    if rows:
        analysis_inputs_changed.send(sender=Study, study=study, what="reference_standard")
    return len(rows)
