"""The outbox's dispatcher against a real Redis: what is due is sent, each send a new token."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.helpers.brokers import broker_at, broker_down
from tests.helpers.workers import beat_started
from vbqweb.jobs import Work, job_request, jobs_dispatch_due
from vbqweb.models import Job
from vbqweb.tasks import DISPATCH

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

State = Job.State
WORK = Work("tests.outbox.nothing", "tests-outbox", deadline=30)
"""Sent to a queue no worker consumes: the test reads the broker's list."""


@pytest.fixture
def beat_paused(celery_beat, redis_server):
    """The package's beat sends the dispatcher every second and its worker runs it on the
    same database: it would race this test's own dispatch for the same due jobs (CI saw it
    send the "waiting" job first). Paused for the test, started again after."""
    celery_beat.stop()
    redis_server.client().delete(DISPATCH)  # a dispatcher sent but not yet taken
    time.sleep(1.5)  # one already running ends
    try:
        yield
    finally:
        celery_beat.start(ready=lambda: beat_started(celery_beat))


def test_the_dispatcher_sends_due_and_lost_jobs_to_the_broker(redis_server, beat_paused) -> None:
    """Against a real Redis: a waiting job and a run without a heartbeat are sent (again), each
    with a new token; a job sent a moment ago is left alone."""
    with broker_down():
        for key in ("waiting", "lost", "fresh"):
            job_request(WORK, key=key)
    past = timezone.now() - timedelta(seconds=1)
    Job.objects.filter(key="waiting").update(due_at=past)
    Job.objects.filter(key="lost").update(state=State.RUNNING, token=4, runs=1, due_at=past)
    Job.objects.filter(key="fresh").update(
        state=State.SENT, token=1, due_at=timezone.now() + timedelta(seconds=30)
    )
    client = redis_server.client()
    client.delete(WORK.queue)
    with broker_at(redis_server.url):
        report = jobs_dispatch_due()
    assert (report["sent"], report["resent"], report["unreachable"]) == (1, 1, 0)
    states = {j.key: (j.state, j.token, j.sends) for j in Job.objects.all()}
    assert states == {
        "waiting": (State.SENT, 2, 1),
        "lost": (State.SENT, 5, 1),
        "fresh": (State.SENT, 1, 0),
    }
    assert client.llen(WORK.queue) == 2
    client.delete(WORK.queue)


def test_a_request_due_now_is_claimed_in_its_transaction_and_published_without_a_write(
    redis_server,
) -> None:
    """The save's own transaction claims the job (state "sent", token 1); after the commit the
    message leaves with that token and the job's row is not written again: one write
    transaction fewer on the path of every save (SQLite has one writer)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    client = redis_server.client()
    client.delete(WORK.queue)
    writes = ("UPDATE", "INSERT")
    # The atomic block closes first: its commit and the publish happen inside the capture.
    capture = CaptureQueriesContext(connection)
    with broker_at(redis_server.url), capture as queries, transaction.atomic():
        job_request(WORK, key="now", n=1)
        inside = len(queries)
        job = Job.objects.get(key="now")
        assert (job.state, job.token, job.sends, job.attempts) == (State.SENT, 1, 1, 1)
    after_commit = [q["sql"] for q in queries.captured_queries[inside + 1 :]]
    assert after_commit  # the commit itself at least
    assert not [sql for sql in after_commit if sql.lstrip().upper().startswith(writes)]
    assert client.llen(WORK.queue) == 1
    message = json.loads(client.lpop(WORK.queue))
    assert message["headers"]["vbq_job"] == [job.pk, 1]
    client.delete(WORK.queue)
