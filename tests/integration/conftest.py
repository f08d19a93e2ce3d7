"""Integration tests get real Celery workers and a real Celery beat, for this package only
(the one Redis server and the workers' environment are the session's: tests/conftest.py)."""

from tests.helpers.workers import celery_beat, celery_worker  # noqa: F401
