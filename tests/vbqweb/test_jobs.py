"""The outbox's rules, one at a time: coalescing, debounce, sending, the run's claim and finish.

The runs are driven through :func:`vbqweb.jobs.job_run` with the request a worker would give it
(the job header of a send); the real worker, broker and beat run the same code in
``tests/integration/`` (the dispatcher against a real Redis: ``test_dispatcher.py``). Here a send
goes to a port where nothing listens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.helpers.brokers import broker_down
from vbqweb.jobs import (
    Work,
    job_done_with_this_transaction,
    job_heartbeat,
    job_request,
    job_run,
    jobs_dispatch_due,
)
from vbqweb.models import Job

State = Job.State
WORK = Work("tests.outbox.nothing", "tests-outbox", deadline=30)
"""Sent to a queue no worker consumes: the tests look at the rows and the broker's list."""

pytestmark = pytest.mark.django_db(transaction=True)


def request_for(job: Job) -> SimpleNamespace:
    """What a worker hands the task for the message of ``job``'s last send."""
    job.refresh_from_db()
    return SimpleNamespace(vbq_job=[job.pk, job.token], hostname="test@worker")


def sent_job(key: str = "k", **kwargs: object) -> Job:
    """A job as the broker accepted it (the send itself is tested apart)."""
    with broker_down():
        job_request(WORK, key=key, **kwargs)
    Job.objects.filter(key=key).update(state=State.SENT, token=1, sends=1)
    return Job.objects.get(key=key)


def test_a_burst_of_requests_for_one_key_is_one_job() -> None:
    with broker_down(), transaction.atomic():
        for version in (1, 1, 1):
            job_request(WORK, key="score:1:v1", version=version)
        job_request(WORK, key="score:1:v2", version=2)
    assert Job.objects.count() == 2
    job = Job.objects.get(key="score:1:v1")
    assert (job.generation, job.kwargs) == (3, {"version": 1})
    assert (job.queue, job.deadline) == (WORK.queue, 30)


def test_a_broker_that_is_down_leaves_the_job_waiting_with_the_reason() -> None:
    with broker_down():
        job_request(WORK, key="k")
    job = Job.objects.get()
    assert (job.state, job.attempts, job.sends) == (State.WAITING, 1, 0)
    assert "could not be reached" in job.error
    assert job.due_at > timezone.now()  # tried again by the dispatcher a few seconds later


def test_a_debounced_job_waits_after_the_last_request_but_not_for_ever() -> None:
    with broker_down():
        job_request(WORK, key="k", delay=30)
        first = Job.objects.get()
        assert first.attempts == 0  # nothing sent at commit
        job_request(WORK, key="k", delay=30)
        later = Job.objects.get()
        assert later.not_before >= first.not_before
        # Requested again and again for minutes: sent at most five delays after the first.
        Job.objects.update(waiting_since=timezone.now() - timedelta(seconds=200))
        before = timezone.now()
        job_request(WORK, key="k", delay=30)
    capped = Job.objects.get()
    assert capped.not_before <= timezone.now()
    assert capped.not_before >= before  # due at once: 150 s after the first request is past
    assert capped.attempts == 1  # so it was sent at commit (here to a broker that is down)


def test_a_run_claims_its_job_and_a_duplicate_delivery_runs_nothing() -> None:
    job = sent_job(n=1)
    request = request_for(job)
    calls = []
    assert job_run(request, lambda **kw: calls.append(kw) or "ran", {"n": 1}) == "ran"
    job.refresh_from_db()
    assert (job.state, job.runs, job.worker) == (State.DONE, 1, "test@worker")
    assert job_run(request, lambda **kw: calls.append(kw), {"n": 1}) is None  # a second copy
    assert calls == [{"n": 1}]


def test_any_copy_starts_a_job_not_yet_started_and_the_later_copies_run_nothing() -> None:
    """A job re-sent because the queue had not reached it: its first copy starts it (not only
    the last send's, at the end of the queue), holding the current token."""
    job = sent_job()
    first_copy = request_for(job)
    Job.objects.filter(pk=job.pk).update(token=2)  # the dispatcher sent it again
    last_copy = request_for(job)
    calls = []
    job_run(first_copy, lambda: calls.append("first"), {})
    job_run(last_copy, lambda: calls.append("last"), {})
    assert calls == ["first"]
    job.refresh_from_db()
    assert (job.state, job.token, job.runs) == (State.DONE, 2, 1)


def test_a_message_without_the_header_just_runs() -> None:
    assert job_run(SimpleNamespace(hostname="h"), lambda x: x * 2, {"x": 21}) == 42


def test_a_request_while_it_runs_makes_it_run_again() -> None:
    job = sent_job()

    def body() -> None:
        job_request(WORK, key="k")

    with broker_down():  # the send after the run is best effort: it waits for the dispatcher
        job_run(request_for(job), body, {})
    job.refresh_from_db()
    assert job.state == State.WAITING
    assert (job.generation, job.run_generation) == (2, 1)


def _job_writes_after_the_body(job: Job, body: Callable[[], None]) -> int:
    """Run ``body`` as ``job``'s task; count the job-table writes made after it returned (the
    run's own end: a write turn of its own on SQLite)."""
    with CaptureQueriesContext(connection) as queries:
        mark: list[int] = []
        job_run(request_for(job), lambda: (body(), mark.append(len(queries.captured_queries))), {})
    return sum(
        1
        for q in queries.captured_queries[mark[0] :]
        if q["sql"].lstrip().upper().startswith("UPDATE") and "vbqweb_job" in q["sql"]
    )


def test_a_run_that_ends_its_job_in_its_final_transaction_writes_nothing_after_it() -> None:
    plain, folded = sent_job("plain"), sent_job("folded")
    seen_inside: list[str] = []

    def final_write() -> None:
        with transaction.atomic():
            job_done_with_this_transaction()
        seen_inside.append(Job.objects.get(pk=folded.pk).state)

    assert _job_writes_after_the_body(plain, lambda: None) == 1  # the run's end
    assert _job_writes_after_the_body(folded, final_write) == 0
    assert seen_inside == [State.DONE]  # done with the body's own transaction
    for job in (plain, folded):
        job.refresh_from_db()
        assert job.state == State.DONE
        assert job.finished_at is not None


def test_a_job_requested_again_or_rolled_back_is_ended_by_the_run_as_usual() -> None:
    again, rolled_back = sent_job("again"), sent_job("rolled back")

    def requested_meanwhile() -> None:
        job_request(WORK, key="again")
        with transaction.atomic():
            job_done_with_this_transaction()  # not done: it was requested while it ran

    def rolls_back() -> None:
        with contextlib.suppress(RuntimeError), transaction.atomic():
            job_done_with_this_transaction()
            raise RuntimeError("the final write failed")

    with broker_down():
        job_run(request_for(again), requested_meanwhile, {})
        job_run(request_for(rolled_back), rolls_back, {})
    again.refresh_from_db()
    rolled_back.refresh_from_db()
    assert again.state == State.WAITING  # runs again, as any job requested while it ran
    assert rolled_back.state == State.DONE  # ended by the run, since the fold was undone
    job_done_with_this_transaction()  # outside a job: nothing happens


def test_a_failing_run_is_tried_again_after_the_deadline_then_given_up() -> None:
    job = sent_job()

    def broken() -> None:
        raise ValueError("boom")

    for run in range(1, WORK.max_runs + 1):
        Job.objects.filter(pk=job.pk).update(state=State.SENT, token=run)
        with pytest.raises(ValueError, match="boom"):
            job_run(request_for(job), broken, {})
        job.refresh_from_db()
        assert job.error == "ValueError: boom"
        if run < WORK.max_runs:
            assert job.state == State.WAITING
            assert job.due_at > timezone.now() + timedelta(seconds=25)
    assert job.state == State.FAILED


def test_an_unreachable_object_store_is_waited_out_not_counted(settings) -> None:
    """Scoring needs the instances: while the S3 store is away, a run fails every time, and
    must not use up the job's runs (an outage longer than three deadlines would drop a score)."""
    from botocore.exceptions import EndpointConnectionError

    settings.VBQ_STORAGE_RETRY_AFTER = 7
    job = sent_job()

    def store_away() -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/bucket")

    for run in range(1, WORK.max_runs + 3):
        Job.objects.filter(pk=job.pk).update(state=State.SENT, token=run)
        with pytest.raises(EndpointConnectionError):
            job_run(request_for(job), store_away, {})
        job.refresh_from_db()
        assert (job.state, job.runs) == (State.WAITING, 0)
        assert job.due_at < timezone.now() + timedelta(seconds=8)


def test_a_run_presumed_lost_stops_at_its_heartbeat_and_finishes_nothing() -> None:
    job = sent_job()
    beats = []

    def slow() -> None:
        job_heartbeat()
        beats.append("alive")
        Job.objects.filter(pk=job.pk).update(token=2, state=State.SENT)  # the dispatcher re-sent
        job_heartbeat()
        beats.append("never")

    assert job_run(request_for(job), slow, {}) is None
    assert beats == ["alive"]
    assert Job.objects.get().state == State.SENT  # the new send owns it


def test_the_dispatcher_stops_at_the_first_broker_failure() -> None:
    with broker_down():
        job_request(WORK, key="a")
        job_request(WORK, key="b")
        Job.objects.update(due_at=timezone.now() - timedelta(seconds=1), attempts=0)
        report = jobs_dispatch_due()
    assert report["unreachable"] == 1
    attempts = sorted(Job.objects.values_list("attempts", flat=True))
    assert attempts == [0, 1]  # one try, then the round ended


def test_a_run_lost_too_often_is_given_up() -> None:
    job = sent_job()
    past = timezone.now() - timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(state=State.RUNNING, runs=WORK.max_runs, due_at=past)
    with broker_down():
        assert jobs_dispatch_due()["gave_up"] == 1
    job.refresh_from_db()
    assert job.state == State.FAILED
    assert "lost 3 times" in job.error


def test_jobs_done_a_week_ago_are_deleted_failed_ones_kept() -> None:
    for key in ("recent", "old", "failed"):
        sent_job(key)
    long_ago = timezone.now() - timedelta(days=8)
    Job.objects.update(state=State.DONE, due_at=timezone.now())
    Job.objects.filter(key__in=["old", "failed"]).update(due_at=long_ago)
    Job.objects.filter(key="failed").update(state=State.FAILED)
    with broker_down():
        assert jobs_dispatch_due()["deleted"] == 1
    assert sorted(Job.objects.values_list("key", flat=True)) == ["failed", "recent"]
