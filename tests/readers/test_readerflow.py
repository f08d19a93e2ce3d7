"""The reader's day (issue 13 items 1, 2, 4, 9, 11) without a browser: save and next, what a
refused save says, who sees a score when (the study's ``score_visibility``), the planned count
on the manager's page, and the 403 / 404 pages in the site's layout.

The browser's side of the same (the viewer going on to the next case, Back and Forward, the
read-only viewer) is tests/browser/test_readerflow.py.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from readers import services
from readers.models import Reading
from readers.sessions import case_order
from studies.models import Case, ScoreVisibility
from studies.phantom.writer import write_phantom
from tests.helpers import factories
from tests.helpers.factories import case_set_import_trusted_files

pytestmark = pytest.mark.django_db


def _submitted(reading: Reading) -> Reading:
    Reading.objects.filter(pk=reading.pk).update(
        status=Reading.Status.SUBMITTED, submitted_at=timezone.now()
    )
    reading.refresh_from_db()
    return reading


@pytest.fixture
def three_cases(world) -> list[Case]:
    """Three cases of study A (no images: save and next needs none), in the reader's order."""
    for _ in range(3):
        factories.CaseFactory(study=world.study_a)
    return case_order(reader=world.reader, study=world.study_a, session=1)


@pytest.fixture
def scored(world, tmp_path: Path) -> Reading:
    """The reader's draft of a phantom case with all its ROIs, scored in-process."""
    (case_dir,) = write_phantom(tmp_path / "p", cases=1, seed=11)
    case_set_import_trusted_files(
        study=world.study_a, name="phantom", cases=[("Case 1", list(case_dir.glob("*.dcm")))]
    )
    truth = json.loads((case_dir / "truth.json").read_text())
    case = Case.objects.get(study=world.study_a)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=truth["rois"])
    result = services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    assert result is not None
    assert result.vbq is not None
    return reading


# --- save and next ------------------------------------------------------------------------------


def test_next_opens_the_following_unsubmitted_case_and_says_where_it_stands(
    client, world, three_cases
):
    first, second, third = three_cases
    reading = _submitted(services.reading_open(reader=world.reader, case=first, session=1))
    _submitted(services.reading_open(reader=world.reader, case=second, session=1))
    client.force_login(world.reader)
    response = client.post(reverse("readers:next", kwargs={"public_id": reading.public_id}))
    following = Reading.objects.get(reader=world.reader, case=third, session=1)
    assert response.status_code == 302
    assert response.url == reverse("readers:detail", kwargs={"public_id": following.public_id})
    page = client.get(response.url).content.decode()
    assert "case 3 of 3 · 1 to read" in page
    assert f'id="just-submitted">✓ {first.label} submitted</p>' in page  # no score: no ROIs
    again = client.get(response.url).content.decode()
    assert "just-submitted" not in again  # said once


def test_next_wraps_round_to_a_case_skipped_earlier(client, world, three_cases):
    first, _, third = three_cases
    skipped = services.reading_open(reader=world.reader, case=first, session=1)
    last = _submitted(services.reading_open(reader=world.reader, case=third, session=1))
    client.force_login(world.reader)
    response = client.post(reverse("readers:next", kwargs={"public_id": last.public_id}))
    assert response.url == reverse("readers:detail", kwargs={"public_id": skipped.public_id})


def test_next_after_the_last_case_goes_to_the_worklist_with_session_complete(
    client, world, three_cases
):
    readings = [
        _submitted(services.reading_open(reader=world.reader, case=case, session=1))
        for case in three_cases
    ]
    client.force_login(world.reader)
    response = client.post(
        reverse("readers:next", kwargs={"public_id": readings[-1].public_id}), follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("study", kwargs={"pk": world.study_a.pk})
    assert "Session 1 is complete" in response.content.decode()


def test_a_manager_may_not_go_on_in_a_readers_place(client, world, three_cases):
    reading = services.reading_open(reader=world.reader, case=three_cases[0], session=1)
    client.force_login(world.manager)
    response = client.post(reverse("readers:next", kwargs={"public_id": reading.public_id}))
    assert response.status_code == 403
    assert Reading.objects.filter(reader=world.manager).count() == 0


def test_the_home_page_says_how_many_to_read_and_offers_the_next_case(client, world, three_cases):
    _submitted(services.reading_open(reader=world.reader, case=three_cases[0], session=1))
    client.force_login(world.reader)
    page = client.get(reverse("home")).content.decode()
    assert "<strong>2</strong> to read" in page
    action = reverse("readers:open", kwargs={"case_pk": three_cases[1].pk, "session": 1})
    assert f'action="{action}"' in page
    assert "Next case" in page
    worklist = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    assert "1 of 3 submitted · <strong>2 to read</strong>" in worklist


# --- stale pages --------------------------------------------------------------------------------


def test_a_refused_save_says_already_submitted_reload(client, world, scored):
    _submitted(scored)
    client.force_login(world.reader)
    url = reverse("readers:rois", kwargs={"public_id": scored.public_id})
    response = client.post(url, data=json.dumps(scored.rois), content_type="application/json")
    assert response.status_code == 403
    body = response.json()
    assert body["error"].startswith("Already submitted — reload")
    assert body["reload"] is True
    assert response["Cache-Control"] == "no-store"
    page = client.get(reverse("readers:detail", kwargs={"public_id": scored.public_id}))
    assert "no-store" in page["Cache-Control"]


# --- score visibility ---------------------------------------------------------------------------


def _score(client, reading: Reading) -> dict:
    return client.get(reverse("readers:score", kwargs={"public_id": reading.public_id})).json()


def _page(client, reading: Reading) -> str:
    return client.get(
        reverse("readers:detail", kwargs={"public_id": reading.public_id})
    ).content.decode()


@pytest.mark.parametrize(
    ("visibility", "while_drafting", "once_submitted"),
    [
        (ScoreVisibility.LIVE, True, True),
        (ScoreVisibility.AFTER_SUBMIT, False, True),
        (ScoreVisibility.HIDDEN, False, False),
    ],
)
def test_the_reader_sees_the_score_as_the_study_says_and_the_manager_always(
    client, world, scored, visibility, while_drafting, once_submitted
):
    world.study_a.score_visibility = visibility
    world.study_a.save()
    figure = f"{scored.current_result().vbq:.3f}"
    client.force_login(world.reader)
    for expected, phase in ((while_drafting, "draft"), (once_submitted, "submitted")):
        if phase == "submitted":
            services.reading_submit(reading=scored)
        payload = _score(client, scored)
        page = _page(client, scored)
        if expected:
            assert payload["status"] == "ok", (phase, payload)
        else:
            assert payload == {
                "status": "hidden",
                "roi_version": scored.roi_version,
                "message": payload["message"],
            }, phase
            assert "vbq" not in json.dumps(payload)
            assert payload["message"] in page
        # The figure is never in the page itself (the viewer asks score.json), nor in a hidden
        # payload: only where the setting allows it.
        assert (figure in json.dumps(payload)) is expected, phase
    client.force_login(world.manager)
    assert _score(client, scored)["status"] == "ok"


def test_the_study_form_offers_the_three_settings(client, world):
    client.force_login(world.manager)
    page = client.get(reverse("studies:edit", kwargs={"pk": world.study_a.pk})).content.decode()
    for value in ScoreVisibility.values:
        assert f'value="{value}"' in page
    assert "Readers see their own VBQ" in page


# --- the manager's numbers and words ------------------------------------------------------------


def test_readings_submitted_counts_the_planned_readings(client, world, three_cases):
    world.study_a.sessions = 2
    world.study_a.save()
    _submitted(services.reading_open(reader=world.reader, case=three_cases[0], session=1))
    services.reading_open(reader=world.other_reader, case=three_cases[0], session=1)
    client.force_login(world.manager)
    page = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    # 3 cases x 2 readers x 2 sessions = 12 planned; 2 opened, 1 submitted.
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert "1 of 12 planned readings submitted (3 cases × 2 readers × 2 sessions; 2 opened)" in text
    assert "<th>S1</th>" not in page
    assert "<th>Session 1</th>" in page


# --- 403 and 404 --------------------------------------------------------------------------------


def test_a_403_says_why_in_the_sites_layout_with_a_way_back(client, world, three_cases):
    for case in three_cases:
        _submitted(services.reading_open(reader=world.reader, case=case, session=1))
    Reading.objects.filter(reader=world.reader).update(
        submitted_at=timezone.now() - timedelta(days=world.study_a.washout_days + 1)
    )
    world.study_a.sessions = 2
    world.study_a.save()
    earlier = Reading.objects.filter(reader=world.reader, session=1).first()
    client.force_login(world.reader)
    response = client.get(reverse("readers:detail", kwargs={"public_id": earlier.public_id}))
    assert response.status_code == 403
    page = response.content.decode()
    assert "session 1 readings stay hidden while you read session 2" in page
    assert 'class="topbar"' in page
    assert f'href="{reverse("home")}"' in page


def test_a_404_is_in_the_sites_layout_and_the_same_for_hidden_and_absent(
    client, world, three_cases
):
    others = services.reading_open(reader=world.other_reader, case=three_cases[0], session=1)
    client.force_login(world.reader)
    hidden = client.get(reverse("readers:detail", kwargs={"public_id": others.public_id}))
    absent = client.get(reverse("readers:detail", kwargs={"public_id": uuid.uuid4()}))
    assert hidden.status_code == absent.status_code == 404
    assert hidden.content == absent.content
    page = hidden.content.decode()
    assert 'class="topbar"' in page
    assert "Not found" in page
    assert f'href="{reverse("home")}"' in page
    assert "csrfmiddlewaretoken" not in page
