"""Reads of the audit trail: a study's events, the whole log, and its rows for the CSV.

Callers check access (``studies.access.study_for_manager`` for a study's log, a site admin for
the whole one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from vbqweb.audit.actions import Action
from vbqweb.audit.chain import time_text
from vbqweb.audit.models import AuditEvent

CSV_COLUMNS = ["sequence", "time", "actor_id", "actor_username", "action", "object_type",
               "object_id", "study_id", "remote_addr", "detail", "prev_hash", "hash"]  # fmt: skip
"""Every stored field: an exported log can be checked against the chain on its own."""


def audit_events(*, study_id: int | None = None, action: str = "") -> QuerySet[AuditEvent]:
    """Events newest first; of one study when ``study_id`` is given; of one action when
    ``action`` is one of the vocabulary's (anything else is ignored)."""
    events = AuditEvent.objects.order_by("-sequence")
    if study_id is not None:
        events = events.filter(study_id=study_id)
    if action in Action.values:
        events = events.filter(action=action)
    return events


def audit_csv_rows(events: QuerySet[AuditEvent]) -> Iterator[dict[str, Any]]:
    """One row per event, oldest first, the detail as compact JSON."""
    for event in events.order_by("sequence").iterator(chunk_size=2000):
        row = {name: getattr(event, name) for name in CSV_COLUMNS}
        row["time"] = time_text(event.time)
        row["detail"] = json.dumps(event.detail, sort_keys=True, separators=(",", ":"))
        yield row
