"""Formatting for statistics in templates: numbers with a fixed precision, '—' when missing."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def num(value: Any, digits: int = 2) -> str:
    """``0.71234|num:2`` → ``0.71``; None, NaN and non-numbers → ``—``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if number != number:  # NaN
        return "—"
    return f"{number:.{int(digits)}f}"


@register.filter
def ci(value: Any, digits: int = 2) -> str:
    """``[0.1, 0.9]|ci`` → ``0.10 to 0.90``; anything else → ``—``."""
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = num(value[0], digits), num(value[1], digits)
        if "—" not in (low, high):
            return f"{low} to {high}"
    return "—"


@register.filter
def get(mapping: Any, key: str) -> Any:
    """``mapping|get:"ICC2"``: dictionary lookup with a key that is not an identifier."""
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def duration(seconds: Any) -> str:
    """``75|duration`` → ``1 min 15 s``; ``3900`` → ``1 h 5 min``; not a number → ``—``."""
    try:
        total = round(float(seconds))
    except (TypeError, ValueError):
        return "—"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
