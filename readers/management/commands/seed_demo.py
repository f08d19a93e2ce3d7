"""``manage.py seed_demo``: demo users and a demo study of phantom cases (idempotent).

Creates a site admin, a study manager, three readers and an adjudicator with the passwords
printed below, and a study (adjudication on) whose thresholds are the literature's values as
editable settings. Its phantom cases are brought in through the site's de-identifying ingest
(the code path of a manager's upload: new UIDs, shifted dates, series eligibility) and come
with a reference standard (DXA T-score, QCT BMD, fragility fracture) derived from each case's
true VBQ, and with two sessions of readings by each reader: the phantom's suggested ROIs moved
and resized by a reader-specific habit plus random hand jitter, so that the scores, and hence
the agreement, vary the way real readers' do. Session 1 is dated 45 days ago (past the
wash-out); reader3 has two cases of session 2 left to read. Scores are computed with the same
service the Celery worker runs; running the command again changes nothing but the passwords,
which are reset to the printed ones.
"""

from __future__ import annotations

import copy
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from readers import services as reader_services
from readers.analysis.services import analysis_compute
from readers.measurement.rois import remap_uids
from readers.models import Reading
from studies import services as study_services
from studies.models import ItemStatus, ReferenceStandard, Role, Study, UploadStatus
from studies.phantom.writer import write_phantom
from studies.uploads.config import deid_uid
from studies.uploads.ingest import case_set_ingest_paths
from studies.vocabulary import CSF

DEMO_STUDY = "Demo VBQ study (phantom)"
DEMO_USERS = [
    # username, password, role in the demo study (None: site admin)
    ("admin", "vbq-demo-admin", None),
    ("manager", "vbq-demo-manager", Role.MANAGER),
    ("reader1", "vbq-demo-reader1", Role.READER),
    ("reader2", "vbq-demo-reader2", Role.READER),
    ("reader3", "vbq-demo-reader3", Role.READER),
    ("adjudicator", "vbq-demo-adjudicator", Role.ADJUDICATOR),
]
DEMO_THRESHOLDS = {"normal-upper": 2.8, "screening": 2.95, "osteoporosis": 3.0, "fracture": 3.05}
# A reader's habit: a systematic shift of every ROI (pixels) and a scale of its radii.
HABITS = {
    "reader1": ((0.0, 0.0), 1.0),
    "reader2": ((1.0, -0.6), 0.9),
    "reader3": ((-0.8, 0.8), 1.1),
}
LEFT_IN_SESSION_2 = {"reader3": 2}


class Command(BaseCommand):
    help = "Create the demo users and the demo study from phantom cases (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--cases", type=int, default=10)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--logins-only", action="store_true", help="Only print the logins.")

    def handle(self, *args: Any, cases: int, seed: int, logins_only: bool, **options: Any) -> None:
        if not logins_only:
            self._seed(cases=cases, seed=seed)
        self.stdout.write("\n  Demo logins (username / password):")
        for username, password, role in DEMO_USERS:
            what = "site admin" if role is None else Role(role).label.lower()
            self.stdout.write(f"    {username:<11} {password:<20} {what}")
        if settings.VBQ_MFA_REQUIRED:
            self.stdout.write(
                "\n  Two-factor sign-in is required for admin and manager (VBQ_MFA_REQUIRED):"
                "\n  at their first sign-in the site shows a QR code to scan with an authenticator"
                "\n  app (FreeOTP, Google or Microsoft Authenticator, ...), then asks for its"
                "\n  six-digit code at every sign-in. Readers may set it up under Account."
            )

    def _seed(self, *, cases: int, seed: int) -> None:
        users = self._users()
        study = Study.objects.filter(name=DEMO_STUDY).first()
        if study is not None and study.cases.exists():
            self.stdout.write(f"Demo study already there: {study.cases.count()} cases.")
            return
        if study is None:
            study = study_services.study_create(name=DEMO_STUDY, thresholds=DEMO_THRESHOLDS)
        # Adjudication on, so that the demo shows it: readers who fall on both sides of the
        # osteoporosis cut-off, or further apart than the smallest detectable change.
        study.adjudication = True
        study.adjudication_threshold = study.thresholds.get(name="osteoporosis")
        study.adjudication_use_sdc = True
        study.save(update_fields=["adjudication", "adjudication_threshold", "adjudication_use_sdc"])
        for user, role in users.values():
            if role is not None:
                study_services.assignment_set(study=study, user=user, role=role)
        with tempfile.TemporaryDirectory() as tmp:
            case_dirs = write_phantom(Path(tmp), cases=cases, seed=seed)
            truths = self._ingest(study, case_dirs, seed, manager=users["manager"][0])
        rng = np.random.default_rng(seed)
        self._reference_standard(study, truths, rng)
        self._readings(study, users, truths, rng)
        analysis_compute(study_pk=study.pk)
        self.stdout.write(
            f"Demo study created: {study.cases.count()} phantom cases with a reference standard, "
            f"{Reading.objects.filter(case__study=study).count()} readings by 3 readers in 2 "
            "sessions, agreement computed."
        )

    def _ingest(
        self, study: Study, case_dirs: list[Path], seed: int, *, manager: Any
    ) -> dict[int, Any]:
        """Bring the phantom in as a manager's upload would: through the de-identifying ingest.

        Only the DICOM files go in (the truth files stay behind, as they would on a real site).
        Returns each case's truth by case pk, its ROIs remapped to the de-identified UIDs.
        """
        files = [sorted(d.glob("*.dcm")) for d in case_dirs]
        paths = [p for case_files in files for p in case_files]
        upload = case_set_ingest_paths(
            study=study, paths=paths, name=f"Phantom cases (seed {seed})", created_by=manager
        )
        if upload.status != UploadStatus.DONE:
            raise CommandError(f"the phantom's ingest did not finish: {upload.message}")
        case_of_file = dict(
            upload.items.filter(status=ItemStatus.ACCEPTED).values_list("file_index", "case_id")
        )
        truths: dict[int, Any] = {}
        first = 0
        for case_dir, case_files in zip(case_dirs, files, strict=True):
            case_ids = {case_of_file.get(i) for i in range(first, first + len(case_files))}
            first += len(case_files)
            if len(case_ids) != 1 or None in case_ids:
                raise CommandError(f"{case_dir.name}: not ingested as one case ({case_ids})")
            truth = json.loads((case_dir / "truth.json").read_text())
            truth["rois"] = remap_uids(truth["rois"], deid_uid)
            truths[case_ids.pop()] = truth
        return truths

    def _users(self) -> dict[str, tuple[Any, str | None]]:
        user_model = get_user_model()
        users = {}
        with transaction.atomic():
            for username, password, role in DEMO_USERS:
                user, _ = user_model.objects.get_or_create(username=username)
                user.is_superuser = user.is_staff = role is None
                user.set_password(password)
                user.save()
                if role == Role.MANAGER:
                    user.user_permissions.add(Permission.objects.get(codename="add_study"))
                users[username] = (user, role)
        return users

    def _reference_standard(self, study: Study, truths: dict[str, Any], rng: Any) -> None:
        for case in study.cases.all():
            vbq = truths[case.pk]["truth"]["vbq"]
            ReferenceStandard.objects.update_or_create(
                case=case,
                defaults={
                    "dxa_t_score": round(-0.6 - 2.0 * (vbq - 2.6) + rng.normal(0, 0.7), 1),
                    "qct_bmd": round(165 - 45 * (vbq - 2.6) + rng.normal(0, 18), 0),
                    "fragility_fracture": bool(rng.random() < (0.75 if vbq > 3.2 else 0.1)),
                },
            )

    def _readings(self, study: Study, users: dict, truths: dict, rng: Any) -> None:
        now = timezone.now()
        cases = list(study.cases.order_by("label"))
        for username, (user, role) in users.items():
            if role != Role.READER:
                continue
            for session, when in ((1, now - timedelta(days=45)), (2, now - timedelta(days=2))):
                todo = cases
                if session == 2:
                    todo = cases[: len(cases) - LEFT_IN_SESSION_2.get(username, 0)]
                for case in todo:
                    rois = _as_read(truths[case.pk]["rois"], HABITS[username], rng)
                    if username == "reader3" and session == 1 and case.label == "Case 002":
                        rois["rois"] = [r for r in rois["rois"] if r["label"] != "L4"]
                        rois["rois"].append(
                            {"label": "L4", "excluded": True, "reason": "hemangioma"}
                        )
                    reading = reader_services.reading_open(reader=user, case=case, session=session)
                    reading = reader_services.reading_save_rois(reading=reading, data=rois)
                    reader_services.reading_compute_vbq(
                        reading_pk=reading.pk, roi_version=reading.roi_version
                    )
                    # A demo reader confirms whatever the quality checks say, as a reader may.
                    warned = reader_services.reading_quality(reading=reading).codes
                    reading = reader_services.reading_submit(reading=reading, confirmed=warned)
                    Reading.objects.filter(pk=reading.pk).update(submitted_at=when)


def _as_read(truth_rois: dict[str, Any], habit: tuple, rng: Any) -> dict[str, Any]:
    """The suggested ROIs as a reader with this habit would place them, by hand.

    Marrow ROIs move by the habit plus about 2.5 px of hand jitter and are resized by 0.8-1.1;
    the narrow CSF ROI moves about 0.5 px across the sac and 5 px along it. On the phantom's
    heterogeneous marrow and CSF this gives inter-reader ICCs near 0.9, as published.
    """
    (dx, dy), scale = habit
    rois = copy.deepcopy(truth_rois)
    for roi in rois["rois"]:
        if roi.get("shape") != "ellipse":
            continue
        if roi["label"] == CSF:
            shift = (rng.normal(0, 0.5), rng.normal(0, 5.0))
            radii = [
                roi["radii"][0] * rng.uniform(0.8, 1.0),
                roi["radii"][1] * rng.uniform(0.7, 1.1),
            ]
        else:
            jitter = rng.normal(0, 2.5, size=2)
            shift = (dx + jitter[0], dy + jitter[1])
            grow = scale * rng.uniform(0.8, 1.1)
            radii = [r * grow for r in roi["radii"]]
        roi["center"] = [
            round(roi["center"][0] + shift[0], 2),
            round(roi["center"][1] + shift[1], 2),
        ]
        roi["radii"] = [round(float(r), 2) for r in radii]
    return rois
