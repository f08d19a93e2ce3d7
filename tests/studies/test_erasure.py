"""Erasure (issue 12): a deleted study's stored files go too, through the storage API and only
once the deletion has committed (local folder and a real S3 server); ``manage.py purge_study``
removes everything of a study and leaves the audit trail whole."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import transaction

from readers.analysis import artifacts
from readers.models import Reading, ReadingRevision, StudyAnalysis, VbqResult
from studies.models import Case, Instance, Study, Upload
from studies.uploads.staging import piece_name, staging_exists, staging_storage
from studies.uploads.transfer import upload_create
from tests.helpers import factories
from tests.helpers.dicomfactory import mr_dataset
from tests.helpers.s3 import SeaweedS3, seaweed, site_storages  # noqa: F401 (fixture)
from vbqweb.audit.actions import Action
from vbqweb.audit.models import AuditEvent


def _instance(study: Study, n: int = 0) -> Instance:
    case = factories.CaseFactory(study=study)
    series = factories.SeriesFactory(case=case)
    buffer = io.BytesIO()
    mr_dataset(np.arange(16).reshape(4, 4) + n).save_as(buffer, enforce_file_format=True)
    return factories.InstanceFactory(
        series=series, file=ContentFile(buffer.getvalue(), name="x.dcm"), rows=4, columns=4
    )


def test_deleting_a_study_deletes_its_files_after_the_commit(
    world, django_capture_on_commit_callbacks
) -> None:
    instance = _instance(world.study_a)
    kept = _instance(world.study_b, 1)
    storage, name = instance.file.storage, instance.file.name
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        world.study_a.delete()
        assert storage.exists(name)  # not before the commit
    assert not storage.exists(name)
    assert kept.file.storage.exists(kept.file.name)  # another study's files stay


def test_a_deletion_rolled_back_keeps_its_files(world, django_capture_on_commit_callbacks) -> None:
    instance, pk = _instance(world.study_a), world.study_a.pk

    def delete_then_fail() -> None:
        with transaction.atomic():
            world.study_a.delete()
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        delete_then_fail()
    assert callbacks == []
    assert instance.file.storage.exists(instance.file.name)
    assert Study.objects.filter(pk=pk).exists()


@pytest.mark.integration
def test_deleting_a_study_deletes_its_objects_in_s3(
    world,
    settings,
    seaweed: SeaweedS3,  # noqa: F811
    django_capture_on_commit_callbacks,
) -> None:
    settings.STORAGES = site_storages(seaweed.environ())
    instance = _instance(world.study_a)
    key = instance.file.name
    built = artifacts.file_storage().save(
        f"{artifacts.study_folder(world.study_a.pk)}/sr/reading.dcm", ContentFile(b"SR")
    )
    assert any(k.endswith(key) for k in seaweed.keys())  # noqa: SIM118 (a method of ours)
    assert any(k.endswith(built) for k in seaweed.keys())  # noqa: SIM118
    with django_capture_on_commit_callbacks(execute=True):
        world.study_a.delete()
    assert not any(k.endswith(key) for k in seaweed.keys())  # noqa: SIM118
    assert not any(k.endswith(built) for k in seaweed.keys())  # noqa: SIM118 (its SRs too)


@pytest.fixture
def full_study(world):
    """Study A with a case, an image, a scored reading with its revision, an upload with
    staged bytes and a stored analysis."""
    instance = _instance(world.study_a)
    case = instance.series.case
    reading = factories.ReadingFactory(reader=world.reader, case=case, roi_version=1)
    ReadingRevision.objects.create(reading=reading, roi_version=1, rois={})
    VbqResult.objects.create(reading=reading, roi_version=1, algorithm_version="1", status="ok")
    StudyAnalysis.objects.create(study=world.study_a)
    upload = upload_create(
        study=world.study_a, created_by=world.manager, name="u", files=1, total_bytes=3
    )
    name = piece_name(upload, index=0, size=3, offset=0, length=3)
    staging_storage().save(name, ContentFile(b"abc"))
    assert staging_exists(upload)
    built = artifacts.file_storage()
    names = []
    for study in (world.study_a, world.study_b):  # a report and an SR built for each study
        folder = artifacts.study_folder(study.pk)
        names.append(built.save(f"{folder}/pdf-0123.pdf", ContentFile(b"%PDF")))
        names.append(built.save(f"{folder}/sr/reading.dcm", ContentFile(b"SR")))
    return instance, reading, upload, names


def test_purge_without_yes_deletes_nothing(world, full_study) -> None:
    with pytest.raises(CommandError, match=r"would delete study .* add --yes"):
        call_command("purge_study", str(world.study_a.pk))
    assert Study.objects.filter(pk=world.study_a.pk).exists()
    assert not AuditEvent.objects.filter(action=Action.STUDY_PURGED).exists()


def test_purge_removes_everything_of_the_study_and_is_logged(
    world, full_study, django_capture_on_commit_callbacks
) -> None:
    instance, reading, upload, built_names = full_study
    pk = world.study_a.pk
    events_before = AuditEvent.objects.filter(study_id=pk).count()
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_study", str(pk), "--yes", stdout=out)
    assert f"purged study {pk}" in out.getvalue()
    assert not Study.objects.filter(pk=pk).exists()
    assert not Case.objects.filter(study_id=pk).exists()
    assert not Reading.objects.filter(pk=reading.pk).exists()
    assert not ReadingRevision.objects.filter(reading_id=reading.pk).exists()
    assert not VbqResult.objects.filter(reading_id=reading.pk).exists()
    assert not StudyAnalysis.objects.filter(study_id=pk).exists()
    assert not Upload.objects.filter(pk=upload.pk).exists()
    assert not staging_exists(upload.pk)
    assert not instance.file.storage.exists(instance.file.name)
    built = artifacts.file_storage()
    assert not built.exists(artifacts.study_folder(pk))  # its reports and SRs, folders too
    assert not any(built.exists(name) for name in built_names[:2])
    assert all(built.exists(name) for name in built_names[2:])  # study B's stay
    assert Study.objects.filter(pk=world.study_b.pk).exists()
    # The trail keeps the study's history (its roles among it) and adds the purge.
    [purged] = AuditEvent.objects.filter(action=Action.STUDY_PURGED)
    assert purged.study_id == pk
    assert purged.detail["deleted"]["readers.Reading"] == 1
    assert purged.detail["files"] == 1
    assert purged.detail["by"].startswith("manage.py purge_study")
    assert AuditEvent.objects.filter(study_id=pk).count() > events_before
    removed = AuditEvent.objects.filter(action=Action.ROLE_REMOVED, study_id=pk)
    assert {e.detail["username"] for e in removed} == {
        "manager",
        "reader",
        "other_reader",
        "adjudicator",
    }
    verify = io.StringIO()
    call_command("audit_verify", stdout=verify)
    assert "intact" in verify.getvalue()
