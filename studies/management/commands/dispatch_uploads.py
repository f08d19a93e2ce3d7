"""``manage.py dispatch_uploads [--every SECONDS]``: the upload outbox's dispatcher.

Sends the ingest task of every queued upload that is due (never sent, or sent long ago without a
worker claiming it), re-queues uploads whose task died, cancels transfers abandoned for a day
and deletes leftover temporary folders. Run it from cron, or with ``--every`` as a small
daemon, where Celery beat is not used (``celery worker --beat`` runs the same every minute).
Prints one JSON line per round.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from studies.uploads.housekeeping import uploads_dispatch_due


class Command(BaseCommand):
    help = "Send queued uploads to the Celery worker again (the upload outbox's dispatcher)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, default=0.0, help="repeat every SECONDS (default: once)"
        )

    def handle(self, *args: Any, every: float, **options: Any) -> None:
        while True:
            self.stdout.write(json.dumps(uploads_dispatch_due()))
            if every <= 0:
                return
            time.sleep(every)
