"""Background work: every kind the site has (its queue, its deadline), and the one task decorator.

Services never import task modules. A service records its work in the outbox
(:func:`vbqweb.jobs.job_request`, in the transaction of its change) under the :class:`Work` to
do (:data:`SCORE_READING`, ...); the task module imports the service and declares the task
under that same work with :func:`vbq_task`. So the arrows point one way,
``tasks -> services -> vbqweb.jobs``, and no import cycle is needed to send work.

Each kind of work is defined once, here: its task's name, its queue (so that a worker can be
given the queues it serves: a big upload never delays a reader's score) and its deadline (how
long the outbox waits for a send to be picked up, or for a heartbeat of a run, before it sends
the work again). Every task acknowledges late and tasks stay idempotent: the database, not the
broker, is the source of truth. ``celery.shared_task`` is banned elsewhere (ruff TID251) so that
no task forgets these options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from celery import shared_task
from django.conf import settings

from vbqweb.jobs import Work, job_run, jobs_dispatch_due

F = TypeVar("F", bound=Callable[..., Any])

SCORE, ANALYSIS, INGEST, DISPATCH = "score", "analysis", "ingest", "dispatch"
"""The queues. A reader waits for ``score``; ``analysis`` holds the agreement recomputation
and the re-judging of a study's series; ``ingest`` the long work (uploads, case-set copies,
the agreement's files); ``dispatch`` the periodic work of beat."""

SCORE_READING = Work("readers.tasks.compute_reading_vbq", SCORE, deadline=30)
"""Score one reading at one ROI version (``reading_pk``, ``roi_version``): seconds of work."""
ANALYSE_STUDY = Work("readers.tasks.compute_study_analysis", ANALYSIS, deadline=300)
"""Recompute a study's agreement analysis (``study_pk``): debounced, one at a time per study."""
BUILD_STUDY_FILES = Work("readers.tasks.build_study_files", INGEST, deadline=120)
"""Build a study's agreement figures, report, PDF and SR zip for its stored analysis
(``study_pk``), chained from the analysis; heartbeats while it builds. On the queue of long
work, not ``analysis``: a build makes a PDF and an SR per new reading (minutes for a large
study), and the worker that serves ``analysis`` also serves ``score``, where a reader waits."""
INGEST_UPLOAD = Work("studies.tasks.ingest_upload", INGEST, deadline=60)
"""De-identify and store one finished upload (``upload_id``). It may run for an hour: the
deadline is from its last heartbeat (written with its progress at least every second)."""
ATTACH_CASE_SET = Work("studies.tasks.attach_case_set", INGEST, deadline=60)
"""Copy a case set of another study into a study (``attach_id``): a heartbeat after each case."""
REJUDGE_SERIES = Work("studies.tasks.rejudge_study_series", ANALYSIS, deadline=300)
"""Judge a study's series again after its TR/TE ranges changed (``study_id``)."""
DISPATCH_JOBS = Work("vbqweb.tasks.dispatch_jobs", DISPATCH, deadline=0)
"""The outbox's dispatcher, sent by Celery beat every ``VBQ_DISPATCH_EVERY`` seconds."""
TIDY_UPLOADS = Work("studies.tasks.tidy_uploads", DISPATCH, deadline=0)
"""The uploads' upkeep (abandoned transfers, leftover folders), sent by beat every minute."""

ALL_WORK: tuple[Work, ...] = (
    SCORE_READING,
    ANALYSE_STUDY,
    BUILD_STUDY_FILES,
    INGEST_UPLOAD,
    ATTACH_CASE_SET,
    REJUDGE_SERIES,
    DISPATCH_JOBS,
    TIDY_UPLOADS,
)
QUEUES: tuple[str, ...] = (SCORE, ANALYSIS, INGEST, DISPATCH)
_BY_NAME = {work.name: work for work in ALL_WORK}


def route(name: str, *args: Any, **kwargs: Any) -> dict[str, str] | None:
    """Celery's router (``CELERY_TASK_ROUTES``): every task to its work's queue."""
    work = _BY_NAME.get(name)
    return {"queue": work.queue} if work is not None else None


def vbq_task(work: Work, *, time_limit: int | None = None, **options: Any) -> Callable[[F], Any]:
    """Register ``func`` as the task of ``work`` with the project's delivery guarantees.

    The task runs ``func`` under its outbox job (:func:`vbqweb.jobs.job_run`: claimed with the
    token of its send, marked done at the end); :func:`route` sends it to ``work``'s queue.
    ``time_limit`` defaults to ``VBQ_TASK_TIME_LIMIT``; the soft limit is 90 % of it so that the
    task can record a clean failure before the hard kill.
    """
    hard = time_limit or settings.VBQ_TASK_TIME_LIMIT

    def decorator(func: F) -> Any:
        def run(self: Any, **kwargs: Any) -> Any:
            return job_run(self.request, func, kwargs)

        for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
            setattr(run, attribute, getattr(func, attribute))
        return shared_task(
            bind=True,
            name=work.name,
            acks_late=True,
            reject_on_worker_lost=True,
            time_limit=hard,
            soft_time_limit=int(hard * 0.9),
            **options,
        )(run)

    return decorator


@vbq_task(DISPATCH_JOBS)
def dispatch_jobs() -> dict[str, int]:
    """Send the outbox's due jobs (Celery beat, every few seconds)."""
    return jobs_dispatch_due()
