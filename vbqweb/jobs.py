"""The transactional outbox: background work recorded with the change, sent, re-sent, finished.

Why: a message sent to the broker after a commit is lost if the broker is down, and a task
whose worker dies is redelivered only after the broker's visibility timeout (over an hour for
the ingest's limit). So no service talks to the broker. A service records its work as a
:class:`~vbqweb.models.Job` row in the transaction that makes the change (:func:`job_request`);
the same key coalesces a burst into one row. Then:

* **after commit** the job is sent at once (claimed for that send in the request's own
  transaction, so the send itself writes nothing), best effort, on a connection of its own
  that gives up within :data:`SEND_TIMEOUT` (a broker that is down or hung costs a request at
  most that, and after one failure the process leaves sending to the dispatcher for
  :data:`BROKER_PAUSE`);
* **the dispatcher** (:func:`jobs_dispatch_due`, sent by Celery beat every few seconds) sends
  what is due: jobs never sent or whose send failed, jobs sent but not picked up within their
  work's deadline (the broker lost them), and jobs whose run has had no heartbeat within that
  deadline (the worker died). Recovery takes the work's deadline, not the visibility timeout;
* **the run** (:func:`job_run`, wrapped around every task by :func:`vbqweb.tasks.vbq_task`)
  claims the job (a conditional UPDATE on its token) and holds its current token, so a
  duplicate delivery or a message for a job that is running or finished runs nothing; a long
  task proves it is alive with :func:`job_heartbeat`, and a run presumed dead (the job was sent
  again, with a new token) learns there that it was replaced; the run marks the job done, or
  waiting again when it was requested again while it ran, so no change is left unprocessed.

Tasks stay idempotent all the same: a run presumed dead may still have written part of its work.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from kombu import Connection
from kombu.exceptions import OperationalError

from vbqweb.celery import app
from vbqweb.models import Job
from vbqweb.storage import storage_unavailable

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 1.0
"""Seconds a send may take (connect, then publish) before it gives up: a hung broker costs a
request at most this."""
BROKER_PAUSE = 5.0
"""After a failed send, this process leaves sending to the dispatcher for this many seconds, so
that an outage does not cost every request the timeout."""
RETRY_SEND_AFTER = timedelta(seconds=5)
KEEP_DONE = timedelta(days=7)
"""Finished jobs are deleted this long after they finish (failed ones are kept to be read)."""
DEBOUNCE_CAP = 5
"""A debounced job waits at most this many delays after its first request: a steady stream of
requests postpones it, never for ever."""
BROKER_ERRORS = (OperationalError, OSError, TimeoutError)
HEADER = "vbq_job"
"""The message header that carries ``[job id, token]``."""

State = Job.State
OPEN = (State.WAITING, State.SENT, State.RUNNING)


@dataclass(frozen=True)
class Work:
    """A kind of background work: its task's name, its queue and its deadline (seconds).

    ``deadline``: how long a sent job may wait to be picked up, and how long a run may go
    without a heartbeat, before the dispatcher presumes it lost and sends it again.
    ``max_runs``: runs that may be lost before the job is given up.
    """

    name: str
    queue: str
    deadline: int
    max_runs: int = 3


class JobLost(Exception):
    """This run no longer holds its job: it was presumed dead and sent again, so it stops."""


@dataclass(frozen=True)
class Lease:
    """The job a task is running, held with the job's token when the run started."""

    job_id: int
    token: int
    deadline: int
    runs: int


_lease: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("vbq_lease", default=None)
_done_early: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "vbq_done_early", default=None
)
"""The jobs of this run already marked done in the task's own final transaction."""
_paused_until: dict[str, float] = {}
"""Broker URL -> until when this process leaves sending to the dispatcher (monotonic time)."""


# -- recording -------------------------------------------------------------------------------


def job_request(work: Work, *, key: str, delay: float = 0, **kwargs: Any) -> None:
    """Record ``work`` under ``key`` in the caller's transaction; send it once that commits.

    A job already waiting or sent for ``key`` absorbs the request (its coming run will see the
    change); a job running now runs again once it finishes; a finished job is opened again.
    ``delay`` debounces: the job is sent that many seconds after the last request (at most
    :data:`DEBOUNCE_CAP` delays after the first), by the dispatcher.

    A job due now is claimed for sending here, in the caller's transaction (state "sent", a new
    token), and published after the commit without another write: on SQLite every write
    transaction queues for the one writer's lock, and this is on the path of every save. If the
    process dies between the commit and the publish, the dispatcher sends the job again after its
    deadline, as it does for any send the broker lost.
    """
    now = timezone.now()
    not_before = now + timedelta(seconds=delay)
    with transaction.atomic():
        job = _locked(key)
        if job is None:
            fields = {"not_before": not_before, "due_at": not_before}
            claimed = not_before <= now and not _sending_paused()
            if claimed:
                fields |= _claim_fields(deadline=work.deadline, sends=0, now=now)
                fields |= {"token": 1, "attempts": 1}
            try:
                with transaction.atomic():
                    job = Job.objects.create(
                        key=key,
                        work=work.name,
                        queue=work.queue,
                        kwargs=kwargs,
                        deadline=work.deadline,
                        max_runs=work.max_runs,
                        requested_at=now,
                        waiting_since=now,
                        **fields,
                    )
            except IntegrityError:  # recorded meanwhile by a concurrent request
                job = _locked(key)
                assert job is not None
            else:
                if claimed:
                    _publish_after_commit(job)
                return
        fields = {
            "work": work.name,
            "queue": work.queue,
            "deadline": work.deadline,
            "max_runs": work.max_runs,
            "kwargs": kwargs,
            "generation": job.generation + 1,
            "requested_at": now,
            "not_before": not_before,
        }
        state, sends = job.state, job.sends
        if state in (State.DONE, State.FAILED):
            fields |= {"state": State.WAITING, "waiting_since": now, "due_at": not_before}
            fields |= {"runs": 0, "sends": 0, "error": ""}
            state, sends = State.WAITING, 0
        elif state == State.WAITING:
            cap = job.waiting_since + timedelta(seconds=delay * DEBOUNCE_CAP)
            fields["not_before"] = fields["due_at"] = max(min(not_before, cap), now)
        claimed = state == State.WAITING and fields["due_at"] <= now and not _sending_paused()
        if claimed:
            fields |= _claim_fields(deadline=work.deadline, sends=sends, now=now)
            fields |= {"token": job.token + 1, "attempts": F("attempts") + 1}
        Job.objects.filter(pk=job.pk).update(**fields)
        if claimed:
            job.refresh_from_db()
            _publish_after_commit(job)


def _locked(key: str) -> Job | None:
    return Job.objects.select_for_update().filter(key=key).first()


def _claim_fields(*, deadline: int, sends: int, now: datetime) -> dict[str, Any]:
    """A job's fields once it is claimed for a send (``token`` and ``attempts`` by the caller).

    A job sent and not picked up is looked at again after its deadline, doubled for each send
    not picked up (up to eight times), so that a long queue is not flooded with copies. The
    send is counted before it is made, and taken back if the broker refuses it.
    """
    wait = deadline * 2 ** min(sends, 3)
    return {
        "state": State.SENT,
        "sends": sends + 1,
        "error": "",
        "sent_at": now,
        "due_at": now + timedelta(seconds=wait),
    }


def _publish_after_commit(job: Job) -> None:
    """Publish a job that :func:`job_request` claimed, once the caller's transaction commits."""
    transaction.on_commit(lambda: _publish_best_effort(job))


def _sending_paused() -> bool:
    """True for a while after this process failed to reach the broker (the dispatcher sends)."""
    return time.monotonic() < _paused_until.get(str(app.conf.broker_url), 0.0)


def _publish_best_effort(job: Job) -> None:
    """Publish a claimed job; never raises for the broker (the failure is recorded on the job)."""
    with contextlib.suppress(*BROKER_ERRORS), _Publisher() as publisher:
        publisher.publish(job, job.token)


def _send_best_effort(pks: list[int]) -> None:
    """Send now unless the broker failed here a moment ago; never raises for the broker."""
    if _sending_paused():
        return
    with contextlib.suppress(*BROKER_ERRORS):  # recorded on the job; the dispatcher sends it
        jobs_send(pks)


# -- sending ---------------------------------------------------------------------------------


def jobs_send(pks: Iterable[int], *, now: datetime | None = None) -> list[Job]:
    """Send the given jobs that are due, over one connection; return those the broker accepted.

    Raises the broker's error after recording it on the job it failed on (which waits again).
    """
    now = now or timezone.now()
    due = Job.objects.filter(pk__in=list(pks), state__in=OPEN, due_at__lte=now)
    return _send(list(due), now)


def _send(jobs: list[Job], now: datetime) -> list[Job]:
    sent: list[Job] = []
    with _Publisher() as publisher:
        for job in jobs:
            token = _claim_send(job, now)
            if token is None:
                continue  # another sender or a worker got there first
            publisher.publish(job, token)
            sent.append(job)
    return sent


class _Publisher(ExitStack):
    """Publishes jobs' messages over one broker connection, opened on first use."""

    _connection: Connection | None = None

    def publish(self, job: Job, token: int) -> None:
        """Publish the message of ``job``'s send ``token``. A refused send is taken back: the
        job waits again and the dispatcher tries later; the broker's error is raised."""
        try:
            if self._connection is None:
                self._connection = self.enter_context(_connection(SEND_TIMEOUT))
            app.send_task(
                job.work,
                kwargs=job.kwargs,
                queue=job.queue,
                headers={HEADER: [job.pk, token]},
                connection=self._connection,
                retry=False,
            )
        except BROKER_ERRORS as error:
            _paused_until[str(app.conf.broker_url)] = time.monotonic() + BROKER_PAUSE
            logger.warning("job %s: could not send %s: %s", job.key, job.work, error)
            Job.objects.filter(pk=job.pk, token=token, state=State.SENT).update(
                state=State.WAITING,
                sends=F("sends") - 1,  # counted by the claim; this one never left
                due_at=timezone.now() + RETRY_SEND_AFTER,
                error=f"The task queue could not be reached ({type(error).__name__}).",
            )
            raise


def _claim_send(job: Job, now: datetime) -> int | None:
    """Take the right to send ``job`` (a conditional UPDATE on its token); the new token."""
    token = job.token + 1
    claimed = Job.objects.filter(pk=job.pk, token=job.token, state=job.state, due_at__lte=now)
    fields = _claim_fields(deadline=job.deadline, sends=job.sends, now=now)
    fields["sends"] = F("sends") + 1
    if not claimed.update(token=token, attempts=F("attempts") + 1, **fields):
        return None
    return token


@contextmanager
def _connection(timeout: float) -> Iterator[Connection]:
    """A broker connection of its own whose every socket operation gives up within ``timeout``."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_retries": 0}
    with app.connection_for_write(transport_options=options) as connection:
        connection.ensure_connection(max_retries=0, timeout=timeout)
        yield connection


def jobs_dispatch_due(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """The dispatcher: send every job that is due; give up on jobs lost too often.

    Due: waiting jobs whose time has come (never sent, or their send failed), sent jobs not
    picked up within their deadline, running jobs without a heartbeat within it. A broker
    failure ends the round (the next round tries again). Jobs done for :data:`KEEP_DONE` are
    deleted. Returns counts, for the log.
    """
    now = now or timezone.now()
    report = {"sent": 0, "resent": 0, "gave_up": 0, "unreachable": 0}
    report["deleted"], _ = Job.objects.filter(state=State.DONE, due_at__lt=now - KEEP_DONE).delete()
    to_send = []
    for job in Job.objects.filter(state__in=OPEN, due_at__lte=now).order_by("due_at")[:limit]:
        if job.state == State.RUNNING:
            if job.runs >= job.max_runs:
                report["gave_up"] += _give_up(job, now)
                continue
            logger.warning(
                "job %s: no heartbeat from %s since %s; sending it again",
                job.key,
                job.worker,
                job.heartbeat_at,
            )
        elif job.state == State.SENT:
            logger.warning("job %s: sent at %s, not picked up; sending again", job.key, job.sent_at)
        to_send.append(job)
    try:
        sent = _send(to_send, now)
    except BROKER_ERRORS:
        report["unreachable"] = 1
        sent = []
    report["sent"] = sum(job.state == State.WAITING for job in sent)
    report["resent"] = len(sent) - report["sent"]
    return report


def _give_up(job: Job, now: datetime) -> int:
    message = f"Given up: its worker was lost {job.runs} times."
    logger.error("job %s (%s): %s", job.key, job.work, message)
    return Job.objects.filter(pk=job.pk, token=job.token, state=State.RUNNING).update(
        state=State.FAILED, finished_at=now, error=message
    )


# -- running ---------------------------------------------------------------------------------


def job_run(request: Any, func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run a task's body under its job: claim, run, finish (see the module's docstring).

    A message without the job header (sent by hand, from a shell or a test) just runs.
    """
    header = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    if not header:
        return func(**kwargs)
    lease = _start(int(header[0]), worker=str(getattr(request, "hostname", "") or ""))
    if lease is None:
        logger.info("job %s (send %s): not run: running elsewhere, done or sent again", *header)
        return None
    reset = _lease.set(lease)
    done_early: set[int] = set()
    reset_done = _done_early.set(done_early)
    try:
        result = func(**kwargs)
    except JobLost:
        logger.warning("job %s (send %s): presumed lost and sent again; stopped", *header)
        return None
    except Exception as error:
        _run_failed(lease, error)
        raise
    finally:
        _lease.reset(reset)
        _done_early.reset(reset_done)
    if lease.job_id not in done_early:
        _finish(lease)
    return result


def _start(job_id: int, *, worker: str) -> Lease | None:
    """Claim a job no run holds (waiting or sent) with a conditional UPDATE on its token.

    Any copy of its messages may start it, not only the last send's: a job re-sent because a
    long queue had not reached it yet must not wait for its last copy at the end of the queue.
    The run holds the job's current token; the other copies then find it running or done.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.state not in (State.WAITING, State.SENT):
        return None
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, token=job.token, state=job.state).update(
        state=State.RUNNING,
        runs=F("runs") + 1,
        sends=0,
        run_generation=F("generation"),
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        due_at=now + timedelta(seconds=job.deadline),
        worker=worker[:200],
        error="",
    )
    return Lease(job_id, job.token, job.deadline, job.runs + 1) if claimed else None


def _finish(lease: Lease) -> None:
    """Done, or waiting again if the job was requested while it ran (then sent at once)."""
    now = timezone.now()
    mine = Job.objects.filter(pk=lease.job_id, token=lease.token, state=State.RUNNING)
    done = mine.filter(generation=F("run_generation"))
    if done.update(state=State.DONE, finished_at=now, due_at=now):
        return
    job = mine.first()
    if job is None:
        return  # presumed lost meanwhile: the new send owns it
    due = max(now, job.not_before)
    fields = {"finished_at": now, "waiting_since": now, "due_at": due, "sends": 0, "runs": 0}
    # A new request: its runs count afresh; sent at once unless it is debounced.
    if mine.update(state=State.WAITING, **fields) and due <= now:
        _send_best_effort([job.pk])


def _run_failed(lease: Lease, error: Exception) -> None:
    """The body raised: try again after the deadline, or give up after ``max_runs`` runs; an
    unreachable object store is tried again after ``VBQ_STORAGE_RETRY_AFTER``, uncounted."""
    now = timezone.now()
    mine = Job.objects.filter(pk=lease.job_id, token=lease.token, state=State.RUNNING)
    job = mine.first()
    if job is None:
        return
    message = f"{type(error).__name__}: {error}"[:300]
    if storage_unavailable(error):
        # The object store is away: waited out, not counted (an outage of an hour must not
        # give up a reader's score after three tries).
        due = now + timedelta(seconds=settings.VBQ_STORAGE_RETRY_AFTER)
        mine.update(
            state=State.WAITING,
            finished_at=now,
            due_at=due,
            sends=0,
            runs=F("runs") - 1,
            error=message,
        )
        return
    if job.runs >= job.max_runs:
        mine.update(state=State.FAILED, finished_at=now, error=message)
    else:
        due = now + timedelta(seconds=job.deadline)
        mine.update(state=State.WAITING, finished_at=now, due_at=due, sends=0, error=message)


def current_job() -> Lease | None:
    """The job the running task holds, if it was sent through the outbox."""
    return _lease.get()


def job_done_with_this_transaction() -> None:
    """Mark the running job done inside the caller's transaction, its final write.

    Why: a short task (a scoring: ~10 ms of work) otherwise writes three times, the claim, its
    result and the job's end, and on SQLite every write waits its turn for the one writer; the
    end folded into the result's transaction saves one turn per task. Only when the job was not
    requested again while it ran (then the run's end sends it again, as usual); a transaction
    that rolls back leaves the job to the run's end too. A no-op outside a job.
    """
    lease, done_early = _lease.get(), _done_early.get()
    if lease is None or done_early is None:
        return
    now = timezone.now()
    if Job.objects.filter(
        pk=lease.job_id, token=lease.token, state=State.RUNNING, generation=F("run_generation")
    ).update(state=State.DONE, finished_at=now, due_at=now):
        transaction.on_commit(lambda: done_early.add(lease.job_id))


def job_heartbeat() -> None:
    """The running task is alive: push its deadline back. Raises :class:`JobLost` when the
    job was presumed dead and sent again (the run must stop, writing nothing more).

    A no-op outside a job. Call it inside the transaction of a final write to make that write
    conditional on still holding the job (the UPDATE locks the job's row until commit).
    """
    lease = _lease.get()
    if lease is None:
        return
    now = timezone.now()
    if not Job.objects.filter(pk=lease.job_id, token=lease.token, state=State.RUNNING).update(
        heartbeat_at=now, due_at=now + timedelta(seconds=lease.deadline)
    ):
        raise JobLost(f"job {lease.job_id} (send {lease.token})")


def pause_point(name: str) -> None:
    """Pause here for ``VBQ_TEST_PAUSE[name]`` seconds: only the fault tests set it, to kill a
    worker in the middle of a task deterministically. Production settings refuse it."""
    seconds = settings.VBQ_TEST_PAUSE.get(name)
    if seconds:
        logger.warning("pausing %s s at %r (VBQ_TEST_PAUSE: tests only)", seconds, name)
        time.sleep(seconds)


# -- reading ---------------------------------------------------------------------------------


def job_for_key(key: str) -> Job | None:
    """The job recorded under ``key``, for pages that say where the work is."""
    return Job.objects.filter(key=key).first()


def job_is_waiting(key: str) -> bool:
    """True while the work is recorded but no worker has picked it up (waiting or sent)."""
    return Job.objects.filter(key=key, state__in=(State.WAITING, State.SENT)).exists()
