"""``{% study_checklist study %}``: a new study's checklist on its managers' study page
(issue 13 item 10): settings → readers → cases → open for reading, each step linked to the
page where it is done.

Why a tag: the study page is the reading flow's view (``readers.views``); the checklist is
computed from the study side's data alone (``studies.selectors.study_checklist``), so it is
rendered here without touching that view. Nothing is stored: the checklist goes away by itself
once every step is done and a reader has begun.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from studies.models import Study
from studies.selectors import study_checklist as _study_checklist

register = template.Library()


@register.inclusion_tag("studies/design/_checklist.html")
def study_checklist(study: Any) -> dict[str, Any]:
    if not isinstance(study, Study) or study.pk is None:
        return {"checklist": None}
    checklist = _study_checklist(study=study)
    steps = [
        {"step": step, "href": reverse(step.url, kwargs={"pk": study.pk})}
        for step in checklist.steps
    ]
    return {"checklist": checklist, "steps": steps, "study": study}
