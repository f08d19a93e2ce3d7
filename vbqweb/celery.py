"""The Celery application.

Configuration comes from Django settings (``CELERY_*``), so the worker and the web process
read one source of truth: the environment, through ``vbqweb.settings``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vbqweb.settings")

app = Celery("vbqweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
