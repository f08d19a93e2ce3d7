"""Background work: every kind the site has, the one task decorator, and the one way to send.

Services never import task modules. A service records its work in the database and then names
the work to send (:data:`SCORE_READING`, ...); the task module imports the service and
declares the task under that same name with :func:`vbq_task`. So the arrows point one way,
``tasks -> services -> vbqweb.tasks``, and no import cycle is needed to send work.

Every task acknowledges late and is re-queued if its worker dies, so a task must be idempotent:
the database, not the broker, is the source of truth. ``celery.shared_task`` is banned elsewhere
(ruff TID251) so that no task forgets these options.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import shared_task
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

from vbqweb.celery import app

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Work:
    """A kind of background work, known to the broker by ``name`` (the task's registered name).

    Names are spelled once, here; ``tests/vbqweb/test_work.py`` checks that each names
    a registered task and that every task of the site is one of them.
    """

    name: str


SCORE_READING = Work("readers.tasks.compute_reading_vbq")
"""Score one reading at one ROI version (``reading_pk``, ``roi_version``)."""
ANALYSE_STUDY = Work("readers.tasks.compute_study_analysis")
"""Recompute a study's agreement analysis (``study_pk``)."""
INGEST_UPLOAD = Work("studies.tasks.ingest_upload")
"""De-identify and store one finished upload (``upload_id``)."""
DISPATCH_UPLOADS = Work("studies.tasks.dispatch_uploads")
"""The upload outbox's periodic dispatcher (Celery beat)."""
REJUDGE_SERIES = Work("studies.tasks.rejudge_study_series")
"""Judge a study's series again after its TR/TE ranges changed (``study_id``)."""

ALL_WORK: tuple[Work, ...] = (
    SCORE_READING,
    ANALYSE_STUDY,
    INGEST_UPLOAD,
    DISPATCH_UPLOADS,
    REJUDGE_SERIES,
)


def vbq_task(work: Work, *, time_limit: int | None = None, **options: Any) -> Callable[[F], Any]:
    """Register ``func`` as the task of ``work`` with the project's delivery guarantees.

    ``time_limit`` defaults to ``VBQ_TASK_TIME_LIMIT``; the soft limit is 90 % of it so that the
    task can record a clean failure before the hard kill. The broker's visibility timeout is set
    above the longest hard limit in settings, so a running task is never delivered twice.
    """
    hard = time_limit or settings.VBQ_TASK_TIME_LIMIT

    def decorator(func: F) -> Any:
        return shared_task(
            name=work.name,
            acks_late=True,
            reject_on_worker_lost=True,
            time_limit=hard,
            soft_time_limit=int(hard * 0.9),
            **options,
        )(func)

    return decorator


def _publish(
    work: Work, kwargs: dict[str, Any], *, countdown: float | None = None, **options: Any
) -> None:
    app.send_task(work.name, kwargs=kwargs, countdown=countdown, retry=False, **options)


def enqueue_on_commit(work: Work, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Send ``work`` with keyword arguments once the current transaction commits.

    A broker that is down must not fail the user's request: the work is recorded in the
    database first, so it is logged and can be sent again (the page shows it as pending).
    """

    def send() -> None:
        try:
            _publish(work, kwargs, countdown=countdown)
        except (OperationalError, OSError) as exc:
            logger.warning("could not enqueue %s(%s): %s", work.name, kwargs, exc)

    transaction.on_commit(send)


def send_now(work: Work, *, timeout: float, **kwargs: Any) -> None:
    """Send ``work`` at once on a connection of its own that gives up within ``timeout`` s.

    For an outbox that records the attempt itself: a broker that is down or hung raises
    (``OperationalError``, ``OSError`` or ``TimeoutError``) instead of being logged.
    """
    options = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "max_retries": 0,
    }
    with app.connection_for_write(transport_options=options) as connection:
        connection.ensure_connection(max_retries=0, timeout=timeout)
        _publish(work, kwargs, connection=connection)
