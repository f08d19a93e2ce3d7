"""What the audit trail records, through the real views: sign-ins, a manager looking at a
reading, downloads, image retrieval (once per session and case), ROI saves and submissions,
role changes (the history outlives the assignment), study edits and the ingest."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from studies.models import Assignment, Role, UploadStatus
from studies.uploads.ingest import upload_ingest
from tests.helpers import factories
from tests.helpers.brokers import broker_down
from tests.helpers.dicomfactory import mr_dataset
from tests.helpers.phi import phi_dataset
from tests.helpers.readings import phantom_case
from tests.helpers.uploads import Browser
from vbqweb.audit.actions import Action
from vbqweb.audit.models import AuditEvent


def events(action: Action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def test_sign_in_failure_and_sign_out(client, world) -> None:
    url = reverse("login")
    client.post(url, {"username": "=HYPERLINK(1)", "password": "wrong"})
    response = client.post(url, {"username": "reader", "password": factories.PASSWORD})
    assert response.status_code == 302
    client.post(reverse("logout"))
    [failed] = events(Action.LOGIN_FAILED)
    assert failed.actor_id is None
    assert failed.detail == {"username": "=HYPERLINK(1)"}
    assert failed.remote_addr == "127.0.0.1"
    [login] = events(Action.LOGIN)
    [logout] = events(Action.LOGOUT)
    assert (login.actor_id, login.actor_username) == (world.reader.pk, "reader")
    assert logout.actor_username == "reader"


def test_a_lockout_is_recorded(client, world, settings) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "reader", "password": "wrong"})
    [locked] = events(Action.LOCKED_OUT)
    assert locked.detail == {"username": "reader"}
    assert len(events(Action.LOGIN_FAILED)) == settings.AXES_FAILURE_LIMIT


@pytest.fixture
def reading(world):
    case = factories.CaseFactory(study=world.study_a)
    return factories.ReadingFactory(reader=world.reader, case=case)


def test_a_manager_looking_at_a_reading_is_recorded_its_reader_is_not(
    client, world, reading
) -> None:
    url = reverse("readers:detail", kwargs={"public_id": reading.public_id})
    client.force_login(world.reader)
    assert client.get(url).status_code == 200
    assert events(Action.READING_VIEWED) == []
    client.force_login(world.manager)
    assert client.get(url).status_code == 200
    [viewed] = events(Action.READING_VIEWED)
    assert (viewed.actor_username, viewed.object_type, viewed.object_id) == (
        "manager",
        "readers.reading",
        str(reading.pk),
    )
    assert viewed.study_id == world.study_a.pk
    client.force_login(world.manager_b)
    assert client.get(url).status_code == 404
    assert len(events(Action.READING_VIEWED)) == 1  # a refusal shows nothing: nothing to record


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("analytics:measurements_csv", "measurements.csv"),
        ("analytics:measurements_json", "measurements.json"),
        ("analytics:statistics_csv", "statistics.csv"),
        ("analytics:study_srs", "sr.zip"),
    ],
)
def test_every_download_is_recorded(client, world, name, file) -> None:
    if file == "sr.zip":  # served once the worker has built it for the analysis (issue 13)
        from readers.analysis.artifacts import files_build
        from readers.analysis.services import analysis_compute

        analysis_compute(study_pk=world.study_a.pk)
        files_build(study_pk=world.study_a.pk)
    client.force_login(world.manager)
    assert client.get(reverse(name, kwargs={"pk": world.study_a.pk})).status_code == 200
    [download] = events(Action.DOWNLOADED)
    assert download.actor_username == "manager"
    assert download.study_id == world.study_a.pk
    assert download.detail["file"].endswith(file)


def test_the_reading_sr_download_names_the_reading(client, world, reading) -> None:
    """No score yet: no SR (409), so nothing was downloaded."""
    client.force_login(world.manager)
    url = reverse(
        "analytics:reading_sr",
        kwargs={"pk": world.study_a.pk, "reading_public_id": reading.public_id},
    )
    assert client.get(url).status_code == 409
    assert events(Action.DOWNLOADED) == []


@pytest.fixture
def images(world):
    case = factories.CaseFactory(study=world.study_a)
    series = factories.SeriesFactory(case=case)
    uids = {"study_uid": case.study_instance_uid, "series_uid": series.series_instance_uid}
    sops = []
    for i in range(3):
        buffer = io.BytesIO()
        mr_dataset(np.arange(16).reshape(4, 4) + i).save_as(buffer, enforce_file_format=True)
        instance = factories.InstanceFactory(
            series=series, file=ContentFile(buffer.getvalue(), name="x.dcm"), rows=4, columns=4
        )
        sops.append(instance.sop_instance_uid)
    return case, uids, sops


def _fetch_all(client: Client, uids: dict[str, str], sops: list[str]) -> None:
    assert client.get(reverse("dicomweb:series_metadata", kwargs=uids)).status_code == 200
    for sop in sops:
        for name, extra in (("dicomweb:frames", {"frame_list": "1"}), ("dicomweb:instance", {})):
            kwargs = uids | {"sop_uid": sop} | extra
            assert client.get(reverse(name, kwargs=kwargs)).status_code == 200


def test_images_are_recorded_once_per_session_and_case_not_per_frame(world, images) -> None:
    case, uids, sops = images
    first = Client()
    first.force_login(world.reader)
    _fetch_all(first, uids, sops)
    _fetch_all(first, uids, sops)
    [retrieved] = events(Action.IMAGES_RETRIEVED)
    assert (retrieved.actor_username, retrieved.object_type) == ("reader", "studies.case")
    assert (retrieved.object_id, retrieved.study_id) == (str(case.pk), world.study_a.pk)
    second = Client()  # another sign-in: another session
    second.force_login(world.reader)
    _fetch_all(second, uids, sops)
    assert len(events(Action.IMAGES_RETRIEVED)) == 2
    outsider = Client()
    outsider.force_login(world.reader_b)
    assert outsider.get(reverse("dicomweb:series_metadata", kwargs=uids)).status_code == 404
    assert len(events(Action.IMAGES_RETRIEVED)) == 2


def test_roi_saves_and_the_submission_are_recorded(client, world, tmp_path) -> None:
    case, _, truth = phantom_case(world.study_a, tmp_path, seed=3)
    reading = factories.ReadingFactory(reader=world.reader, case=case)
    client.force_login(world.reader)
    for _ in range(2):
        response = client.post(
            reverse("readers:rois", kwargs={"public_id": reading.public_id}),
            data=json.dumps(truth["rois"]),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
    response = client.post(
        reverse("readers:submit_json", kwargs={"public_id": reading.public_id}),
        data="{}",
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    saved = events(Action.ROIS_SAVED)
    assert [e.detail for e in saved] == [
        {"roi_version": 1, "after_submit": False},
        {"roi_version": 2, "after_submit": False},
    ]
    assert {(e.actor_username, e.object_id, e.study_id) for e in saved} == {
        ("reader", str(reading.pk), world.study_a.pk)
    }
    [submitted] = events(Action.READING_SUBMITTED)
    assert (submitted.actor_username, submitted.detail) == ("reader", {"roi_version": 2})


def test_role_changes_keep_their_history_after_the_assignment_is_gone(client, world) -> None:
    newcomer = factories.UserFactory(username="newcomer")
    client.force_login(world.manager)
    people = reverse("studies:people", kwargs={"pk": world.study_a.pk})
    assert client.post(people, {"username": "newcomer", "role": Role.READER}).status_code == 302
    assignment = Assignment.objects.get(study=world.study_a, user=newcomer)
    remove = reverse("studies:people_remove", kwargs={"pk": assignment.pk})
    assert client.post(remove).status_code == 302
    assert not Assignment.objects.filter(pk=assignment.pk).exists()
    [added] = [e for e in events(Action.ROLE_ADDED) if e.detail.get("username") == "newcomer"]
    [removed] = events(Action.ROLE_REMOVED)
    for event in (added, removed):
        assert (event.actor_username, event.study_id) == ("manager", world.study_a.pk)
        assert event.object_id == str(assignment.pk)
        assert event.detail["user_id"] == newcomer.pk
        assert event.detail["role"] == Role.READER
    assert removed.detail["since"] == assignment.created_at.isoformat()
    newcomer.delete()  # the user may go too: the trail still names them
    assert AuditEvent.objects.get(pk=removed.pk).detail["username"] == "newcomer"


def test_a_study_edit_names_what_changed(client, world) -> None:
    study = world.study_a
    data = {
        "name": study.name,
        "description": "changed",
        "roi_statistic": study.roi_statistic,
        "level_aggregate": study.level_aggregate,
        "min_levels": str(study.min_levels),
        "sessions": str(study.sessions),
        "washout_days": str(study.washout_days),
        "thresholds-TOTAL_FORMS": "1",
        "thresholds-INITIAL_FORMS": "0",
        "thresholds-MIN_NUM_FORMS": "0",
        "thresholds-MAX_NUM_FORMS": "20",
        "thresholds-0-name": "screening",
        "thresholds-0-value": "3.0",
    }
    if study.randomise_order:
        data["randomise_order"] = "on"
    if study.adjudication_use_sdc:  # a checked box, as the browser posts it
        data["adjudication_use_sdc"] = "on"
    client.force_login(world.manager)
    response = client.post(reverse("studies:edit", kwargs={"pk": study.pk}), data)
    assert response.status_code == 302
    [edited] = events(Action.STUDY_EDITED)
    assert edited.detail == {"changed": ["description", "thresholds"]}
    assert (edited.actor_username, edited.study_id) == ("manager", study.pk)


@pytest.mark.django_db(transaction=True)
def test_the_ingest_is_recorded_from_start_to_end(client, world) -> None:
    files = []
    for index in (1, 2):
        buffer = io.BytesIO()
        phi_dataset(index=index, series=1).save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
    client.force_login(world.manager)
    browser = Browser(client, world.study_a)
    browser.create(files)
    browser.send(files)
    with broker_down():
        assert browser.finish().status_code == 200
    upload_id = browser.upload_pk
    assert upload_ingest(upload_id=upload_id) == UploadStatus.DONE
    trail = [
        (e.action, e.actor_username)
        for e in AuditEvent.objects.filter(object_type="studies.upload").order_by("sequence")
    ]
    assert trail == [
        (Action.UPLOAD_STARTED, "manager"),
        (Action.UPLOAD_QUEUED, "manager"),
        (Action.UPLOAD_FINISHED, ""),  # the worker: the system
    ]
    finished = events(Action.UPLOAD_FINISHED)[0]
    assert finished.detail["instances"] == 2
    assert finished.study_id == world.study_a.pk


def test_account_changes_are_recorded_without_secrets(client, world) -> None:
    """An invitation creates an account, a password change sets a new hash, a TOTP device is
    confirmed then deleted: each is an event naming the user, never the hash or the key."""
    client.force_login(world.manager)
    response = client.post(
        reverse("accounts:invite", args=[world.study_a.pk]),
        {"username": "newreader", "email": ""},
    )
    assert response.status_code == 200
    [created] = [e for e in events(Action.ACCOUNT_CREATED) if e.detail["username"] == "newreader"]
    assert created.actor_username == "manager"

    client.force_login(world.reader)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": factories.PASSWORD,
            "new_password1": "a-Much-longer-passphrase-9",
            "new_password2": "a-Much-longer-passphrase-9",
        },
    )
    assert response.status_code == 302
    [changed] = [
        e
        for e in events(Action.PASSWORD_SET)
        if e.sequence > created.sequence and e.detail["username"] == "reader"
    ]
    assert (changed.actor_username, changed.detail["username"]) == ("reader", "reader")
    world.reader.refresh_from_db()
    assert world.reader.password not in json.dumps(changed.detail)

    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=world.reader, name="phone", confirmed=False)
    assert events(Action.MFA_ENROLLED) == []  # an unconfirmed enrolment is not yet a factor
    device.confirmed = True
    device.save()
    device.delete()
    [enrolled] = events(Action.MFA_ENROLLED)
    [removed] = events(Action.MFA_REMOVED)
    assert enrolled.object_id == removed.object_id == str(world.reader.pk)
    assert device.key not in json.dumps(enrolled.detail)
