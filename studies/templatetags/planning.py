"""Bonett's (2002) cases-needed figures for the study pages, as template tags.

``{% planning_table readers as plan %}``: the cases-needed table for a number of readers (the
people page). ``{% study_plan study as plan %}``: the cases needed for the study's own planned
ICC and target CI width with its number of readers (the study design page, issue 14 item 4).

Why tags: the study pages show what their settings buy without a view of their own; the
arithmetic stays in :mod:`studies.stats.planning` (pure), this only hands it over.
"""

from __future__ import annotations

from typing import Any

from django import template

from studies.models import Role, Study
from studies.stats.planning import PlanningInputError, cases_needed
from studies.stats.planning import planning_table as _planning_table

register = template.Library()


@register.simple_tag
def planning_table(readers: Any) -> dict[str, Any]:
    """The table for ``readers`` readers (a count, or anything with a length)."""
    count = readers if isinstance(readers, int) else len(readers)
    return _planning_table(count)


@register.simple_tag
def study_plan(study: Any) -> dict[str, Any] | None:
    """``{"cases", "readers", "assumed", "icc", "width"}`` for the study's planned values.

    With fewer than two readers assigned (a new study) it plans for two and says so
    (``assumed``); None when the stored values are outside the formula's domain.
    """
    if not isinstance(study, Study) or study.pk is None:
        return None
    readers = study.assignments.filter(role=Role.READER).count()
    k = max(2, readers)
    try:
        cases = cases_needed(float(study.planned_icc), k, float(study.target_ci_width))
    except PlanningInputError:
        return None
    return {
        "cases": cases,
        "readers": k,
        "assumed": readers < 2,
        "icc": study.planned_icc,
        "width": study.target_ci_width,
    }
