"""The one way into the audit trail: :func:`record`.

Every view that shows a reading to a manager, every download, every change worth keeping and
the receivers in :mod:`vbqweb.audit.receivers` call it. It appends one event to the chain
under a lock, so two writers never read the same "last event" and fork it:

- **PostgreSQL**: ``LOCK TABLE ... IN EXCLUSIVE MODE`` for the rest of the transaction (plain
  reads of the log go on; a second appender waits);
- **SQLite**: the site opens every transaction with ``BEGIN IMMEDIATE`` (settings:
  ``transaction_mode``), which already takes the database's one write lock.

Inside a caller's transaction the event commits or rolls back with the change it describes;
callers record *last*, after their other writes, so that the lock is held briefly.
:func:`record_image_retrieval` records a user's retrieval of a case's images once per
sign-in session, however many frames the viewer fetches.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from operator import attrgetter
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from studies.models import Case, Study
from vbqweb.accounts.lockout import client_ip
from vbqweb.audit.actions import Action
from vbqweb.audit.chain import GENESIS, entry_hash
from vbqweb.audit.context import current_request
from vbqweb.audit.models import AuditEvent

MAX_TEXT = 300
"""A text value of ``detail`` is cut to this many characters (a failed sign-in's username is
whatever the attacker typed)."""


def _lock_chain() -> None:
    """Serialise appends (see the module docstring); the caller holds a transaction."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")


def _jsonable(detail: dict[str, Any] | None) -> dict[str, Any]:
    """``detail`` as it will read back from the database (so that its hash checks later)."""
    cut = {str(k): v[:MAX_TEXT] if isinstance(v, str) else v for k, v in (detail or {}).items()}
    return json.loads(json.dumps(cut, allow_nan=False, default=str))


def study_id_of(obj: models.Model) -> int | None:
    """The study an object belongs to (a study, a case, a reading, a series ...), if any."""
    if isinstance(obj, Study):
        return obj.pk
    for path in ("study_id", "case.study_id", "series.case.study_id", "reading.case.study_id"):
        try:
            value = attrgetter(path)(obj)
        except (AttributeError, ObjectDoesNotExist):
            continue
        if isinstance(value, int):
            return value
    return None


def _actor(request: HttpRequest | None, actor: Any) -> tuple[int | None, str]:
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, ""
    return actor.pk, actor.get_username()


def _append(fields: dict[str, Any]) -> AuditEvent:
    """Append under the lock the caller holds: the next sequence, chained to the last hash."""
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    sequence, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    entry = fields | {"sequence": sequence, "time": timezone.now(), "prev_hash": prev_hash}
    event = AuditEvent(**entry, hash=entry_hash(entry))
    event.save()
    return event


def _fields(
    action: Action | str,
    *,
    request: HttpRequest | None,
    actor: Any,
    obj: models.Model | None,
    object_type: str,
    object_id: object,
    study: Study | int | None,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    action = Action(action)  # ValueError for a name outside the vocabulary
    request = request if request is not None else current_request()
    actor_id, username = _actor(request, actor)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk if object_id in ("", None) else object_id
        if study is None:
            study = study_id_of(obj)
    return {
        "actor_id": actor_id,
        "actor_username": username,
        "action": action.value,
        "object_type": object_type,
        "object_id": "" if object_id is None else str(object_id),
        "study_id": study.pk if isinstance(study, Study) else study,
        "remote_addr": (client_ip(request) or "") if request is not None else "",
        "detail": _jsonable(detail),
    }


def record(
    action: Action | str,
    *,
    request: HttpRequest | None = None,
    actor: Any = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: object = "",
    study: Study | int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event: ``action`` by ``actor`` (default: the request's user; none for the
    system) on ``obj`` (or ``object_type`` and ``object_id``) of ``study`` (default: the
    object's), from the request's address, with a small JSON ``detail`` (ids, counts, names of
    fields: never patient data). ``request`` defaults to the one being answered."""
    fields = _fields(
        action,
        request=request,
        actor=actor,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        study=study,
        detail=detail,
    )
    with transaction.atomic():
        _lock_chain()
        return _append(fields)


# --- Images: once per session and case, not per frame ------------------------------------------

_SEEN_MAX = 10_000
_seen: OrderedDict[tuple[object, ...], None] = OrderedDict()
_seen_lock = threading.Lock()


def _session_tag(request: HttpRequest) -> str:
    """A short digest of the session key: names the sign-in session without storing its key
    (a session key in the log would be a credential)."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None) or ""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else ""


def record_image_retrieval(*, request: HttpRequest, study_uid: str) -> None:
    """Record that the user retrieved the images of the case with this Study Instance UID,
    once per sign-in session (callers have checked access).

    The viewer fetches every frame of a series, often in parallel: a process-local memory
    answers the repeats without touching the database, and the first ones check the log (again
    under the chain's lock before writing), so parallel first requests still make one event.
    """
    tag = _session_tag(request)
    key = (request.user.pk, tag, study_uid)
    with _seen_lock:
        if key in _seen:
            _seen.move_to_end(key)
            return
    case = Case.objects.filter(study_instance_uid=study_uid).order_by().first()
    if case is None:
        return
    fields = _fields(
        Action.IMAGES_RETRIEVED,
        request=request,
        actor=None,
        obj=case,
        object_type="",
        object_id="",
        study=case.study_id,
        detail={"session": tag},
    )
    recorded = AuditEvent.objects.filter(
        action=Action.IMAGES_RETRIEVED,
        actor_id=fields["actor_id"],
        object_type=fields["object_type"],
        object_id=fields["object_id"],
        detail__session=tag,
    )
    # Asked first outside the chain's lock (on SQLite a write transaction: every other writer
    # would wait behind this read); asked again under it, so parallel first requests make one.
    if not recorded.exists():
        with transaction.atomic():
            _lock_chain()
            if not recorded.exists():
                _append(fields)
    with _seen_lock:
        _seen[key] = None
        while len(_seen) > _SEEN_MAX:
            _seen.popitem(last=False)
