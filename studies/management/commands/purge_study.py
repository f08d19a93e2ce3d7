"""``manage.py purge_study STUDY_ID --yes``: delete a study and everything of it, logged.

Readings, revisions, results, the analysis, cases, series, instances and their stored files
(local folder or S3, through the storage API), uploads and their staged bytes, thresholds and
roles. Without ``--yes`` it only says what it would delete and exits with status 1. The audit
trail keeps the study's events and gains a ``study.purged`` one (``docs/audit.md``).
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.erasure import study_purge, study_purge_preview
from studies.models import Study
from vbqweb.commands import OneLineErrorsMixin


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Delete a study with its readings, results, uploads and stored files (logged)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study_id", type=int)
        parser.add_argument(
            "--yes", action="store_true", help="really delete (without it: say what would go)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(pk=options["study_id"]).first()
        if study is None:
            raise CommandError(f"no study {options['study_id']}")
        if not options["yes"]:
            preview = json.dumps(study_purge_preview(study=study), separators=(",", ":"))
            raise CommandError(
                f"would delete study {study.pk} ({study.name!r}) and {preview}: add --yes"
            )
        deleted = study_purge(study=study, by=f"manage.py purge_study ({getpass.getuser()})")
        total = sum(deleted.values())
        self.stdout.write(
            f"purged study {options['study_id']}: {total} rows, {json.dumps(deleted)}"
        )
