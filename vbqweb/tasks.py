"""The project's one task decorator, and the one way to enqueue.

Every task acknowledges late and is re-queued if its worker dies, so a task must be idempotent:
the database, not the broker, is the source of truth. ``celery.shared_task`` is banned elsewhere
(ruff TID251) so that no task forgets these options.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from celery import shared_task
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def vbq_task(*, time_limit: int | None = None, **options: Any) -> Callable[[F], Any]:
    """Register ``func`` as a Celery task with the project's delivery guarantees.

    ``time_limit`` defaults to ``VBQ_TASK_TIME_LIMIT``; the soft limit is 90 % of it so that the
    task can record a clean failure before the hard kill. The broker's visibility timeout is set
    above the longest hard limit in settings, so a running task is never delivered twice.
    """
    hard = time_limit or settings.VBQ_TASK_TIME_LIMIT

    def decorator(func: F) -> Any:
        return shared_task(
            acks_late=True,
            reject_on_worker_lost=True,
            time_limit=hard,
            soft_time_limit=int(hard * 0.9),
            **options,
        )(func)

    return decorator


def enqueue_on_commit(task: Any, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Send ``task`` with keyword arguments once the current transaction commits.

    A broker that is down must not fail the user's request: the work is recorded in the
    database first, so it is logged and can be sent again (the page shows it as pending).
    """

    def send() -> None:
        try:
            task.apply_async(kwargs=kwargs, countdown=countdown, retry=False)
        except (OperationalError, OSError) as exc:
            logger.warning("could not enqueue %s(%s): %s", task.name, kwargs, exc)

    transaction.on_commit(send)
