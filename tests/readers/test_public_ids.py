"""Readings and uploads are named in URLs and pages by a random public id, never by their
sequential pk (issue 12): one reading's address tells nothing about how many others exist or
where they are, and asking for another reader's reading answers exactly as a made-up id does."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404
from django.urls import get_resolver, reverse

from readers.access import reading_for_manager, reading_for_user, reading_for_writer
from readers.models import Reading
from studies.access import upload_for_manager
from studies.models import Assignment, Role, Upload
from studies.uploads.transfer import upload_create
from tests.helpers import factories

READING_URLS = ["readers:detail", "readers:submit", "readers:score", "readers:rois"]
READING_URLS += ["readers:submit_json", "readers:timing", "readers:next"]
UPLOAD_URLS = ["studies:upload_report", "studies:upload_status", "studies:upload_chunk"]
UPLOAD_URLS += ["studies:upload_finish", "studies:upload_cancel"]
UUID_IN_PATH = re.compile(r"/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/")


def _uuid4_of(url: str) -> uuid.UUID:
    match = UUID_IN_PATH.search(url)
    assert match is not None, f"no uuid in {url}"
    value = uuid.UUID(match.group(1))
    assert value.version == 4, url
    return value


def _unrelated(a: uuid.UUID, b: uuid.UUID) -> None:
    """Two ids made one after the other share no sequence: neither a counter (adjacent values)
    nor a common time-based prefix (uuid1/uuid7 would share their leading bits)."""
    assert a != b
    assert abs(a.int - b.int) > 2**100  # fails for adjacent or time-ordered ids
    assert str(a)[:8] != str(b)[:8]


@pytest.fixture
def cases(world):
    made = []
    for label in ("Case 001", "Case 002"):
        case = factories.CaseFactory(study=world.study_a, label=label)
        factories.SeriesFactory(case=case)
        made.append(case)
    return made


def test_opening_two_cases_gives_uuid4_urls_that_share_no_sequence(client, world, cases):
    client.force_login(world.reader)
    opened = []
    for case in cases:
        response = client.post(reverse("readers:open", kwargs={"case_pk": case.pk, "session": 1}))
        assert response.status_code == 302
        opened.append(_uuid4_of(response.url))
    first, second = (Reading.objects.get(case=case, reader=world.reader) for case in cases)
    assert second.pk == first.pk + 1  # the pks are sequential; the URLs must not be
    assert opened == [first.public_id, second.public_id]
    _unrelated(*opened)
    for reading in (first, second):
        for name in READING_URLS:
            url = reverse(name, kwargs={"public_id": reading.public_id})
            assert _uuid4_of(url) == reading.public_id
            assert f"/{reading.pk}/" not in url


def test_the_pages_and_the_viewer_payload_carry_only_public_ids(client, world, cases):
    mine = factories.ReadingFactory(reader=world.reader, case=cases[0])
    client.force_login(world.reader)
    worklist = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    assert f"/readings/{mine.public_id}/" in worklist
    html = client.get(reverse("readers:detail", kwargs={"public_id": mine.public_id}))
    assert html.status_code == 200
    html = html.content.decode()
    config = json.loads(
        re.search(
            r'<script id="viewer-config" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert config["reading"]["id"] == str(mine.public_id)
    for name in ("save", "submit", "score"):
        assert _uuid4_of(config["urls"][name]) == mine.public_id
    assert f"/readings/{mine.pk}/" not in html
    client.force_login(world.manager)
    page = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    # The manager's case table opens the review viewer (issue 13 item 7), by the public id too.
    assert f"/review/{mine.public_id}/" in page
    assert f"/readings/{mine.pk}/" not in page
    assert f"/review/{mine.pk}/" not in page


def test_a_sequential_pk_in_a_url_finds_nothing(client, world, cases):
    reading = factories.ReadingFactory(reader=world.reader, case=cases[0])
    client.force_login(world.reader)
    assert client.get(f"/readings/{reading.pk}/").status_code == 404
    assert client.get(f"/readings/{reading.public_id}/").status_code == 200


@pytest.mark.parametrize("role", ["other_reader", "reader_b", "outsider"])
@pytest.mark.parametrize("name", READING_URLS)
def test_anothers_reading_answers_as_a_random_uuid(client, world, cases, role, name):
    theirs = factories.ReadingFactory(reader=world.reader, case=cases[0])
    client.force_login(getattr(world, role))
    method = client.get if name in ("readers:detail", "readers:score") else client.post
    existing = method(reverse(name, kwargs={"public_id": theirs.public_id}))
    made_up = method(reverse(name, kwargs={"public_id": uuid.uuid4()}))
    assert existing.status_code == 404
    assert (existing.status_code, existing.content) == (made_up.status_code, made_up.content)
    assert existing.get("Content-Type") == made_up.get("Content-Type")


def test_access_functions_look_up_by_public_id_only(world, cases):
    """A pk, a malformed id or an unknown one: the same 404 as a reading one may not see."""
    reading = factories.ReadingFactory(reader=world.reader, case=cases[0])
    assert reading_for_user(world.reader, reading.public_id)[0] == reading
    assert reading_for_user(world.reader, str(reading.public_id))[0] == reading
    assert reading_for_writer(world.reader, reading.public_id) == reading
    assert reading_for_manager(world.manager, reading.public_id, study=world.study_a) == reading
    for wrong in (reading.pk, str(reading.pk), "not-a-uuid", "", uuid.uuid4()):
        with pytest.raises(Http404, match="No such reading"):
            reading_for_user(world.reader, wrong)
        with pytest.raises(Http404, match="No such reading"):
            reading_for_manager(world.manager, wrong, study=world.study_a)
    upload = upload_create(
        study=world.study_a, created_by=world.manager, name="u", files=1, total_bytes=10
    )
    assert upload_for_manager(world.manager, upload.public_id) == upload
    for wrong in (upload.pk, str(upload.pk), "not-a-uuid", uuid.uuid4()):
        with pytest.raises(Http404, match="No such upload"):
            upload_for_manager(world.manager, wrong)
    with pytest.raises(Http404, match="No such upload"):
        upload_for_manager(world.reader, upload.public_id)


def test_upload_answers_carry_uuid4_ids_that_share_no_sequence(client, world):
    client.force_login(world.manager)
    names = ("first", "second")
    answers = []
    for name in names:
        response = client.post(
            reverse("studies:upload_create", kwargs={"pk": world.study_a.pk}),
            data=json.dumps({"name": name, "files": 1, "bytes": 10}),
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        answers.append(response.json())
    ids = []
    for name, answer in zip(names, answers, strict=True):
        upload = Upload.objects.get(name=name)
        assert answer["id"] == str(upload.public_id)
        assert uuid.UUID(answer["id"]).version == 4
        for url in answer["urls"].values():
            assert _uuid4_of(url) == upload.public_id
            assert f"/{upload.pk}/" not in url
        ids.append(upload.public_id)
    _unrelated(*ids)
    page = client.get(reverse("studies:uploads", kwargs={"pk": world.study_a.pk})).content.decode()
    for public_id in ids:
        assert f"/studies/uploads/{public_id}/" in page
    assert client.get(answers[0]["urls"]["status"]).status_code == 200
    pk = Upload.objects.get(public_id=ids[0]).pk
    assert client.get(f"/studies/uploads/{pk}/status.json").status_code == 404


def test_every_reading_and_upload_url_takes_a_uuid() -> None:
    """A new URL for a reading or an upload must not bring the integer pk back."""
    patterns = {}
    for app in ("readers", "studies"):
        for pattern in get_resolver().url_patterns:
            if getattr(pattern, "namespace", None) == app:
                for sub in pattern.url_patterns:
                    patterns[f"{app}:{sub.name}"] = str(sub.pattern)
    for name in READING_URLS + UPLOAD_URLS:
        assert patterns[name].startswith(("<uuid:public_id>/", "uploads/<uuid:public_id>/")), name
    assert len(READING_URLS) == len([n for n in patterns if n.startswith("readers:")]) - 1  # open


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_every_existing_row_its_own_uuid(world, cases) -> None:
    """Add nullable, fill each row with its own uuid4, then unique: an ``AddField`` with a
    callable default alone would give every existing row the same value."""
    before = [
        ("readers", "0004_studyanalysisdetail"),
        ("studies", "0004_upload_sending_moves_to_the_outbox"),
    ]
    after = [("readers", "0005_reading_public_id"), ("studies", "0005_upload_public_id")]
    # The adjudicator role came later (readers 0006 widened the column for it): a row holding
    # it cannot go back to the 10-character column, and PostgreSQL says so where SQLite won't.
    Assignment.objects.filter(role=Role.ADJUDICATOR).delete()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        OldReading = apps.get_model("readers", "Reading")
        OldUpload = apps.get_model("studies", "Upload")
        for i, case in enumerate(cases):
            OldReading.objects.create(reader_id=world.reader.pk, case_id=case.pk, session=1)
            OldUpload.objects.create(study_id=world.study_a.pk, name=f"u{i}")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    for model in (Reading, Upload):
        ids = list(model.objects.values_list("public_id", flat=True))
        assert len(ids) == 2
        assert None not in ids
        assert len(set(ids)) == 2
        assert all(value.version == 4 for value in ids)
