"""The catalogue of background work (``vbqweb.tasks``) and the registered tasks are one list."""

from __future__ import annotations

from django.conf import settings

import readers.tasks
import studies.tasks
from vbqweb.celery import app
from vbqweb.tasks import ALL_WORK, INGEST_UPLOAD, QUEUES, SCORE_READING, route


def site_tasks() -> set[str]:
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_work_names_a_registered_task() -> None:
    assert readers.tasks.compute_reading_vbq.name in site_tasks()
    assert {work.name for work in ALL_WORK} == site_tasks()


def test_work_names_are_unique() -> None:
    assert len({work.name for work in ALL_WORK}) == len(ALL_WORK)


def test_every_task_keeps_the_delivery_guarantees() -> None:
    for name in site_tasks():
        task = app.tasks[name]
        assert task.acks_late, name
        assert task.reject_on_worker_lost, name
        assert task.soft_time_limit < task.time_limit, name


def test_the_ingest_task_has_the_long_limit() -> None:
    assert studies.tasks.ingest_upload.time_limit == settings.VBQ_INGEST_TIME_LIMIT


def test_beat_sends_only_known_work_to_its_queue_every_few_seconds() -> None:
    works = {work.name: work for work in ALL_WORK}
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["options"]["queue"] == works[entry["task"]].queue
        assert entry["options"]["expires"] >= entry["schedule"]
    [dispatcher] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if "dispatch" in e["task"]]
    assert dispatcher["schedule"] == settings.VBQ_DISPATCH_EVERY <= 10


def test_every_work_has_its_queue_and_the_router_says_so() -> None:
    for work in ALL_WORK:
        assert work.queue in QUEUES
        assert route(work.name) == {"queue": work.queue}
        assert app.amqp.router.route({}, work.name)["queue"].name == work.queue
    assert route("celery.ping") is None
    # A reader's score never waits behind an upload's ingest.
    assert SCORE_READING.queue != INGEST_UPLOAD.queue
    assert SCORE_READING.deadline <= 30
