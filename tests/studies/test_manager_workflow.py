"""The manager's workflow (issue 13 item 10, first half): a new study's checklist, several
thresholds typed at once, people added by picking them or inviting them, and ``/admin/``
drop-downs that name the study of a case.

Personas from ``tests.conftest.World``: ``manager`` manages study A (``reader``,
``other_reader``, ``adjudicator``); ``manager_b`` and ``reader_b`` belong to study B;
``outsider`` has no role; ``admin`` is a site admin.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from studies import selectors, services
from studies.forms import THRESHOLDS_MAX, parse_threshold_list, threshold_name_for
from studies.models import Role, Study, UploadStatus
from studies.signals import analysis_inputs_changed
from tests.helpers import factories

STUDY_FIELDS: dict[str, Any] = {
    "name": "Lumbar VBQ 2026",
    "roi_statistic": "median",
    "level_aggregate": "median",
    "min_levels": "3",
    "sessions": "1",
    "washout_days": "0",
}


def design_post(
    rows: list[tuple[str, object]], several: str = "", *, initial: int = 0, **fields: Any
) -> dict:
    """POST data of the study form: its fields, the threshold rows (the first ``initial`` of
    them the ones the page showed) and the typed list."""
    data: dict[str, Any] = STUDY_FIELDS | fields
    data |= {
        "thresholds-TOTAL_FORMS": str(len(rows)),
        "thresholds-INITIAL_FORMS": str(initial),
        "thresholds-MIN_NUM_FORMS": "0",
        "thresholds-MAX_NUM_FORMS": "20",
        "thresholds-several": several,
    }
    for i, (name, value) in enumerate(rows):
        data[f"thresholds-{i}-name"] = name
        data[f"thresholds-{i}-value"] = str(value)
    return data


def thresholds_of(study: Study) -> dict[str, float]:
    return dict(study.thresholds.values_list("name", "value"))


@pytest.fixture
def fresh(world) -> Study:
    """A study just created by ``manager``: nobody else in it, no cases."""
    return services.study_create_with_manager(manager=world.manager, name="Fresh study")


def study_page(client, user, study: Study) -> str:
    client.force_login(user)
    response = client.get(reverse("study", kwargs={"pk": study.pk}))
    assert response.status_code == 200
    return response.content.decode()


def steps_in(page: str) -> dict[str, str]:
    """Step key → ``data-done`` of the checklist on a page."""
    return dict(re.findall(r'data-step="(\w+)" data-done="(\w+)"', page))


# --- the checklist ---------------------------------------------------------------------------


def test_a_new_study_shows_its_checklist_with_a_link_per_step(client, world, fresh):
    page = study_page(client, world.manager, fresh)
    assert 'id="checklist"' in page
    assert steps_in(page) == {
        "settings": "true",
        "readers": "false",
        "cases": "false",
        "open": "false",
    }
    for name in ("studies:edit", "studies:people", "studies:uploads", "studies:cases"):
        assert f'href="{reverse(name, kwargs={"pk": fresh.pk})}"' in page
    assert "0 readers" in page
    assert "0 cases uploaded" in page
    assert "no thresholds" in page


def test_each_step_is_computed_from_the_data(world, fresh):
    factories.AssignmentFactory(study=fresh, user=world.outsider, role=Role.READER)
    unreadable = factories.CaseFactory(study=fresh)
    factories.SeriesFactory(case=unreadable, selected=False)
    checklist = selectors.study_checklist(study=fresh)
    steps = {step.key: step for step in checklist.steps}
    assert steps["readers"].done
    assert steps["readers"].detail == "1 reader; agreement between readers needs two"
    assert not steps["cases"].done
    assert steps["cases"].detail == "1 case uploaded, 1 without a series to read"
    assert not steps["open"].done
    assert checklist.shown
    assert not checklist.ready

    factories.SeriesFactory(case=factories.CaseFactory(study=fresh))
    services.thresholds_replace(study=fresh, thresholds={"screening": 2.95})
    checklist = selectors.study_checklist(study=fresh)
    steps = {step.key: step for step in checklist.steps}
    assert [step.done for step in checklist.steps] == [True, True, True, True]
    assert steps["cases"].detail == "2 cases uploaded, 1 without a series to read"
    assert steps["settings"].detail == "2 sessions, 1 threshold"
    assert checklist.ready
    assert checklist.shown
    assert not checklist.started


def test_an_upload_in_progress_is_mentioned(world, fresh):
    fresh.uploads.create(name="batch 1", created_by=world.manager, status=UploadStatus.PROCESSING)
    fresh.uploads.create(name="batch 0", created_by=world.manager, status=UploadStatus.DONE)
    [cases] = [s for s in selectors.study_checklist(study=fresh).steps if s.key == "cases"]
    assert cases.detail == "0 cases uploaded; 1 upload being processed"


def test_a_ready_study_says_so_until_a_reader_begins(client, world, fresh):
    factories.AssignmentFactory(study=fresh, user=world.outsider, role=Role.READER)
    case = factories.SeriesFactory(case=factories.CaseFactory(study=fresh)).case
    page = study_page(client, world.manager, fresh)
    assert "Ready for reading" in page
    assert set(steps_in(page).values()) == {"true"}
    factories.ReadingFactory(case=case, reader=world.outsider)
    assert not selectors.study_checklist(study=fresh).shown
    assert 'id="checklist"' not in study_page(client, world.manager, fresh)


def test_the_checklist_is_for_managers_only(client, world, fresh):
    factories.AssignmentFactory(study=fresh, user=world.outsider, role=Role.READER)
    assert 'id="checklist"' in study_page(client, world.admin, fresh)
    assert 'id="checklist"' not in study_page(client, world.outsider, fresh)


def test_the_checklist_costs_a_few_queries_whatever_the_size(
    world, fresh, django_assert_max_num_queries
):
    for _ in range(5):
        factories.SeriesFactory(case=factories.CaseFactory(study=fresh))
    with django_assert_max_num_queries(6):
        checklist = selectors.study_checklist(study=fresh)
    assert [s.done for s in checklist.steps] == [True, False, True, False]


# --- several thresholds at once --------------------------------------------------------------


def test_a_list_of_values_is_parsed_and_named():
    assert parse_threshold_list("2.95, 3.0, 3.05") == {
        "vbq-2-95": 2.95,
        "vbq-3": 3.0,
        "vbq-3-05": 3.05,
    }
    assert parse_threshold_list("screening 2.95; fracture-risk=3.05\nhigh: 3.5\n\n") == {
        "screening": 2.95,
        "fracture-risk": 3.05,
        "high": 3.5,
    }
    assert parse_threshold_list("  ") == {}
    assert threshold_name_for(2.9) == "vbq-2-9"


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ("2.95, abc, 3.0", ["“abc” is not a number."]),
        ("2.95, 2.95", ["The value 2.95 is given twice."]),
        ("a 2.9, a 3.1", ["The name “a” is given twice."]),
        ("2,95", ["“95” is not a VBQ threshold"]),
        ("-1, nan, 0", ["“-1” is not", "“nan” is not", "“0” is not"]),
        ("2.95 3.0", ["“2.95 3.0” is not a threshold"]),
        ("x" * 51 + " 3", [f"“{'x' * 51}” is not a name"]),
        ("bad name 3.1, 2.9", ["“bad name 3.1” is not a threshold"]),
    ],
)
def test_a_bad_list_is_refused_as_a_whole_naming_each_bad_entry(text, messages):
    with pytest.raises(ValidationError) as raised:
        parse_threshold_list(text)
    found = raised.value.messages
    assert len(found) == len(messages)
    for message, text_found in zip(messages, found, strict=True):
        assert text_found.startswith(message)


def test_a_new_study_takes_its_rows_and_a_typed_list(client, world):
    client.force_login(world.admin)
    data = design_post([("screening", 2.95)], several="2.8, fracture 3.05", initial=1)
    response = client.post(reverse("studies:create"), data)
    assert response.status_code == 302
    study = Study.objects.get(name="Lumbar VBQ 2026")
    assert thresholds_of(study) == {"screening": 2.95, "vbq-2-8": 2.8, "fracture": 3.05}


@pytest.fixture
def study_a(world) -> Study:
    services.thresholds_replace(study=world.study_a, thresholds={"screening": 2.95, "fr": 3.05})
    return world.study_a


def edit(client, world, study: Study, rows, several: str):
    client.force_login(world.manager)
    fields = {"name": study.name, "sessions": "1", "washout_days": "0"}
    return client.post(
        reverse("studies:edit", kwargs={"pk": study.pk}),
        design_post(rows, several, initial=2, **fields),
    )


def test_edit_adds_several_thresholds_in_one_change(client, world, study_a):
    sent: list[str] = []

    def receiver(sender, study, what, **kwargs):
        sent.append(what)

    analysis_inputs_changed.connect(receiver)
    try:
        response = edit(client, world, study_a, [("screening", 2.95), ("fr", 3.05)], "3.1; 3.2")
    finally:
        analysis_inputs_changed.disconnect(receiver)
    assert response.status_code == 302
    assert thresholds_of(study_a) == {"screening": 2.95, "fr": 3.05, "vbq-3-1": 3.1, "vbq-3-2": 3.2}
    assert sent == ["thresholds"]


@pytest.mark.parametrize(
    ("several", "message"),
    [
        ("3.1, abc, 3.2", "“abc” is not a number."),
        ("3.1, 2.95", "2.95 is already a threshold above (screening)."),
        ("screening 3.3", "“screening” is already a threshold above."),
        ("3.1, 3.1", "The value 3.1 is given twice."),
        (", ".join(f"{1 + i / 10:g}" for i in range(THRESHOLDS_MAX - 1)), "at most 20 thresholds"),
    ],
)
def test_a_bad_typed_list_saves_nothing(client, world, study_a, several, message):
    rows = [("screening", 2.95), ("fr", 3.1), ("new-row", 4.0)]  # row changes are not saved either
    response = edit(client, world, study_a, rows, several)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f'value="{several}"' in page  # shown again, to be corrected
    assert thresholds_of(study_a) == {"screening": 2.95, "fr": 3.05}


def test_the_design_page_offers_the_typed_list(client, world, study_a):
    client.force_login(world.manager)
    page = client.get(reverse("studies:edit", kwargs={"pk": study_a.pk})).content.decode()
    assert 'name="thresholds-several"' in page
    assert "Add several at once" in page


# --- people: pick or invite ------------------------------------------------------------------


@pytest.fixture
def colleagues(world) -> dict[str, Any]:
    """``manager`` also manages study C, read by ``carol`` and ``dave``; ``erin`` (inactive) and
    ``frank`` (who already reads A) are in C too."""
    study_c = factories.StudyFactory(name="Study C")
    factories.AssignmentFactory(study=study_c, user=world.manager, role=Role.MANAGER)
    people = {name: factories.UserFactory(username=name) for name in ("carol", "dave", "erin")}
    people["erin"].is_active = False
    people["erin"].save()
    for user in people.values():
        factories.AssignmentFactory(study=study_c, user=user, role=Role.READER)
    factories.AssignmentFactory(study=study_c, user=world.reader, role=Role.READER)
    return people | {"study_c": study_c}


def people_url(world) -> str:
    return reverse("studies:people", kwargs={"pk": world.study_a.pk})


def roles_in_a(world) -> dict[str, str]:
    return dict(world.study_a.assignments.values_list("user__username", "role"))


def test_a_manager_may_pick_only_people_of_the_studies_they_manage(world, colleagues):
    candidates = selectors.assignment_candidates(study=world.study_a, user=world.manager)
    assert [u.username for u in candidates] == ["carol", "dave"]
    # manager_b manages B only: B's people, never A's nor anyone else.
    candidates = selectors.assignment_candidates(study=world.study_a, user=world.manager_b)
    assert [u.username for u in candidates] == ["manager_b", "reader_b"]


def test_a_site_admin_may_pick_any_active_account(world, colleagues):
    candidates = selectors.assignment_candidates(study=world.study_a, user=world.admin)
    names = [u.username for u in candidates]
    assert names == ["admin", "carol", "dave", "manager_b", "outsider", "reader_b"]


def test_the_people_page_lists_the_candidates_and_nobody_else(client, world, colleagues):
    client.force_login(world.manager)
    page = client.get(people_url(world)).content.decode()
    candidates = page[page.index('id="candidates"') : page.index("</fieldset>")]
    for shown in ("carol", "dave"):
        assert shown in candidates
    for hidden in ("erin", "outsider", "reader_b", "manager_b", "admin"):
        assert hidden not in page


def test_without_candidates_the_list_is_not_shown(client, world):
    client.force_login(world.manager)
    page = client.get(people_url(world)).content.decode()
    assert 'id="candidates"' not in page
    assert 'name="username"' in page


def test_a_manager_adds_several_picked_people_with_one_role(client, world, colleagues):
    client.force_login(world.manager)
    picked = [colleagues["carol"].pk, colleagues["dave"].pk]
    response = client.post(people_url(world), {"users": picked, "role": "reader"}, follow=True)
    assert response.status_code == 200
    assert "carol, dave are now readers of this study." in response.content.decode()
    assert roles_in_a(world)["carol"] == roles_in_a(world)["dave"] == Role.READER


def test_picked_and_typed_people_are_added_together(client, world, colleagues):
    client.force_login(world.manager)
    data = {"users": [colleagues["carol"].pk], "username": "outsider", "role": "adjudicator"}
    assert client.post(people_url(world), data).status_code == 302
    assert roles_in_a(world)["carol"] == roles_in_a(world)["outsider"] == Role.ADJUDICATOR


def test_one_person_who_cannot_be_added_adds_nobody(client, world, colleagues):
    client.force_login(world.manager)
    data = {"users": [colleagues["carol"].pk], "username": "reader", "role": "reader"}
    response = client.post(people_url(world), data)
    assert response.status_code == 400
    assert "reader is already reader of this study" in response.content.decode()
    assert "carol" not in roles_in_a(world)


def test_assignments_add_is_all_or_nothing(world, colleagues):
    before = roles_in_a(world)
    with pytest.raises(ValidationError, match="reader is already reader"):
        services.assignments_add(
            study=world.study_a, users=[colleagues["carol"], world.reader], role=Role.READER
        )
    assert roles_in_a(world) == before


def test_someone_not_offered_is_refused_like_an_id_that_does_not_exist(client, world, colleagues):
    """Posting the id of a user the manager does not know (or of no user) is the same error:
    the answer does not tell which ids exist."""
    client.force_login(world.manager)
    answers = []
    for pk in (world.reader_b.pk, colleagues["erin"].pk, 999_999):
        response = client.post(people_url(world), {"users": [pk], "role": "reader"})
        assert response.status_code == 400
        answers.append(response.context["form"].errors["users"][0].replace(str(pk), "<pk>"))
    assert len(set(answers)) == 1
    assert "Select a valid choice" in answers[0]
    assert set(roles_in_a(world)) == {"manager", "reader", "other_reader", "adjudicator"}


def test_nothing_picked_nor_typed_is_an_error(client, world):
    client.force_login(world.manager)
    response = client.post(people_url(world), {"role": "reader"})
    assert response.status_code == 400
    assert "type a username, or pick people from the list" in response.content.decode()


def test_the_people_page_invites_by_mail_through_the_invitation_flow(client, world):
    client.force_login(world.manager)
    page = client.get(people_url(world)).content.decode()
    invite = reverse("accounts:invite", kwargs={"pk": world.study_a.pk})
    assert f'action="{invite}"' in page
    response = client.post(invite, {"username": "newcomer", "email": "new@example.org"})
    assert response.status_code == 200
    assert roles_in_a(world)["newcomer"] == Role.READER


# --- /admin/ drop-downs name the study ------------------------------------------------------


@pytest.fixture
def two_case_001(world):
    """A "Case 001" in each of the two studies, each with a series and a threshold."""
    cases = {}
    for study in (world.study_a, world.study_b):
        case = factories.CaseFactory(study=study, label="Case 001")
        factories.SeriesFactory(case=case, description="SAG T1")
        services.thresholds_replace(study=study, thresholds={"screening": 2.95})
        cases[study.name] = case
    return cases


def options(page: str, select: str) -> list[str]:
    body = page[page.index(f'name="{select}"') :]
    body = body[: body.index("</select>")]
    return [label.strip() for label in re.findall(r"<option[^>]*>([^<]*)</option>", body)]


def test_admin_case_and_series_drop_downs_name_their_study(
    client, world, two_case_001, django_assert_max_num_queries
):
    client.force_login(world.admin)
    client.get(reverse("admin:studies_series_add"))  # the session and the site's first queries
    with django_assert_max_num_queries(12) as counted:
        page = client.get(reverse("admin:studies_series_add")).content.decode()
    assert options(page, "case")[1:] == ["Study A — Case 001", "Study B — Case 001"]
    for label in ("Case 002", "Case 003", "Case 004", "Case 005", "Case 006"):
        factories.CaseFactory(study=world.study_b, label=label)
    with django_assert_max_num_queries(len(counted)):  # one query per drop-down, not per option
        page = client.get(reverse("admin:studies_series_add")).content.decode()
    assert options(page, "case")[-1] == "Study B — Case 006"
    page = client.get(reverse("admin:studies_instance_add")).content.decode()
    assert "Study A — Case 001 / SAG T1" in options(page, "series")
    assert "Study B — Case 001 / SAG T1" in options(page, "series")


def test_admin_adjudication_threshold_is_one_of_the_studys_own(client, world, two_case_001):
    client.force_login(world.admin)
    url = reverse("admin:studies_study_change", args=[world.study_a.pk])
    page = client.get(url).content.decode()
    assert options(page, "adjudication_threshold")[1:] == ["Study A — screening ≥ 2.95"]


def test_admin_readings_name_their_study(client, world, two_case_001):
    factories.ReadingFactory(case=two_case_001["Study B"], reader=world.reader_b)
    client.force_login(world.admin)
    page = client.get(reverse("admin:readers_reading_changelist")).content.decode()
    assert "Study B" in page[page.index("result_list") :]
