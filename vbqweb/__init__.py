"""The Django project: settings, URLs, the Celery app and the project's task decorator."""

from vbqweb.celery import app as celery_app

__all__ = ["celery_app"]
