"""``manage.py seed_demo``: demo users and a demo study of phantom cases (idempotent).

Creates a site admin, a study manager and three readers with the passwords printed below, a
study with the literature's thresholds as editable settings, phantom cases, and one submitted
reading per reader on the first case (placed at the phantom's suggested ROIs) so that the
score's round trip through the Celery worker can be seen at once. Running it again changes
nothing but the passwords, which are reset to the printed ones.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from readers import services as reader_services
from studies import services as study_services
from studies.models import Role, Study
from studies.phantom import write_phantom

DEMO_STUDY = "Demo VBQ study (phantom)"
DEMO_USERS = [
    # username, password, role in the demo study (None: site admin)
    ("admin", "vbq-demo-admin", None),
    ("manager", "vbq-demo-manager", Role.MANAGER),
    ("reader1", "vbq-demo-reader1", Role.READER),
    ("reader2", "vbq-demo-reader2", Role.READER),
    ("reader3", "vbq-demo-reader3", Role.READER),
]
DEMO_THRESHOLDS = {"normal-upper": 2.8, "screening": 2.95, "osteoporosis": 3.0, "fracture": 3.05}


class Command(BaseCommand):
    help = "Create the demo users and the demo study from phantom cases (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--cases", type=int, default=8)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--logins-only", action="store_true", help="Only print the logins.")

    def handle(self, *args: Any, cases: int, seed: int, logins_only: bool, **options: Any) -> None:
        if not logins_only:
            self._seed(cases=cases, seed=seed)
        self.stdout.write("\n  Demo logins (username / password):")
        for username, password, role in DEMO_USERS:
            what = "site admin" if role is None else Role(role).label.lower()
            self.stdout.write(f"    {username:<9} {password:<18} {what}")

    def _seed(self, *, cases: int, seed: int) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            users = {}
            for username, password, role in DEMO_USERS:
                user, _ = user_model.objects.get_or_create(username=username)
                user.is_superuser = user.is_staff = role is None
                user.set_password(password)
                user.save()
                users[username] = (user, role)
            study = Study.objects.filter(name=DEMO_STUDY).first()
            created = study is None
            if study is None:
                study = study_services.study_create(name=DEMO_STUDY, thresholds=DEMO_THRESHOLDS)
            for user, role in users.values():
                if role is not None:
                    study_services.assignment_set(study=study, user=user, role=role)
        if not created and study.cases.exists():
            self.stdout.write(f"Demo study already there: {study.cases.count()} cases.")
            return
        with tempfile.TemporaryDirectory() as tmp:
            case_dirs = write_phantom(Path(tmp), cases=cases, seed=seed)
            study_services.case_set_import_trusted_files(
                study=study,
                name=f"Phantom cases (seed {seed})",
                cases=[
                    (f"Case {i:03d}", list(d.glob("*.dcm"))) for i, d in enumerate(case_dirs, 1)
                ],
            )
            truth = json.loads((case_dirs[0] / "truth.json").read_text())
        first_case = study.cases.order_by("label").first()
        for user, role in users.values():
            if role != Role.READER:
                continue
            reading = reader_services.reading_open(reader=user, case=first_case, session=1)
            if reading.rois is None:
                reading = reader_services.reading_save_rois(reading=reading, data=truth["rois"])
                reader_services.reading_submit(reading=reading)
        self.stdout.write(
            f"Demo study created: {study.cases.count()} phantom cases, "
            f"{len(DEMO_THRESHOLDS)} thresholds, one submitted reading per reader."
        )
