"""``manage.py dispatch [--every SECONDS]``: the outbox's dispatcher and the uploads' upkeep.

Sends every job of the outbox that is due (never sent or its send failed, sent and not picked
up within its deadline, running without a heartbeat within its deadline) and tidies uploads
(dead ingests, transfers abandoned for a day, leftover folders). Celery beat does the same on
its own (``celery -A vbqweb beat``: the dispatcher every ``VBQ_DISPATCH_EVERY`` seconds, the
upkeep every minute); run this from cron, or with ``--every`` as a small daemon, where beat is
not used, or once by hand. Prints one JSON line per round.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from studies.uploads.housekeeping import uploads_tidy
from vbqweb.jobs import jobs_dispatch_due


class Command(BaseCommand):
    help = "Send the outbox's due jobs to the Celery workers and tidy uploads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, default=0.0, help="repeat every SECONDS (default: once)"
        )

    def handle(self, *args: Any, every: float, **options: Any) -> None:
        while True:
            report = {"jobs": jobs_dispatch_due(), "uploads": uploads_tidy()}
            self.stdout.write(json.dumps(report))
            if every <= 0:
                return
            time.sleep(every)
