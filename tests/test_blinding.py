"""Readers are blind to each other: no page shows another reader's readings or scores."""

from __future__ import annotations

import pytest
from django.urls import reverse

from readers.models import VbqResult
from tests.helpers import factories


@pytest.fixture
def two_readings(world):
    case = factories.CaseFactory(study=world.study_a, label="Case 007")
    factories.SeriesFactory(case=case)
    mine = factories.ReadingFactory(reader=world.reader, case=case, rois={"x": 1}, roi_version=1)
    theirs = factories.ReadingFactory(
        reader=world.other_reader, case=case, rois={"x": 1}, roi_version=1
    )
    for reading, score in ((mine, 2.7182), (theirs, 3.1415)):
        VbqResult.objects.create(
            reading=reading, roi_version=1, algorithm_version="1", status="ok", vbq=score
        )
    return mine, theirs


def test_reader_never_sees_another_readers_score(client, world, two_readings) -> None:
    mine, theirs = two_readings
    client.force_login(world.reader)
    pages = [
        client.get(reverse("home")),
        client.get(reverse("study", kwargs={"pk": world.study_a.pk})),
        client.get(reverse("readers:detail", kwargs={"public_id": mine.public_id})),
        client.get(reverse("readers:score", kwargs={"public_id": mine.public_id})),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        assert "3.14" not in body
        assert "other_reader" not in body
    assert "2.718" in pages[2].content.decode()
    assert (
        client.get(reverse("readers:detail", kwargs={"public_id": theirs.public_id})).status_code
        == 404
    )


def test_manager_sees_every_readers_score(client, world, two_readings) -> None:
    client.force_login(world.manager)
    body = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    assert "3.142" in body
    assert "2.718" in body
    assert "other_reader" in body


def test_manager_of_another_study_sees_nothing(client, world, two_readings) -> None:
    client.force_login(world.manager_b)
    body = client.get(reverse("home")).content.decode()
    assert "Study A" not in body
    response = client.get(reverse("study", kwargs={"pk": world.study_a.pk}))
    assert response.status_code == 404


def test_anonymous_users_reach_only_the_login_page(client, world, two_readings) -> None:
    response = client.get(reverse("study", kwargs={"pk": world.study_a.pk}))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert client.get(reverse("login")).status_code == 200


def test_adjudicator_sees_no_reader_names_and_nothing_else_of_the_study(
    client, world, two_readings
) -> None:
    """Issue 14: an adjudicator is not a reader and is blind to the readers: the readings of a
    disagreeing case are "Reader A/B", never names or ids, and the study's other pages are
    closed (agreement, downloads, the readings themselves)."""
    from studies.models import Threshold

    study = world.study_a
    study.adjudication = True
    study.adjudication_threshold = Threshold.objects.create(study=study, name="s", value=3.0)
    study.adjudication_use_sdc = False
    study.save()
    mine, theirs = two_readings
    type(mine).objects.filter(pk__in=[mine.pk, theirs.pk]).update(status="submitted")
    client.force_login(world.adjudicator)
    case = mine.case
    pages = [
        client.get(reverse("home")),
        client.get(reverse("adjudication:worklist", kwargs={"pk": study.pk})),
        client.get(
            reverse("adjudication:case", kwargs={"pk": study.pk, "case_pk": case.pk, "session": 1})
        ),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        for name in ("other_reader", str(mine.public_id), str(theirs.public_id)):
            assert name not in body
    assert "Reader A" in pages[2].content.decode()
    assert "Reader B" in pages[2].content.decode()
    assert client.get(reverse("study", kwargs={"pk": study.pk})).status_code == 302
    for name in ("analytics:agreement", "analytics:measurements_csv", "studies:people"):
        assert client.get(reverse(name, kwargs={"pk": study.pk})).status_code == 403
    for reading in (mine, theirs):
        detail = reverse("readers:detail", kwargs={"public_id": reading.public_id})
        assert client.get(detail).status_code == 404
