"""Integration tests get a real Redis server, real Celery workers and a real Celery beat."""

from tests.helpers.workers import (  # noqa: F401
    celery_beat,
    celery_processes,
    celery_worker,
    redis_server,
    redis_url,
)
