"""``/admin/``: readings, results and built files are read-only there (a superuser can neither
edit a submitted reading nor invent a score), and whatever an admin does change is in the
trail."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from readers.models import Reading, VbqResult
from studies.models import CaseSet
from tests.helpers import factories
from vbqweb.audit.actions import Action
from vbqweb.audit.models import AuditEvent


@pytest.fixture
def admin_client(client, world):
    client.force_login(world.admin)
    return client


@pytest.fixture
def reading(world):
    case = factories.CaseFactory(study=world.study_a)
    return factories.ReadingFactory(
        reader=world.reader, case=case, status=Reading.Status.SUBMITTED, rois={"x": 1}
    )


def test_a_reading_is_shown_read_only_and_its_view_recorded(admin_client, reading) -> None:
    response = admin_client.get(reverse("admin:readers_reading_change", args=[reading.pk]))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    [viewed] = AuditEvent.objects.filter(action=Action.READING_VIEWED)
    assert (viewed.actor_username, viewed.object_id) == ("admin", str(reading.pk))


def test_a_reading_cannot_be_changed_added_or_deleted(admin_client, reading) -> None:
    change = reverse("admin:readers_reading_change", args=[reading.pk])
    response = admin_client.post(change, {"status": "draft", "rois": "{}", "session": "1"})
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:readers_reading_add")).status_code == 403
    delete = reverse("admin:readers_reading_delete", args=[reading.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    reading.refresh_from_db()
    assert (reading.status, reading.rois) == (Reading.Status.SUBMITTED, {"x": 1})


def test_no_result_can_be_added_by_hand(admin_client, reading) -> None:
    assert admin_client.get(reverse("admin:readers_vbqresult_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:readers_vbqresult_add"),
        {"reading": reading.pk, "roi_version": 0, "algorithm_version": "x", "status": "ok"},
    )
    assert response.status_code == 403
    assert not VbqResult.objects.exists()


def test_the_audit_trail_is_read_only_in_the_admin(admin_client, world) -> None:
    event = AuditEvent.objects.order_by("sequence").first()  # the world's roles were recorded
    assert admin_client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


def test_admin_additions_changes_and_deletions_are_recorded(admin_client, world) -> None:
    add = reverse("admin:studies_caseset_add")
    data = {"study": world.study_a.pk, "name": "batch", "created_by": ""}
    assert admin_client.post(add, data).status_code == 302
    case_set = CaseSet.objects.get(name="batch")
    change = reverse("admin:studies_caseset_change", args=[case_set.pk])
    assert admin_client.post(change, data | {"name": "renamed"}).status_code == 302
    [added] = AuditEvent.objects.filter(action=Action.ADMIN_ADDED)
    [changed] = AuditEvent.objects.filter(action=Action.ADMIN_CHANGED)
    for event in (added, changed):
        assert (event.actor_username, event.object_type) == ("admin", "studies.caseset")
        assert (event.object_id, event.study_id) == (str(case_set.pk), world.study_a.pk)
    assert "Name" in changed.detail["change"]
    assert changed.detail["repr"] == "renamed"


def test_admin_deletions_are_recorded_one_by_one_and_in_bulk(admin_client, world) -> None:
    """Django writes a bulk delete's log in one insert (no signal): each deleted object is
    still one event."""
    sets = [CaseSet.objects.create(study=world.study_a, name=f"s{i}") for i in range(3)]
    delete = reverse("admin:studies_caseset_delete", args=[sets[0].pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    changelist = reverse("admin:studies_caseset_changelist")
    response = admin_client.post(
        changelist,
        {
            "action": "delete_selected",
            ACTION_CHECKBOX_NAME: [sets[1].pk, sets[2].pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not CaseSet.objects.filter(pk__in=[s.pk for s in sets]).exists()
    deleted = AuditEvent.objects.filter(action=Action.ADMIN_DELETED).order_by("sequence")
    assert sorted(e.object_id for e in deleted) == sorted(str(s.pk) for s in sets)
    assert {(e.actor_username, e.study_id) for e in deleted} == {("admin", world.study_a.pk)}


def test_a_consensus_is_listed_with_its_provenance_and_never_edited(admin_client, reading) -> None:
    from django.utils import timezone

    from readers.models import Consensus

    consensus = Consensus.objects.create(
        case=reading.case,
        session=1,
        source=Consensus.Source.ACCEPTED,
        accepted_reading=reading,
        accepted_label="Reader B",
        vbq=2.875,
        decided_at=timezone.now(),
    )
    listing = admin_client.get(reverse("admin:readers_consensus_changelist"))
    assert listing.status_code == 200
    assert "Reader B" in listing.content.decode()
    assert admin_client.get(reverse("admin:readers_consensus_add")).status_code == 403
    change = reverse("admin:readers_consensus_change", args=[consensus.pk])
    assert admin_client.post(change, {"vbq": "9.9"}).status_code == 403
    consensus.refresh_from_db()
    assert consensus.vbq == 2.875


def test_a_studys_built_files_are_listed_never_linked_or_changed(admin_client, world) -> None:
    from django.core.files.base import ContentFile

    from readers.models import StudyArtifact

    row = StudyArtifact.objects.create(
        study=world.study_a,
        kind="pdf",
        fingerprint="f" * 64,
        building="b" * 64,
        progress=1,
        total=3,
    )
    row.file.save("report.pdf", ContentFile(b"%PDF"), save=True)
    listed = admin_client.get(reverse("admin:readers_studyartifact_changelist"))
    assert listed.status_code == 200
    assert "PDF report" in listed.content.decode()
    assert "1 of 3" in listed.content.decode()
    page = admin_client.get(reverse("admin:readers_studyartifact_change", args=[row.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert row.file.name in text  # named
    assert f'href="{row.file.url}"' not in text  # not linked: downloads are audited elsewhere
    assert admin_client.get(reverse("admin:readers_studyartifact_add")).status_code == 403
    delete = reverse("admin:readers_studyartifact_delete", args=[row.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert StudyArtifact.objects.filter(pk=row.pk).exists()
