"""Integration tests get a real Redis server and a real Celery worker process."""

from tests.helpers.workers import celery_worker, redis_url  # noqa: F401
