"""The demo data: users with the printed passwords, one study of phantom cases, idempotent."""

from __future__ import annotations

from io import StringIO

import pydicom
import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from readers.management.commands.seed_demo import DEMO_STUDY, DEMO_USERS
from readers.models import Reading
from studies.models import Instance, ReferenceStandard, Role, Series, Study
from studies.phantom.case import make_case
from studies.uploads.config import deid_uid


@pytest.mark.django_db
def test_seed_demo_twice_builds_one_study_and_prints_working_logins() -> None:
    for _ in range(2):
        out = StringIO()
        call_command("seed_demo", cases=2, seed=3, stdout=out)
    study = Study.objects.get(name=DEMO_STUDY)
    assert study.cases.count() == 2
    assert Instance.objects.filter(series__case__study=study).count() >= 22  # 11+ slices each
    assert set(study.thresholds.values_list("name", flat=True)) >= {"screening", "fracture"}
    assert study.assignments.filter(role=Role.READER).count() == 3
    assert study.assignments.filter(role=Role.MANAGER).count() == 1
    assert study.assignments.filter(role=Role.ADJUDICATOR).count() == 1
    assert study.adjudication
    assert study.adjudication_threshold.name == "osteoporosis"
    readings = Reading.objects.filter(case__study=study)
    # 3 readers x 2 sessions x 2 cases, less the two cases reader3 has left in session 2
    assert readings.count() == 3 * 2 * 2 - 2
    assert all(r.is_locked for r in readings)
    assert all(r.current_result().status == "ok" for r in readings)
    assert ReferenceStandard.objects.filter(case__study=study).count() == 2
    assert study.analysis.computed_at is not None
    assert study.analysis.analysis["readers"] == ["reader1", "reader2", "reader3"]
    assert study.analysis.diagnostics is not None
    # Built through the ingest: one finished upload, every file accepted, de-identified bytes
    # under the site's UIDs for the phantom's own (which are nowhere).
    upload = study.uploads.get()
    assert upload.status == "done"
    assert set(upload.items.values_list("status", flat=True)) == {"accepted"}
    phantom = make_case(3, 1).datasets[0]
    stored = Instance.objects.get(sop_instance_uid=deid_uid(str(phantom.SOPInstanceUID)))
    with stored.file.open("rb") as handle:
        ds = pydicom.dcmread(handle)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.StudyDate != phantom.StudyDate  # shifted
    assert not Instance.objects.filter(sop_instance_uid=str(phantom.SOPInstanceUID)).exists()
    assert all(s.selected and s.eligible for s in Series.objects.filter(case__study=study))
    reading = readings.first()
    assert reading.rois["series_instance_uid"] == reading.case.reading_series.series_instance_uid
    text = out.getvalue()
    for username, password, _ in DEMO_USERS:
        assert f"{username:<11} {password}" in text
        assert authenticate(username=username, password=password) is not None
