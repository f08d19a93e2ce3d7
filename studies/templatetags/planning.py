"""``{% planning_table readers as plan %}``: Bonett's (2002) cases-needed table for a template.

Why a tag: the study design page shows what its number of readers buys without a view of its
own; the arithmetic stays in :mod:`studies.stats.planning` (pure), this only hands it over.
"""

from __future__ import annotations

from typing import Any

from django import template

from studies.stats.planning import planning_table as _planning_table

register = template.Library()


@register.simple_tag
def planning_table(readers: Any) -> dict[str, Any]:
    """The table for ``readers`` readers (a count, or anything with a length)."""
    count = readers if isinstance(readers, int) else len(readers)
    return _planning_table(count)
